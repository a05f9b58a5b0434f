package bootable

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// ModulesDir is where a bootable tree keeps its kernel: usr/lib/modules/KVER/vmlinuz, next to an
// optional initramfs.img (spec §2.2, §5.1).
const ModulesDir = "usr/lib/modules"

// Errors about the kernel of a root filesystem.
var (
	// ErrNoKernel means the rootfs has no kernel in either layout FindKernels knows.
	ErrNoKernel = errors.New("no kernel found: a bootable commit needs usr/lib/modules/KVER/vmlinuz (install a kernel package, e.g. linux-image-amd64)")
	// ErrMultipleKernels means the rootfs has more than one kernel; the error is a
	// *MultipleKernelsError listing them.
	ErrMultipleKernels = errors.New("more than one kernel found")
)

// Kernel is a kernel found in a root filesystem.
type Kernel struct {
	// Version is the kernel version (KVER): the name of its usr/lib/modules directory.
	Version string
	// Paths are the kernel images found for it, relative to the rootfs:
	// usr/lib/modules/KVER/vmlinuz and/or boot/vmlinuz-KVER.
	Paths []string
}

// MultipleKernelsError is the error for a rootfs with more than one kernel. It matches
// ErrMultipleKernels with errors.Is.
type MultipleKernelsError struct {
	Kernels []Kernel
}

func (e *MultipleKernelsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%v: ", ErrMultipleKernels)
	for i, k := range e.Kernels {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%s)", k.Version, strings.Join(k.Paths, ", "))
	}
	b.WriteString("; a bootable commit needs exactly one: remove the others from the rootfs, e.g. with " +
		"`apt-get purge linux-image-KVER` or `dnf remove kernel-core-KVER` in the build, or by deleting " +
		"usr/lib/modules/KVER and boot/*-KVER")
	return b.String()
}

// Is makes errors.Is(err, ErrMultipleKernels) true.
func (e *MultipleKernelsError) Is(target error) bool { return target == ErrMultipleKernels }

// bootMoves are the files of kernel KVER that a distribution's kernel package puts in /boot, and
// their names in usr/lib/modules/KVER. The names on the right are those of Fedora's kernel package,
// which installs straight into usr/lib/modules.
var bootMoves = []struct{ prefix, suffix, dest string }{
	{"vmlinuz-", "", "vmlinuz"},
	{"initrd.img-", "", "initramfs.img"}, // Debian, Ubuntu (initramfs-tools)
	{"initramfs-", ".img", "initramfs.img"},
	{"System.map-", "", "System.map"},
	{"config-", "", "config"},
	{".vmlinuz-", ".hmac", ".vmlinuz.hmac"},
}

// rescuePrefix marks dracut's rescue kernels (boot/vmlinuz-0-rescue-MACHINEID), which have no
// modules and are not the system's kernel.
const rescuePrefix = "0-rescue-"

// FindKernels lists the kernels in the root filesystem at rootfs, sorted by version. A kernel is
//   - a directory usr/lib/modules/KVER holding a regular file vmlinuz (what libostree looks for,
//     spec §2.2), or
//   - a regular file boot/vmlinuz-KVER, as Debian's and older Fedora's kernel packages install it
//     (dracut's rescue images boot/vmlinuz-0-rescue-* are not counted).
//
// A kernel found both ways is one kernel with two Paths. Symlinks are not followed anywhere, as
// the commit stores them as symlinks.
func FindKernels(rootfs string) ([]Kernel, error) {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return nil, fmt.Errorf("finding kernels: %w", err)
	}
	defer root.Close()
	return findKernels(root)
}

func findKernels(root *os.Root) ([]Kernel, error) {
	found := map[string][]string{}
	mods, err := readDirNoFollow(root, ModulesDir)
	if err != nil {
		return nil, fmt.Errorf("finding kernels: %w", err)
	}
	for _, e := range mods {
		if !e.IsDir() {
			continue
		}
		p := path.Join(ModulesDir, e.Name(), "vmlinuz")
		fi, err := root.Lstat(p)
		switch {
		case err == nil && fi.Mode().IsRegular():
			found[e.Name()] = append(found[e.Name()], p)
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("finding kernels: %w", err)
		}
	}
	boot, err := readDirNoFollow(root, "boot")
	if err != nil {
		return nil, fmt.Errorf("finding kernels: %w", err)
	}
	for _, e := range boot {
		kver, ok := strings.CutPrefix(e.Name(), "vmlinuz-")
		if !ok || kver == "" || strings.HasPrefix(kver, rescuePrefix) || !e.Type().IsRegular() {
			continue
		}
		found[kver] = append(found[kver], path.Join("boot", e.Name()))
	}
	kernels := make([]Kernel, 0, len(found))
	for v, paths := range found {
		kernels = append(kernels, Kernel{Version: v, Paths: paths})
	}
	sort.Slice(kernels, func(i, j int) bool { return kernels[i].Version < kernels[j].Version })
	return kernels, nil
}

// findKernel returns the one kernel of root, or ErrNoKernel or a *MultipleKernelsError.
func findKernel(root *os.Root) (Kernel, error) {
	kernels, err := findKernels(root)
	if err != nil {
		return Kernel{}, err
	}
	switch len(kernels) {
	case 0:
		return Kernel{}, ErrNoKernel
	case 1:
		return kernels[0], nil
	}
	return Kernel{}, &MultipleKernelsError{Kernels: kernels}
}

// bootFiles returns, for kernel kver, the regular files directly in boot/ that belong in
// usr/lib/modules/KVER, as a map from the name in boot/ to the name there. More than one source may
// map to a destination (initrd.img-KVER and initramfs-KVER.img).
func bootFiles(root *os.Root, kver string) (map[string]string, error) {
	entries, err := readDirNoFollow(root, "boot")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		for _, m := range bootMoves {
			if e.Name() == m.prefix+kver+m.suffix {
				out[e.Name()] = m.dest
			}
		}
	}
	return out, nil
}

// readDirNoFollow lists the directory rel of root, sorted by name; a missing directory, or one
// reached through a symlink, is empty.
func readDirNoFollow(root *os.Root, rel string) ([]fs.DirEntry, error) {
	if ok, err := isDirNoFollow(root, rel); err != nil || !ok {
		return nil, err
	}
	f, err := root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	return entries, nil
}

// isDirNoFollow reports whether rel is a directory reached without following any symlink.
func isDirNoFollow(root *os.Root, rel string) (bool, error) {
	cur := ""
	for _, name := range strings.Split(rel, "/") {
		cur = path.Join(cur, name)
		fi, err := root.Lstat(cur)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
				return false, nil
			}
			return false, err
		}
		if !fi.IsDir() {
			return false, nil
		}
	}
	return true, nil
}
