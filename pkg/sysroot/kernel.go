package sysroot

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"golang.org/x/sys/unix"
)

// kernelLayout is what get_kernel_from_tree_usrlib_modules finds in a deployment (spec §2.2):
// paths are relative to the deployment directory.
type kernelLayout struct {
	kver string
	// dir is usr/lib/modules/<kver>.
	dir string
	// Source names in dir; initramfs, devicetree and hmac may be "".
	initramfs, devicetree, hmac string
	bootcsum                    string
}

// files returns (source name in dir, name under /boot/ostree/<stateroot>-<bootcsum>/) pairs.
func (k *kernelLayout) files() [][2]string {
	out := [][2]string{{"vmlinuz", "vmlinuz-" + k.kver}}
	if k.initramfs != "" {
		out = append(out, [2]string{k.initramfs, k.initramfsName()})
	}
	if k.devicetree != "" {
		out = append(out, [2]string{k.devicetree, "devicetree-" + k.kver})
	}
	if k.hmac != "" {
		out = append(out, [2]string{k.hmac, ".vmlinuz-" + k.kver + ".hmac"})
	}
	return out
}

func (k *kernelLayout) initramfsName() string { return "initramfs-" + k.kver + ".img" }

// newDeploymentKernel locates the kernel of a new deployment's checkout and sets its bootcsum
// (deploymentKernel is its counterpart for deployments already written). When its kernel files
// are the very files (the same inodes: hardlinks of the same objects) of a loaded deployment's,
// whose kernel was checksummed when it was deployed, that checksum is taken rather than
// computed again (43 MiB of kernel and initramfs, a sixth of a one-package upgrade's time).
func (s *Sysroot) newDeploymentKernel(root string) (*kernelLayout, error) {
	k, err := locateKernel(root)
	if err != nil {
		return nil, err
	}
	for _, d := range s.withStaged() {
		if d.BootCsum != "" && sameKernelFiles(root, s.abs(d.Dir()), k) {
			k.bootcsum = d.BootCsum
			return k, nil
		}
	}
	if err := k.checksum(root); err != nil {
		return nil, err
	}
	return k, nil
}

// sameKernelFiles says whether the kernel files of k are the same inodes under both roots.
func sameKernelFiles(a, b string, k *kernelLayout) bool {
	for _, name := range []string{"vmlinuz", k.initramfs, k.devicetree} {
		if name == "" {
			continue
		}
		var sa, sb unix.Stat_t
		if unix.Lstat(filepath.Join(a, k.dir, name), &sa) != nil || unix.Lstat(filepath.Join(b, k.dir, name), &sb) != nil ||
			sa.Dev != sb.Dev || sa.Ino != sb.Ino || sa.Mode&unix.S_IFMT != unix.S_IFREG {
			return false
		}
	}
	// The other's layout must be the same: no initramfs or devicetree there that is not here.
	other, err := locateKernel(b)
	return err == nil && *other == kernelLayout{kver: k.kver, dir: k.dir, initramfs: k.initramfs, devicetree: k.devicetree, hmac: other.hmac}
}

// locateKernel looks in root/usr/lib/modules for the first directory (in name order) holding
// a regular file vmlinuz, with its initramfs (initramfs.img, else initramfs), devicetree and
// .vmlinuz.hmac if present: the layout alone (bootcsum "", see checksum). It returns
// ErrNoKernel if there is none.
func locateKernel(root string) (*kernelLayout, error) {
	modules := filepath.Join(root, "usr", "lib", "modules")
	ents, err := os.ReadDir(modules)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("looking for the kernel: %w", err)
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	for _, kver := range names {
		dir := filepath.Join(modules, kver)
		if st, err := os.Stat(filepath.Join(dir, "vmlinuz")); err != nil || !st.Mode().IsRegular() {
			continue
		}
		k := &kernelLayout{kver: kver, dir: filepath.Join("usr/lib/modules", kver)}
		for _, name := range []string{"initramfs.img", "initramfs"} {
			if exists(filepath.Join(dir, name)) {
				k.initramfs = name
				break
			}
		}
		if exists(filepath.Join(dir, "devicetree")) {
			k.devicetree = "devicetree"
		}
		if exists(filepath.Join(dir, ".vmlinuz.hmac")) {
			k.hmac = ".vmlinuz.hmac"
		}
		return k, nil
	}
	return nil, fmt.Errorf("%w: no usr/lib/modules/KVER/vmlinuz in %s (a bootable image installs its kernel there)", ErrNoKernel, root)
}

