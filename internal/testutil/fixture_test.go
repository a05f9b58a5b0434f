package testutil

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestFixtureContentDeterministic(t *testing.T) {
	a := fixtureContent("seed", 1000)
	if !bytes.Equal(a, fixtureContent("seed", 1000)) {
		t.Fatal("same seed gave different content")
	}
	if bytes.Equal(a, fixtureContent("other", 1000)) {
		t.Fatal("different seeds gave the same content")
	}
	if !bytes.Equal(a[:999], fixtureContent("seed", 999)) {
		t.Fatal("content of a shorter file is not a prefix")
	}
	// Pinned so the fixture never changes silently across Go versions.
	sum := sha256.Sum256(fixtureContent("big", FixtureBigSize))
	const want = "38c5ac183cc689e5d6843a5915ad7b0081b85b353a47658864fa4e9033ca2b01"
	if got := hex.EncodeToString(sum[:]); got != want {
		t.Fatalf("files/big sha256 = %s, want %s", got, want)
	}
}

// fixtureManifest describes every entry under root in a stable text form:
// path, type and mode, owner, size, content hash or link target, xattrs, and
// a hardlink group index.
func fixtureManifest(t *testing.T, root string) []string {
	t.Helper()
	inodes := map[uint64]int{}
	var lines []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			group, ok := inodes[st.Ino]
			if !ok {
				group = len(inodes)
				inodes[st.Ino] = group
			}
			line += fmt.Sprintf(" size=%d sha256=%x nlink=%d inode-group=%d", len(data), sum[:8], st.Nlink, group)
		case unix.S_IFLNK:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			line += " xattrs=" + strings.Join(userXattrs(t, path), ",")
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return lines
}

func userXattrs(t *testing.T, path string) []string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		t.Fatalf("llistxattr %s: %v", path, err)
	}
	var out []string
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if !strings.HasPrefix(name, "user.") {
			continue
		}
		val := make([]byte, 4096)
		vn, err := unix.Lgetxattr(path, name, val)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", path, name, err)
		}
		out = append(out, fmt.Sprintf("%s=%x", name, val[:vn]))
	}
	slices.Sort(out)
	return out
}

func TestFixtureTree(t *testing.T) {
	Root(t)
	dir1, dir2 := t.TempDir(), t.TempDir()
	FixtureTree(t, dir1)
	FixtureTree(t, dir2)

	m1, m2 := fixtureManifest(t, dir1), fixtureManifest(t, dir2)
	if !slices.Equal(m1, m2) {
		t.Errorf("two fixture trees differ:\n%s\n---\n%s", strings.Join(m1, "\n"), strings.Join(m2, "\n"))
	}

	lstat := func(rel string) *syscall.Stat_t {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dir1, filepath.FromSlash(rel)))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t)
	}

	for rel, size := range map[string]int64{
		"files/empty": 0, "files/one": 1, "files/page-minus-one": 4095, "files/page": 4096,
		"files/odd-65537": 65537, "files/big": 3<<20 + 17,
	} {
		if st := lstat(rel); st.Size != size {
			t.Errorf("%s: size %d, want %d", rel, st.Size, size)
		}
	}
	for rel, mode := range map[string]uint32{
		"modes/setuid": 0o4755, "modes/setgid": 0o2755, "modes/sticky-dir": 0o1777,
		"modes/private": 0o600, "modes/readonly": 0o444, "modes/exec-only-dir": 0o711,
		"owners/setuid-1000": 0o4755,
	} {
		if got := lstat(rel).Mode &^ unix.S_IFMT; got != mode {
			t.Errorf("%s: mode %o, want %o", rel, got, mode)
		}
	}
	for rel, owner := range map[string][2]uint32{
		"owners/user-1000": {1000, 1000}, "owners/nobody": {65534, 65534}, "owners/mixed": {1000, 65534},
		"owners/dir-1000": {1000, 1000}, "owners/setuid-1000": {1000, 1000}, "symlinks/owned": {1000, 1000},
	} {
		if st := lstat(rel); st.Uid != owner[0] || st.Gid != owner[1] {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, st.Uid, st.Gid, owner[0], owner[1])
		}
	}
	if a, c := lstat("hardlinks/a"), lstat("hardlinks/other/c"); a.Ino != c.Ino || a.Nlink != 3 {
		t.Errorf("hardlinks: inodes %d/%d nlink %d", a.Ino, c.Ino, a.Nlink)
	}
	if a, b := lstat("dup/a/page"), lstat("files/page"); a.Ino == b.Ino {
		t.Error("duplicates share an inode")
	}
	val := make([]byte, 64)
	n, err := unix.Lgetxattr(filepath.Join(dir1, "xattrs/file"), "user.binary", val)
	if err != nil || !bytes.Equal(val[:n], FixtureBinaryXattr) {
		t.Errorf("user.binary = %x, %v", val[:n], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(dir1, "xattrs/dir"), "user.dir-a", val); err != nil {
		t.Errorf("directory xattr: %v", err)
	}
	if len(FixtureLongName) != 255 {
		t.Errorf("long name has %d bytes", len(FixtureLongName))
	}
	lstat("names/" + FixtureLongName)
	for _, rel := range []string{"names/ünïcødé", "names/日本語.txt", "names/emoji-🚀", "names/with spaces.txt", "names/-leading-dash", "empty/nested-empty"} {
		lstat(rel)
	}
	deep := "deep"
	for i := 1; i <= FixtureDeepDepth; i++ {
		deep += fmt.Sprintf("/d%02d", i)
	}
	lstat(deep + "/bottom")
	if target, err := os.Readlink(filepath.Join(dir1, "symlinks/dangling")); err != nil || target != "does/not/exist" {
		t.Errorf("dangling symlink: %q, %v", target, err)
	}
	if fi, err := os.Stat(filepath.Join(dir1, "symlinks/to-dir")); err != nil || !fi.IsDir() {
		t.Errorf("symlink to dir: %v", err)
	}
}

func TestFixtureTreeFSNotEmpty(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := FixtureTreeFS(dir); err == nil {
		t.Fatal("FixtureTreeFS accepted a non-empty directory")
	}
}
