package testutil

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Sizes of the regular files under files/ in the fixture tree.
const (
	FixtureBigSize = 3<<20 + 17 // files/big: 3 MiB + 17 bytes
)

// FixtureLongName is the name of a file with a 255-byte name (the Linux
// maximum) in the fixture's names/ directory.
var FixtureLongName = "long-" + strings.Repeat("x", 255-len("long-"))

// FixtureDeepDepth is the number of nested directories under deep/.
const FixtureDeepDepth = 40

// FixtureBinaryXattr is the value of the user.binary xattr on xattrs/file:
// it contains NUL bytes.
var FixtureBinaryXattr = []byte{0x00, 0x01, 0x02, 0x00, 0xfe, 0xff, 0x00}

// FixtureTree writes the interoperability fixture tree into dir, which must
// exist and be empty. It needs root (files are chowned to other users); the
// test is skipped otherwise (failed under CI=true). See FixtureTreeFS for the
// layout.
func FixtureTree(t testing.TB, dir string) {
	t.Helper()
	Root(t)
	if err := FixtureTreeFS(dir); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EOPNOTSUPP) {
			unavailable(t, "fixture tree: filesystem of %s lacks user xattrs: %v", dir, err)
			return
		}
		t.Fatalf("fixture tree: %v", err)
	}
}

// FixtureTreeFS writes the interoperability fixture tree into dir, which
// must exist and be empty. It must run as root. The content is the same on
// every call (modification times aside). Layout:
//
//	files/        regular files of 0, 1, 4095, 4096, 65537 and 3 MiB+17 bytes
//	              (pseudo-random content from a fixed seed)
//	dup/          exact copies of some files/ entries (separate inodes)
//	hardlinks/    a, b: one inode under two names; other/c is a third name
//	              for the same inode in another directory
//	symlinks/     relative, absolute, dangling, to-dir (a directory), and
//	              owned (a symlink chowned to 1000:1000)
//	modes/        setuid (04755), setgid (02755), private (0600),
//	              readonly (0444) files; sticky-dir (01777), setgid-dir
//	              (02755) and exec-only-dir (0711) directories
//	owners/       files and directories owned by 1000:1000, 65534:65534 and
//	              1000:65534
//	xattrs/       file with several user.* xattrs incl. user.binary (NUL
//	              bytes), a hardlinked xattr file, and dir, a directory with
//	              xattrs
//	names/        a 255-byte name, UTF-8 names, names with spaces and
//	              leading dashes
//	empty/        an empty directory holding another empty directory
//	deep/         a chain of 40 nested directories d01/d02/.../d40 with a
//	              file at the bottom
func FixtureTreeFS(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("fixture tree: %w", err)
	}
	if len(entries) != 0 {
		return fmt.Errorf("fixture tree: %s is not empty", dir)
	}
	b := &fixtureBuilder{root: dir}
	b.build()
	if b.err != nil {
		return fmt.Errorf("fixture tree in %s: %w", dir, b.err)
	}
	return nil
}

// fixtureBuilder records the first error and turns later calls into no-ops,
// which keeps the layout description in build readable.
type fixtureBuilder struct {
	root string
	err  error
}

func (b *fixtureBuilder) path(rel string) string {
	return filepath.Join(b.root, filepath.FromSlash(rel))
}

func (b *fixtureBuilder) fail(op, rel string, err error) {
	if b.err == nil && err != nil {
		b.err = fmt.Errorf("%s %s: %w", op, rel, err)
	}
}

// dir creates rel with the given permission bits (chmod after mkdir, so the
// umask does not matter and special bits stick).
func (b *fixtureBuilder) dir(rel string, mode uint32) {
	if b.err != nil {
		return
	}
	b.fail("mkdir", rel, os.Mkdir(b.path(rel), 0o700))
	b.chmod(rel, mode)
}

// file writes rel with size bytes of deterministic content derived from seed.
func (b *fixtureBuilder) file(rel string, size int, seed string, mode uint32) {
	if b.err != nil {
		return
	}
	b.fail("write", rel, os.WriteFile(b.path(rel), fixtureContent(seed, size), 0o600))
	b.chmod(rel, mode)
}