// checksum sets k.bootcsum: the sha256 of vmlinuz, the initramfs and the devicetree of the
// deployment directory root, in that order.
func (k *kernelLayout) checksum(root string) error {
	h := sha256.New()
	for _, name := range []string{"vmlinuz", k.initramfs, k.devicetree} {
		if name == "" {
			continue
		}
		if err := hashFile(h, filepath.Join(root, k.dir, name)); err != nil {
			return err
		}
	}
	k.bootcsum = hex.EncodeToString(h.Sum(nil))
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func hashFile(w io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("checksumming the kernel: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return fmt.Errorf("checksumming %s: %w", path, err)
	}
	return nil
}

// installKernel puts the kernel files of deployment directory root into bootDir
// (/boot/ostree/<stateroot>-<bootcsum>) unless they are there already. A new directory is
// filled under a temporary name and renamed into place; a missing file in an existing one is
// written to a temporary name and renamed. Files are hardlinked where possible and copied
// otherwise (a separate /boot partition), and synced.
func installKernel(root string, k *kernelLayout, bootDir string) error {
	dest := bootDir
	tmpDir := ""
	if _, err := os.Lstat(bootDir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(bootDir), 0o755); err != nil {
			return fmt.Errorf("installing the kernel: %w", err)
		}
		if tmpDir, err = os.MkdirTemp(filepath.Dir(bootDir), tmpPrefix+filepath.Base(bootDir)+"-"); err != nil {
			return fmt.Errorf("installing the kernel: %w", err)
		}
		if err := os.Chmod(tmpDir, 0o755); err != nil {
			return fmt.Errorf("installing the kernel: %w", err)
		}
		defer os.RemoveAll(tmpDir) // a no-op once renamed
		dest = tmpDir
	} else if err != nil {
		return fmt.Errorf("installing the kernel: %w", err)
	}
	for _, f := range k.files() {
		target := filepath.Join(dest, f[1])
		if _, err := os.Lstat(target); err == nil {
			continue
		}
		if err := installFile(filepath.Join(root, k.dir, f[0]), target); err != nil {
			return fmt.Errorf("installing the kernel: %w", err)
		}
	}
	if tmpDir != "" {
		if err := atomicfile.SyncDir(tmpDir); err != nil {
			return err
		}
		if err := os.Rename(tmpDir, bootDir); err != nil {
			return fmt.Errorf("installing the kernel: %w", err)
		}
	}
	return atomicfile.SyncDir(filepath.Dir(bootDir))
}

// installFile hardlinks src to dst, or copies it (content and mode) when a link is not
// possible, through a temporary name in dst's directory.
func installFile(src, dst string) error {
	tmp := filepath.Join(filepath.Dir(dst), tmpPrefix+filepath.Base(dst))
	_ = os.Remove(tmp)
	err := os.Link(src, tmp)
	if err != nil {
		if !errors.Is(err, unix.EXDEV) && !errors.Is(err, unix.EMLINK) && !errors.Is(err, unix.EPERM) {
			return err
		}
		if err := copyRegular(src, tmp); err != nil {
			return err
		}
	}
	return os.Rename(tmp, dst)
}

// copyRegular copies a regular file's content and permission bits, and syncs it.
func copyRegular(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
