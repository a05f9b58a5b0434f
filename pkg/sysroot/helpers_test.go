package sysroot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/fsflags"
	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// newTestDir returns an empty directory whose deployments' immutable flags are cleared before
// the test's temporary directory is removed.
func newTestDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() { clearImmutable(t, dir) })
	return dir
}

// clearImmutable clears FS_IMMUTABLE_FL on every deployment directory below root (ours and the
// real ostree's), like `chattr -i`, so the directory can be removed.
func clearImmutable(t *testing.T, root string) {
	matches, _ := filepath.Glob(filepath.Join(root, "*", "ostree", "deploy", "*", "deploy", "*"))
	more, _ := filepath.Glob(filepath.Join(root, "ostree", "deploy", "*", "deploy", "*"))
	for _, m := range append(matches, more...) {
		if st, err := os.Lstat(m); err == nil && st.IsDir() {
			if err := fsflags.SetImmutable(m, false); err != nil {
				t.Errorf("clearing the immutable flag: %v", err)
			}
		}
	}
}

// newSysroot makes a sysroot with stateroot "myos" in a new directory (as root: deployments
// keep real owners).
func newSysroot(t *testing.T) *Sysroot {
	t.Helper()
	testutil.Root(t)
	return newSysrootAt(t, filepath.Join(newTestDir(t), "sysroot"))
}