// text writes rel with the given content.
func (b *fixtureBuilder) text(rel, content string, mode uint32) {
	if b.err != nil {
		return
	}
	b.fail("write", rel, os.WriteFile(b.path(rel), []byte(content), 0o600))
	b.chmod(rel, mode)
}

func (b *fixtureBuilder) chmod(rel string, mode uint32) {
	if b.err != nil {
		return
	}
	// Raw Unix mode bits (04755 etc.), so no os.FileMode translation.
	b.fail("chmod", rel, unix.Chmod(b.path(rel), mode))
}

// chown changes the owner of rel without following symlinks. A chown clears
// setuid/setgid bits, so it comes before any chmod of special bits.
func (b *fixtureBuilder) chown(rel string, uid, gid int) {
	if b.err != nil {
		return
	}
	b.fail("chown", rel, os.Lchown(b.path(rel), uid, gid))
}

func (b *fixtureBuilder) symlink(target, rel string) {
	if b.err != nil {
		return
	}
	b.fail("symlink", rel, os.Symlink(target, b.path(rel)))
}

func (b *fixtureBuilder) link(oldRel, newRel string) {
	if b.err != nil {
		return
	}
	b.fail("link", newRel, os.Link(b.path(oldRel), b.path(newRel)))
}

func (b *fixtureBuilder) xattr(rel, name string, value []byte) {
	if b.err != nil {
		return
	}
	b.fail("setxattr "+name, rel, unix.Lsetxattr(b.path(rel), name, value, 0))
}

