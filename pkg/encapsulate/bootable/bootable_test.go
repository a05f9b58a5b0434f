package bootable_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/ostree"
)

const kver = "6.1.0-test"

var (
	kernelData = []byte("KERNEL IMAGE " + kver + "\n")
	initrdData = []byte("INITRAMFS " + kver + "\n")
	configData = []byte("CONFIG_X=y\n")
	sysmapData = []byte("ffffffff81000000 T _text\n")
	fixedTime  = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
)

func writeFile(t *testing.T, root, rel string, data []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // no umask
		t.Fatal(err)
	}
}

// mkdir makes a directory with mode (an st_mode permission value: 0o1777 is sticky).
func mkdir(t *testing.T, root, rel string, mode uint32) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// debianRootfs builds a small tree laid out as Debian lays out a system with a kernel package.
func debianRootfs(t *testing.T) string {
	t.Helper()
	r := filepath.Join(t.TempDir(), "rootfs")
	writeFile(t, r, "boot/vmlinuz-"+kver, kernelData, 0o644)
	writeFile(t, r, "boot/initrd.img-"+kver, initrdData, 0o644)
	writeFile(t, r, "boot/config-"+kver, configData, 0o644)
	writeFile(t, r, "boot/System.map-"+kver, sysmapData, 0o644)
	writeFile(t, r, "boot/grub/grub.cfg", []byte("set timeout=5\n"), 0o644)
	writeFile(t, r, "usr/lib/modules/"+kver+"/kernel/drivers/test.ko", []byte("MODULE"), 0o644)
	writeFile(t, r, "usr/lib/modules/"+kver+"/modules.dep", []byte("kernel/drivers/test.ko:\n"), 0o644)
	writeFile(t, r, "usr/lib/os-release", []byte("PRETTY_NAME=\"Test OS 12\"\nNAME=\"Test OS\"\nID=testos\nVERSION_ID=\"12.5\"\nVERSION=\"12.5 (test)\"\n"), 0o644)
	writeFile(t, r, "usr/bin/true", []byte("#!/bin/sh\n"), 0o755)
	mkdir(t, r, "etc", 0o755)
	if err := os.Symlink("../usr/lib/os-release", filepath.Join(r, "etc/os-release")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, r, "etc/hostname", []byte("test\n"), 0o644)
	writeFile(t, r, "etc/shadow", []byte("root:*:19000:0:99999:7:::\n"), 0o640)
	writeFile(t, r, "var/lib/x", []byte("var content\n"), 0o644)
	mkdir(t, r, "var/tmp", 0o1777)
	if err := os.Symlink("boot/vmlinuz-"+kver, filepath.Join(r, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("usr/bin", filepath.Join(r, "bin")); err != nil {
		t.Fatal(err)
	}
	// /dev with a real device node, /run with a FIFO and /tmp with a file: never read.
	mkdir(t, r, "dev", 0o755)
	if err := unix.Mknod(filepath.Join(r, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	mkdir(t, r, "run/lock", 0o755)
	if err := unix.Mkfifo(filepath.Join(r, "run/initctl"), 0o600); err != nil {
		t.Fatal(err)
	}
	mkdir(t, r, "tmp", 0o1777)
	writeFile(t, r, "tmp/leftover", []byte("junk"), 0o644)
	// no /proc and no /sys: they are created
	return r
}

// minimalRootfs has a kernel the Fedora way and nothing else of note.
func minimalRootfs(t *testing.T) string {
	t.Helper()
	r := filepath.Join(t.TempDir(), "rootfs")
	writeFile(t, r, "usr/lib/modules/"+kver+"/vmlinuz", kernelData, 0o755)
	writeFile(t, r, "etc/os-release", []byte("ID=testos\n"), 0o644)
	return r
}

func newRepo(t *testing.T) *ostree.Repo {
	t.Helper()
	repo, err := ostree.Init(context.Background(), filepath.Join(t.TempDir(), "repo"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

type lsEntry struct {
	mode     string // e.g. "d00755", "-00644", "l00777"
	checksum string // content checksum of files, dirtree checksum of directories
}

// ostreeLs runs the real `ostree ls -R -C` and indexes its output by path.
func ostreeLs(t *testing.T, repo, ref string) map[string]lsEntry {
	t.Helper()
	out := testutil.Run(t, "ostree", "ls", "--repo="+repo, "-R", "-C", ref)
	m := map[string]lsEntry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("unexpected ostree ls line %q", line)
		}
		p := f[5]
		if f[0][0] == 'd' {
			p = f[6]
		}
		m[p] = lsEntry{mode: f[0], checksum: f[4]}
	}
	return m
}

func children(ls map[string]lsEntry, dir string) []string {
	var out []string
	for p := range ls {
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func contentChecksum(mode uint32, data []byte) string {
	return ostree.ContentChecksum(&ostree.FileHeader{Mode: ostree.ModeRegular | mode}, data).String()
}

func showKey(t *testing.T, repo, ref, key string) string {
	t.Helper()
	return strings.TrimSpace(testutil.Run(t, "ostree", "show", "--repo="+repo, "--print-metadata-key="+key, ref))
}

// snapshot records every path of a tree with its type, mode and size, to show a tree unchanged.
func snapshot(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCommitDebianLayout(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	rootfs := debianRootfs(t)
	before := snapshot(t, rootfs)
	repo := newRepo(t)
	const branch = "testos/x86_64"
	var progressCalls atomic.Int64
	sum, err := bootable.Commit(t.Context(), repo, rootfs,
		bootable.WithBranch(branch), bootable.WithSubject("subject"), bootable.WithBody("body"),
		bootable.WithTimestamp(fixedTime), bootable.WithMetadataString("build", "42"),
		bootable.WithProgress(func(ostree.CommitProgress) { progressCalls.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	if head, err := repo.ReadRef(branch); err != nil || head != sum {
		t.Fatalf("ref %s = %v, %v; want %s", branch, head, err, sum)
	}
	if after := snapshot(t, rootfs); !slices.Equal(before, after) {
		t.Errorf("the rootfs changed:\nbefore %v\nafter  %v", before, after)
	}
	if progressCalls.Load() == 0 {
		t.Error("no progress reported")
	}

	ls := ostreeLs(t, repo.Path(), branch)
	mod := "/usr/lib/modules/" + kver
	for p, want := range map[string]string{
		mod + "/vmlinuz":                contentChecksum(0o644, kernelData),
		mod + "/initramfs.img":          contentChecksum(0o644, initrdData),
		mod + "/config":                 contentChecksum(0o644, configData),
		mod + "/System.map":             contentChecksum(0o644, sysmapData),
		mod + "/kernel/drivers/test.ko": contentChecksum(0o644, []byte("MODULE")),
		"/usr/etc/hostname":             contentChecksum(0o644, []byte("test\n")),
		"/usr/etc/shadow":               contentChecksum(0o640, []byte("root:*:19000:0:99999:7:::\n")),
		"/var/lib/x":                    contentChecksum(0o644, []byte("var content\n")),
	} {
		if got := ls[p]; got.checksum != want {
			t.Errorf("%s: checksum %q (mode %s), want %s", p, got.checksum, got.mode, want)
		}
	}
	for p, mode := range map[string]string{
		"/usr/etc/os-release": "l00777", "/bin": "l00777", "/var/tmp": "d01777",
		"/boot": "d00755", "/dev": "d00755", "/proc": "d00755", "/sys": "d00755", "/run": "d00755", "/tmp": "d01777",
	} {
		if got := ls[p].mode; got != mode {
			t.Errorf("%s: mode %q, want %s", p, got, mode)
		}
	}
	for _, d := range []string{"/boot", "/dev", "/proc", "/sys", "/run", "/tmp"} {
		if c := children(ls, d); len(c) > 0 {
			t.Errorf("%s is not empty: %v", d, c)
		}
	}
	for _, p := range []string{"/etc", "/vmlinuz"} {
		if _, ok := ls[p]; ok {
			t.Errorf("%s is in the commit", p)
		}
	}

	for key, want := range map[string]string{
		"ostree.linux": "'" + kver + "'", "ostree.bootable": "true", "version": "'12.5'", "build": "'42'",
		"ostree.ref-binding": "['" + branch + "']",
	} {
		if got := showKey(t, repo.Path(), branch, key); got != want {
			t.Errorf("metadata %s = %s, want %s", key, got, want)
		}
	}
	c, err := repo.ReadCommit(sum)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range c.Metadata {
		keys = append(keys, e.Key)
	}
	if want := []string{"build", "version", "ostree.bootable", "ostree.linux", "ostree.ref-binding"}; !slices.Equal(keys, want) {
		t.Errorf("metadata keys %v, want %v", keys, want)
	}
	if c.Subject != "subject" || c.Body != "body" || c.Timestamp != uint64(fixedTime.Unix()) {
		t.Errorf("commit subject %q body %q timestamp %d", c.Subject, c.Body, c.Timestamp)
	}
	testutil.Run(t, "ostree", "fsck", "--repo="+repo.Path())

	// libostree's own rules: the commit deploys, and the BLS entry boots our kernel.
	deployAndCheck(t, repo.Path(), branch, kver, kernelData, initrdData)
}

// fsImmutableFL is the inode flag (chattr +i) ostree sets on deployment directories.
const fsImmutableFL = 0x10

// deployAndCheck deploys branch of repo with the real `ostree admin` into a new sysroot and checks
// the BLS entry and the kernel files it points at.
func deployAndCheck(t *testing.T, repo, branch, kver string, kernel, initrd []byte) {
	t.Helper()
	sysroot := filepath.Join(t.TempDir(), "sysroot")
	if err := os.Mkdir(sysroot, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { clearImmutable(t, sysroot) }) // runs before TempDir's removal
	testutil.Run(t, "ostree", "admin", "init-fs", "--modern", sysroot)
	testutil.Run(t, "ostree", "admin", "os-init", "--sysroot="+sysroot, "testos")
	testutil.Run(t, "ostree", "config", "--repo="+sysroot+"/ostree/repo", "set", "sysroot.bootloader", "none")
	testutil.Run(t, "ostree", "pull-local", "--repo="+sysroot+"/ostree/repo", repo, branch)
	testutil.Run(t, "ostree", "admin", "deploy", "--sysroot="+sysroot, "--os=testos", branch)

	entries, err := filepath.Glob(filepath.Join(sysroot, "boot/loader/entries/*.conf"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("BLS entries: %v, %v", entries, err)
	}
	data, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	bootcsum := sha256.Sum256(append(append([]byte(nil), kernel...), initrd...))
	dir := "/ostree/testos-" + hex.EncodeToString(bootcsum[:])
	entry := string(data)
	for _, want := range []string{"linux " + dir + "/vmlinuz-" + kver, "initrd " + dir + "/initramfs-" + kver + ".img"} {
		if !strings.Contains(entry, want+"\n") && !strings.HasSuffix(entry, want) {
			t.Errorf("BLS entry %s lacks %q:\n%s", entries[0], want, entry)
		}
	}
	for name, want := range map[string][]byte{"vmlinuz-" + kver: kernel, "initramfs-" + kver + ".img": initrd} {
		got, err := os.ReadFile(filepath.Join(sysroot, "boot", dir, name))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s/boot%s/%s: %v (%d bytes)", sysroot, dir, name, err, len(got))
		}
	}
	// The deployment's /etc was made from our /usr/etc.
	deploys, _ := filepath.Glob(filepath.Join(sysroot, "ostree/deploy/testos/deploy/*.0"))
	if len(deploys) != 1 {
		t.Fatalf("deployments: %v", deploys)
	}
	if _, err := os.Lstat(filepath.Join(deploys[0], "etc/os-release")); err != nil {
		t.Errorf("deployed /etc: %v", err)
	}
}

func clearImmutable(t *testing.T, sysroot string) {
	dirs, _ := filepath.Glob(filepath.Join(sysroot, "ostree/deploy/*/deploy/*"))
	for _, d := range dirs {
		f, err := os.Open(d)
		if err != nil {
			continue
		}
		flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
		if err == nil && flags&fsImmutableFL != 0 {
			if err := unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL)); err != nil {
				t.Errorf("clearing the immutable flag of %s: %v", d, err)
			}
		}
		f.Close()
	}
}

func TestCommitConventions(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, r string)
		check func(t *testing.T, ls map[string]lsEntry)
	}{{
		name: "/ostree becomes a symlink to sysroot/ostree",
		setup: func(t *testing.T, r string) {
			if err := os.Symlink("/elsewhere", filepath.Join(r, "ostree")); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, ls map[string]lsEntry) {
			if ls["/ostree"].mode != "l00777" || ls["/sysroot"].mode != "d00755" {
				t.Errorf("/ostree: %v, /sysroot: %v", ls["/ostree"], ls["/sysroot"])
			}
		},
	}, {
		name: "empty usr/etc is replaced",
		setup: func(t *testing.T, r string) {
			mkdir(t, r, "usr/etc", 0o700)
		},
		check: func(t *testing.T, ls map[string]lsEntry) {
			if ls["/usr/etc"].mode != "d00755" || ls["/usr/etc/os-release"].mode == "" {
				t.Errorf("usr/etc: %v, usr/etc/os-release: %v", ls["/usr/etc"], ls["/usr/etc/os-release"])
			}
		},
	}, {
		name: "usr/etc alone is kept",
		setup: func(t *testing.T, r string) {
			if err := os.Rename(filepath.Join(r, "etc"), filepath.Join(r, "usr/etc")); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, ls map[string]lsEntry) {
			if ls["/usr/etc/os-release"].mode == "" {
				t.Error("usr/etc/os-release missing")
			}
		},
	}, {
		name: "same kernel in /boot and modules",
		setup: func(t *testing.T, r string) {
			writeFile(t, r, "boot/vmlinuz-"+kver, kernelData, 0o755)
			writeFile(t, r, "boot/initramfs-"+kver+".img", initrdData, 0o644)
		},
		check: func(t *testing.T, ls map[string]lsEntry) {
			mod := "/usr/lib/modules/" + kver
			if ls[mod+"/vmlinuz"].checksum != contentChecksum(0o755, kernelData) ||
				ls[mod+"/initramfs.img"].checksum != contentChecksum(0o644, initrdData) {
				t.Errorf("vmlinuz %v, initramfs.img %v", ls[mod+"/vmlinuz"], ls[mod+"/initramfs.img"])
			}
			if c := children(ls, "/boot"); len(c) > 0 {
				t.Errorf("/boot: %v", c)
			}
		},
	}, {
		name: "kernel in /boot without a modules directory",
		setup: func(t *testing.T, r string) {
			if err := os.RemoveAll(filepath.Join(r, "usr/lib/modules")); err != nil {
				t.Fatal(err)
			}
			writeFile(t, r, "boot/vmlinuz-"+kver, kernelData, 0o644)
			writeFile(t, r, "boot/vmlinuz-0-rescue-0123456789abcdef", []byte("RESCUE"), 0o644)
		},
		check: func(t *testing.T, ls map[string]lsEntry) {
			mod := "/usr/lib/modules/" + kver
			if ls[mod].mode != "d00755" || ls[mod+"/vmlinuz"].checksum != contentChecksum(0o644, kernelData) {
				t.Errorf("%s: %v, vmlinuz: %v", mod, ls[mod], ls[mod+"/vmlinuz"])
			}
			if c := children(ls, "/boot"); len(c) > 0 {
				t.Errorf("/boot: %v", c)
			}
		},
	}, {
		name: "no etc at all",
		setup: func(t *testing.T, r string) {
			if err := os.RemoveAll(filepath.Join(r, "etc")); err != nil {
				t.Fatal(err)
			}
		},
		check: func(t *testing.T, ls map[string]lsEntry) {
			if ls["/usr/etc"].mode != "d00755" {
				t.Errorf("usr/etc: %v", ls["/usr/etc"])
			}
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := minimalRootfs(t)
			tc.setup(t, r)
			repo := newRepo(t)
			if _, err := bootable.Commit(t.Context(), repo, r, bootable.WithBranch("b")); err != nil {
				t.Fatal(err)
			}
			tc.check(t, ostreeLs(t, repo.Path(), "b"))
		})
	}
}

func TestCommitErrors(t *testing.T) {
	testutil.Root(t)
	for _, tc := range []struct {
		name   string
		setup  func(t *testing.T, r string)
		opts   []bootable.Option
		target error    // errors.Is target, if any
		want   []string // substrings of the message
	}{{
		name:   "no kernel",
		setup:  func(t *testing.T, r string) { os.Remove(filepath.Join(r, "usr/lib/modules", kver, "vmlinuz")) },
		target: bootable.ErrNoKernel,
		want:   []string{"no kernel found", "usr/lib/modules/KVER/vmlinuz", "linux-image-amd64"},
	}, {
		name: "vmlinuz is a symlink",
		setup: func(t *testing.T, r string) {
			replaceWithSymlink(t, filepath.Join(r, "usr/lib/modules", kver, "vmlinuz"))
		},
		target: bootable.ErrNoKernel,
		want:   []string{"no kernel found"},
	}, {
		name: "two kernels",
		setup: func(t *testing.T, r string) {
			writeFile(t, r, "boot/vmlinuz-6.2.0-other", kernelData, 0o644)
			mkdir(t, r, "usr/lib/modules/6.2.0-other", 0o755)
		},
		target: bootable.ErrMultipleKernels,
		want:   []string{"more than one kernel", kver + " (usr/lib/modules/" + kver + "/vmlinuz)", "6.2.0-other (boot/vmlinuz-6.2.0-other)", "remove the others", "apt-get purge"},
	}, {
		name: "etc and a non-empty usr/etc",
		setup: func(t *testing.T, r string) {
			writeFile(t, r, "usr/etc/fstab", []byte("# fstab\n"), 0o644)
		},
		target: bootable.ErrEtcConflict,
		want:   []string{"both /etc and a non-empty /usr/etc", "merge usr/etc into etc"},
	}, {
		name: "kernel files differ",
		setup: func(t *testing.T, r string) {
			writeFile(t, r, "boot/vmlinuz-"+kver, []byte("another kernel"), 0o644)
		},
		target: bootable.ErrKernelFileConflict,
		want:   []string{"/boot/vmlinuz-" + kver, "/usr/lib/modules/" + kver + "/vmlinuz", "differ"},
	}, {
		name: "FIFO in /var",
		setup: func(t *testing.T, r string) {
			mkdir(t, r, "var/spool", 0o755)
			if err := unix.Mkfifo(filepath.Join(r, "var/spool/pipe"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"var/spool/pipe", "FIFO", "remove it"},
	}, {
		name: "socket in /var",
		setup: func(t *testing.T, r string) {
			mkdir(t, r, "var/run-sock", 0o755)
			l, err := net.Listen("unix", filepath.Join(r, "var/run-sock/s"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		},
		want: []string{"var/run-sock/s", "socket", "remove it"},
	}, {
		name: "non-UTF-8 file name",
		setup: func(t *testing.T, r string) {
			writeFile(t, r, "var/lib/caf\xe9", []byte("latin-1"), 0o644)
		},
		want: []string{"var/lib", `"caf\xe9"`, "not valid UTF-8", "rename it"},
	}, {
		name: "tmp is a symlink",
		setup: func(t *testing.T, r string) {
			mkdir(t, r, "var/tmp", 0o1777)
			if err := os.Symlink("var/tmp", filepath.Join(r, "tmp")); err != nil {
				t.Fatal(err)
			}
		},
		want: []string{"/tmp is not a directory"},
	}, {
		name: "reserved metadata key",
		opts: []bootable.Option{bootable.WithMetadataString("ostree.linux", "1.0")},
		want: []string{"ostree.linux", "set by the bootable commit"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := minimalRootfs(t)
			if tc.setup != nil {
				tc.setup(t, r)
			}
			repo := newRepo(t)
			_, err := bootable.Commit(t.Context(), repo, r, append([]bootable.Option{bootable.WithBranch("b")}, tc.opts...)...)
			if err == nil {
				t.Fatal("commit succeeded")
			}
			t.Logf("error: %v", err)
			if tc.target != nil && !errors.Is(err, tc.target) {
				t.Errorf("error %q is not %v", err, tc.target)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := repo.ReadRef("b"); !errors.Is(err, ostree.ErrRefNotFound) {
				t.Errorf("the branch was written after a failed commit: %v", err)
			}
		})
	}
}

func replaceWithSymlink(t *testing.T, p string) {
	t.Helper()
	if err := os.Rename(p, p+"-real"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(p)+"-real", p); err != nil {
		t.Fatal(err)
	}
}

func TestMultipleKernelsErrorLists(t *testing.T) {
	r := minimalRootfs(t)
	writeFile(t, r, "usr/lib/modules/5.10.0-old/vmlinuz", kernelData, 0o644)
	writeFile(t, r, "boot/vmlinuz-5.10.0-old", kernelData, 0o644)
	_, err := bootable.Commit(t.Context(), newRepo(t), r)
	var mk *bootable.MultipleKernelsError
	if !errors.As(err, &mk) {
		t.Fatalf("error %v is not a *MultipleKernelsError", err)
	}
	want := []bootable.Kernel{
		{Version: "5.10.0-old", Paths: []string{"usr/lib/modules/5.10.0-old/vmlinuz", "boot/vmlinuz-5.10.0-old"}},
		{Version: kver, Paths: []string{"usr/lib/modules/" + kver + "/vmlinuz"}},
	}
	if fmt.Sprint(mk.Kernels) != fmt.Sprint(want) {
		t.Errorf("kernels %v, want %v", mk.Kernels, want)
	}
}

func TestVersion(t *testing.T) {
	for _, tc := range []struct {
		name, osRelease string
		opts            []bootable.Option
		want            string // "" means no version key
	}{
		{"VERSION_ID", "ID=x\nVERSION=\"9 (nine)\"\nVERSION_ID=9\n", nil, "9"},
		{"VERSION", "ID=x\nVERSION='rolling \"edge\"'\n", nil, `rolling "edge"`},
		{"none", "ID=x\n", nil, ""},
		{"option wins", "VERSION_ID=9\n", []bootable.Option{bootable.WithVersion("2024.1")}, "2024.1"},
		{"empty option turns detection off", "VERSION_ID=9\n", []bootable.Option{bootable.WithVersion("")}, ""},
		{"metadata string wins", "VERSION_ID=9\n", []bootable.Option{bootable.WithMetadataString("version", "m")}, "m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := minimalRootfs(t)
			writeFile(t, r, "etc/os-release", []byte(tc.osRelease), 0o644)
			repo := newRepo(t)
			sum, err := bootable.Commit(t.Context(), repo, r, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			c, err := repo.ReadCommit(sum)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := c.Metadata.String("version")
			if got != tc.want || ok != (tc.want != "") {
				t.Errorf("version %q (present %v), want %q", got, ok, tc.want)
			}
		})
	}
}

// The same rootfs and timestamp give the same commit, whichever copy of the tree is committed.
// (SOURCE_DATE_EPOCH is the CLI's to read: cmd/bootc's TestSourceDateEpoch.)
func TestReproducible(t *testing.T) {
	testutil.Root(t)
	a, b := debianRootfs(t), debianRootfs(t)
	commit := func(rootfs string, opts ...bootable.Option) ostree.Checksum {
		t.Helper()
		sum, err := bootable.Commit(t.Context(), newRepo(t), rootfs, append([]bootable.Option{bootable.WithBranch("os/x")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	s1 := commit(a, bootable.WithTimestamp(fixedTime))
	s2 := commit(b, bootable.WithTimestamp(fixedTime))
	if s1 != s2 {
		t.Errorf("two commits of the same tree differ: %s, %s", s1, s2)
	}
	if s4 := commit(a, bootable.WithTimestamp(fixedTime.Add(time.Second))); s4 == s1 {
		t.Error("another timestamp gave the same commit")
	}
}

// The real Debian minbase tree has no kernel; with one added, it commits, passes fsck and deploys.
func TestDebianTree(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	debian := testutil.DebianTree(t)
	repo := newRepo(t)
	if _, err := bootable.Commit(t.Context(), repo, debian, bootable.WithBranch("debian")); !errors.Is(err, bootable.ErrNoKernel) {
		t.Fatalf("commit of a tree without a kernel: %v, want ErrNoKernel", err)
	}

	rootfs := filepath.Join(t.TempDir(), "rootfs")
	testutil.Run(t, "cp", "-a", debian, rootfs)
	const dkver = "6.1.0-99-amd64"
	kernel, initrd := []byte("FAKE DEBIAN KERNEL"), []byte("FAKE DEBIAN INITRD")
	writeFile(t, rootfs, "boot/vmlinuz-"+dkver, kernel, 0o644)
	writeFile(t, rootfs, "boot/initrd.img-"+dkver, initrd, 0o644)
	writeFile(t, rootfs, "usr/lib/modules/"+dkver+"/modules.dep", nil, 0o644)
	if err := os.Symlink("boot/vmlinuz-"+dkver, filepath.Join(rootfs, "vmlinuz")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sum, err := bootable.Commit(t.Context(), repo, rootfs, bootable.WithBranch("debian"), bootable.WithTimestamp(fixedTime))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("committed the Debian tree in %s: %s", time.Since(start).Round(time.Millisecond), sum)
	testutil.Run(t, "ostree", "fsck", "--repo="+repo.Path())
	if v := showKey(t, repo.Path(), "debian", "version"); v != "'12'" {
		t.Errorf("version %s, want '12'", v)
	}
	if v := showKey(t, repo.Path(), "debian", "ostree.linux"); v != "'"+dkver+"'" {
		t.Errorf("ostree.linux %s", v)
	}
	ls := ostreeLs(t, repo.Path(), "debian")
	for _, p := range []string{"/usr/etc/passwd", "/usr/lib/modules/" + dkver + "/vmlinuz", "/usr/lib/modules/" + dkver + "/initramfs.img", "/var/lib/dpkg/status"} {
		if _, ok := ls[p]; !ok {
			t.Errorf("%s missing from the commit", p)
		}
	}
	for _, p := range []string{"/etc", "/vmlinuz", "/boot/vmlinuz-" + dkver} {
		if _, ok := ls[p]; ok {
			t.Errorf("%s is in the commit", p)
		}
	}
	deployAndCheck(t, repo.Path(), "debian", dkver, kernel, initrd)
}