func newSysrootAt(t *testing.T, path string) *Sysroot {
	t.Helper()
	s, err := Init(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.InitStateroot("myos"); err != nil {
		t.Fatal(err)
	}
	return s
}

// baseTree is a small bootable tree: path -> content ("/" suffix: directory).
func baseTree() map[string]string {
	return map[string]string{
		"usr/lib/modules/6.1.0-test/vmlinuz":       "KERNEL",
		"usr/lib/modules/6.1.0-test/initramfs.img": "INITRD",
		"usr/lib/os-release":                       "NAME=Test\nPRETTY_NAME=\"Test OS 1\"\nID=test\n",
		"usr/etc/os-release":                       "NAME=Test\nPRETTY_NAME=\"Test OS 1\"\nID=test\n",
		"usr/etc/motd":                             "hello\n",
		"usr/etc/a.conf":                           "a=1\n",
		"usr/etc/b.conf":                           "b=1\n",
		"usr/etc/c.conf":                           "c=1\n",
		"usr/etc/d/inner.conf":                     "inner=1\n",
		"usr/bin/true":                             "#!/bin/sh\n",
		"var/lib/something/data":                   "seed\n",
		"boot/":                                    "",
		"dev/":                                     "",
		"proc/":                                    "",
		"sys/":                                     "",
		"run/":                                     "",
		"tmp/":                                     "",
		"sysroot/":                                 "",
	}
}

// writeTree writes files into a new directory; a "" content with a "/" suffix is a directory,
// and a content starting with "->" a symlink.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, c := range files {
		full := filepath.Join(root, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(c, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// commitTree commits files to the sysroot's repository as branch "test" with metadata version.
func commitTree(t *testing.T, s *Sysroot, version string, files map[string]string) ostree.Checksum {
	t.Helper()
	opts := []ostree.CommitOption{ostree.WithBranch("test"), ostree.WithSubject("v" + version),
		ostree.WithTimestamp(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))}
	if version != "" {
		opts = append(opts, ostree.WithMetadataString("version", version))
	}
	c, err := s.Repo().CommitDir(t.Context(), writeTree(t, files), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// with returns a copy of files with changes applied; a change to "" with no "/" suffix deletes.
func with(files map[string]string, changes map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range files {
		out[k] = v
	}
	for k, v := range changes {
		if v == "" && !strings.HasSuffix(k, "/") {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// deployAndWrite deploys commit, places it with the default rules and writes the list.
func deployAndWrite(t *testing.T, s *Sysroot, c ostree.Checksum, o DeployOptions) (*Deployment, *DeployStats) {
	t.Helper()
	if o.Stateroot == "" {
		o.Stateroot = "myos"
	}
	d, st, err := s.Deploy(t.Context(), c, o)
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if err := s.WriteDeployments(t.Context(), s.Place(d, PlaceOptions{}), WriteOptions{}); err != nil {
		t.Fatalf("WriteDeployments: %v", err)
	}
	return d, st
}

// run runs ostree (or another tool) and returns its stdout; the test fails on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	return testutil.Run(t, name, args...)
}

// summary renders deployments as "stateroot commit.serial bootcsum/bootserial kargs origin".
func summary(list []*Deployment) string {
	var b strings.Builder
	for _, d := range list {
		fmt.Fprintf(&b, "%d %s %s.%d %s/%d [%s] v=%q origin=%q\n", d.Index, d.Stateroot, d.Commit, d.Serial,
			d.BootCsum, d.BootSerial, strings.Join(d.Kargs, " "), d.Version, d.Origin.Marshal())
	}
	return b.String()
}

// bootState dumps what a bootloader and ostree see of a sysroot: /boot (entries, kernels,
// symlinks), /ostree/boot.* and the deployment directory names with their origins, with types,
// permissions, link targets and content checksums.
func bootState(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	add := func(base string) {
		err := filepath.WalkDir(filepath.Join(root, base), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			info, err := d.Info()
			if err != nil {
				return err
			}
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				lines = append(lines, fmt.Sprintf("%s -> %s", rel, target))
			case d.IsDir():
				lines = append(lines, fmt.Sprintf("%s/ %v", rel, info.Mode().Perm()))
			default:
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(data)
				content := hex.EncodeToString(sum[:8])
				if strings.HasSuffix(p, ".conf") || strings.HasSuffix(p, ".origin") {
					content = strings.ReplaceAll(string(data), "\n", "|")
				}
				lines = append(lines, fmt.Sprintf("%s %v %s", rel, info.Mode().Perm(), content))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	add("boot")
	bootLinks, _ := filepath.Glob(filepath.Join(root, "ostree", "boot.*"))
	for _, b := range bootLinks {
		rel, _ := filepath.Rel(root, b)
		add(rel)
	}
	deploys, _ := filepath.Glob(filepath.Join(root, "ostree", "deploy", "*", "deploy", "*"))
	for _, d := range deploys {
		rel, _ := filepath.Rel(root, d)
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(d, ".origin") {
			data, _ := os.ReadFile(d)
			lines = append(lines, fmt.Sprintf("%s %v %s", rel, fi.Mode().Perm(), strings.ReplaceAll(string(data), "\n", "|")))
		} else {
			lines = append(lines, fmt.Sprintf("%s/ %v immutable=%v", rel, fi.Mode().Perm(), isImmutable(t, d)))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// deploymentRefs lists the repository's ostree/ refs as `ostree refs` prints them.
func deploymentRefs(t *testing.T, repo string) string {
	t.Helper()
	var out []string
	for _, l := range strings.Split(run(t, "ostree", "refs", "--repo", repo), "\n") {
		if strings.HasPrefix(l, "ostree/") {
			out = append(out, l+"="+strings.TrimSpace(run(t, "ostree", "rev-parse", "--repo", repo, l)))
		}
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// checkEntriesExist checks that every BLS entry's linux and initrd file exists, both seen from
// the sysroot (/boot not separate) and from /boot (a separate partition, through boot -> .).
func checkEntriesExist(t *testing.T, root string) {
	t.Helper()
	entries, _ := filepath.Glob(filepath.Join(root, "boot", "loader", "entries", "*.conf"))
	if len(entries) == 0 {
		t.Fatalf("no boot entries in %s", root)
	}
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		b := parseBLS(data)
		for _, k := range []string{"linux", "initrd"} {
			p := b.get(k)
			if p == "" {
				t.Errorf("%s: no %s", e, k)
				continue
			}
			// From /boot as its own partition; with the /boot/ prefix also from the root
			// filesystem (both resolve through /boot/boot -> .).
			paths := []string{filepath.Join(root, "boot", p)}
			if strings.HasPrefix(p, "/boot/") {
				paths = append(paths, filepath.Join(root, p))
			}
			for _, f := range paths {
				if st, err := os.Stat(f); err != nil || !st.Mode().IsRegular() {
					t.Errorf("%s: %s %s: missing (%v)", e, k, f, err)
				}
			}
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// treeListing lists a directory tree: path, type and permissions, owner, and the content
// checksum or symlink target of each entry.
func treeListing(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			line += " " + hex.EncodeToString(sum[:8])
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

// linkCount is a file's number of hardlinks (0 for nil).
func linkCount(fi os.FileInfo) uint64 {
	if fi == nil {
		return 0
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 0
}

// runCode runs a command and returns its combined output and error, for commands expected to
// fail.
func runCode(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// isImmutable reports whether a directory has FS_IMMUTABLE_FL.
func isImmutable(t *testing.T, dir string) bool {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return false
	}
	return flags&fsflags.Immutable != 0
}