func (b *fixtureBuilder) build() {
	// Regular files of interesting sizes around page and block boundaries.
	b.dir("files", 0o755)
	b.file("files/empty", 0, "empty", 0o644)
	b.file("files/one", 1, "one", 0o644)
	b.file("files/page-minus-one", 4095, "page-minus-one", 0o644)
	b.file("files/page", 4096, "page", 0o644)
	b.file("files/odd-65537", 65537, "odd-65537", 0o644)
	b.file("files/big", FixtureBigSize, "big", 0o644)
	b.text("files/script.sh", "#!/bin/sh\necho fixture\n", 0o755)

	// Exact duplicates (same content, separate inodes) in other directories.
	b.dir("dup", 0o755)
	b.dir("dup/a", 0o755)
	b.dir("dup/b", 0o755)
	b.file("dup/a/page", 4096, "page", 0o644)
	b.file("dup/b/page-copy", 4096, "page", 0o644)
	b.file("dup/b/big-copy", FixtureBigSize, "big", 0o644)
	b.file("dup/b/empty-copy", 0, "empty", 0o644)
	b.file("dup/a/page-exec", 4096, "page", 0o755) // same content, different mode

	// Hardlinks: one inode, three names, across two directories.
	b.dir("hardlinks", 0o755)
	b.dir("hardlinks/other", 0o755)
	b.file("hardlinks/a", 10000, "hardlink", 0o644)
	b.link("hardlinks/a", "hardlinks/b")
	b.link("hardlinks/a", "hardlinks/other/c")

	// Symlinks.
	b.dir("symlinks", 0o755)
	b.symlink("../files/one", "symlinks/relative")
	b.symlink("/usr/bin/env", "symlinks/absolute")
	b.symlink("does/not/exist", "symlinks/dangling")
	b.symlink("../files", "symlinks/to-dir")
	b.symlink("relative", "symlinks/owned")
	b.chown("symlinks/owned", 1000, 1000)

	// Special and unusual modes.
	b.dir("modes", 0o755)
	b.file("modes/setuid", 100, "setuid", 0o4755)
	b.file("modes/setgid", 100, "setgid", 0o2755)
	b.file("modes/setuid-setgid", 100, "setuid-setgid", 0o6755)
	b.file("modes/private", 100, "private", 0o600)
	b.file("modes/readonly", 100, "readonly", 0o444)
	b.file("modes/no-perms", 100, "no-perms", 0o000)
	b.dir("modes/sticky-dir", 0o1777)
	b.file("modes/sticky-dir/inside", 10, "sticky", 0o644)
	b.dir("modes/setgid-dir", 0o2755)
	b.dir("modes/exec-only-dir", 0o711)
	b.file("modes/exec-only-dir/hidden", 10, "hidden", 0o644)

	// Non-root owners on files, directories and a setuid file.
	b.dir("owners", 0o755)
	b.file("owners/user-1000", 200, "user-1000", 0o644)
	b.chown("owners/user-1000", 1000, 1000)
	b.file("owners/nobody", 200, "nobody", 0o640)
	b.chown("owners/nobody", 65534, 65534)
	b.file("owners/mixed", 200, "mixed", 0o664)
	b.chown("owners/mixed", 1000, 65534)
	b.file("owners/setuid-1000", 200, "setuid-1000", 0o644)
	b.chown("owners/setuid-1000", 1000, 1000)
	b.chmod("owners/setuid-1000", 0o4755) // after chown, which clears it
	b.dir("owners/dir-1000", 0o750)
	b.chown("owners/dir-1000", 1000, 1000)
	b.file("owners/dir-1000/file", 300, "dir-1000-file", 0o600)
	b.chown("owners/dir-1000/file", 1000, 1000)
	b.dir("owners/dir-nobody", 0o755)
	b.chown("owners/dir-nobody", 65534, 65534)

	// Extended attributes (user namespace: ostree's bare-user mode uses
	// user.ostreemeta itself, the others pass through).
	b.dir("xattrs", 0o755)
	b.file("xattrs/file", 500, "xattr-file", 0o644)
	b.xattr("xattrs/file", "user.alpha", []byte("first"))
	b.xattr("xattrs/file", "user.beta", []byte("second value with spaces"))
	b.xattr("xattrs/file", "user.binary", FixtureBinaryXattr)
	b.xattr("xattrs/file", "user.empty", []byte{})
	b.file("xattrs/hardlinked", 500, "xattr-hardlinked", 0o644)
	b.xattr("xattrs/hardlinked", "user.shared", []byte("one inode"))
	b.link("xattrs/hardlinked", "xattrs/hardlinked-2")
	b.file("xattrs/same-content-no-xattr", 500, "xattr-file", 0o644)
	b.dir("xattrs/dir", 0o755)
	b.xattr("xattrs/dir", "user.dir-a", []byte("on a directory"))
	b.xattr("xattrs/dir", "user.dir-b", []byte{0x00})
	b.file("xattrs/dir/inner", 50, "xattr-inner", 0o644)

	// Names.
	b.dir("names", 0o755)
	b.file("names/"+FixtureLongName, 25, "long-name", 0o644)
	b.file("names/ünïcødé", 30, "unicode", 0o644)
	b.file("names/日本語.txt", 31, "japanese", 0o644)
	b.file("names/emoji-🚀", 32, "emoji", 0o644)
	b.file("names/with spaces.txt", 33, "spaces", 0o644)
	b.file("names/-leading-dash", 34, "dash", 0o644)
	b.file("names/--double-dash", 35, "double-dash", 0o644)
	b.file("names/.hidden", 36, "hidden-name", 0o644)
	b.dir("names/dir with spaces", 0o755)
	b.dir("names/ディレクトリ", 0o755)
	b.file("names/ディレクトリ/ファイル", 37, "japanese-dir", 0o644)

	// Empty directories.
	b.dir("empty", 0o755)
	b.dir("empty/nested-empty", 0o700)

	// A deep chain of nested directories.
	rel := "deep"
	b.dir(rel, 0o755)
	for i := 1; i <= FixtureDeepDepth; i++ {
		rel += fmt.Sprintf("/d%02d", i)
		b.dir(rel, 0o755)
	}
	b.file(rel+"/bottom", 40, "deep-bottom", 0o644)
}

// fixtureContent returns size bytes of pseudo-random content determined by
// seed alone (splitmix64 seeded from an FNV-1a hash of seed), so it never
// changes across Go versions.
func fixtureContent(seed string, size int) []byte {
	h := fnv.New64a()
	h.Write([]byte("bootc-fixture-v1:" + seed))
	state := h.Sum64()
	buf := make([]byte, size+7)
	for i := 0; i < size; i += 8 {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		binary.LittleEndian.PutUint64(buf[i:], z)
	}
	return buf[:size:size]
}

// WriteFiles writes each file of files (path relative to dir: content) with mode 0644, creating
// its parent directories.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
