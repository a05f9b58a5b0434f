package ostree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var allModes = []RepoMode{ModeBare, ModeBareUser, ModeArchive}

func testRepo(t *testing.T, mode RepoMode) *Repo {
	t.Helper()
	if mode == ModeBare && os.Geteuid() != 0 {
		t.Skip("mode bare needs root")
	}
	r, err := Init(context.Background(), filepath.Join(t.TempDir(), "repo"), mode)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

var fixedTime = WithTimestamp(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := testRepo(t, mode)
			cfg, err := os.ReadFile(filepath.Join(r.Path(), "config"))
			if err != nil {
				t.Fatal(err)
			}
			if want := "[core]\nrepo_version=1\nmode=" + mode.String() + "\n"; string(cfg) != want {
				t.Errorf("config = %q, want %q", cfg, want)
			}
			again, err := Open(ctx, r.Path())
			if err != nil || again.Mode() != mode {
				t.Fatalf("Open: %v, mode %v", err, again)
			}
			if _, err := Init(ctx, r.Path(), mode); err != nil {
				t.Errorf("re-init in the same mode: %v", err)
			}
			other := ModeArchive
			if mode == ModeArchive {
				other = ModeBareUser
			}
			if _, err := Init(ctx, r.Path(), other); err == nil {
				t.Error("re-init in another mode succeeded")
			}
		})
	}
	if _, err := Open(ctx, t.TempDir()); !errors.Is(err, ErrNotARepo) {
		t.Errorf("Open of an empty dir: %v", err)
	}
}

// A stream of entries and a directory with the same content give the same commit.
func TestCommitEntriesMatchesCommitDir(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"usr/bin/tool": "#!/bin/sh\necho hi\n", "usr/lib/empty": "", "etc/link": "->../usr/bin/tool"})
	if err := os.Link(filepath.Join(src, "usr/bin/tool"), filepath.Join(src, "usr/bin/tool2")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "usr", "usr/bin", "usr/lib", "etc"} {
		os.Chmod(filepath.Join(src, p), 0o755)
	}
	os.Chmod(filepath.Join(src, "usr/bin/tool"), 0o755)
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := testRepo(t, mode)
			opts := []CommitOption{fixedTime, WithOwnerUID(0), WithOwnerGID(0), WithoutXattrs(), WithBranch("a")}
			fromDir, err := r.CommitDir(ctx, src, opts...)
			if err != nil {
				t.Fatal(err)
			}
			tool := "#!/bin/sh\necho hi\n"
			entries := &sliceSource{entries: []*Entry{
				{Path: "./", Type: EntryDir, Mode: 0o755},
				{Path: "etc", Type: EntryDir, Mode: 0o755},
				{Path: "etc/link", Type: EntrySymlink, Linkname: "../usr/bin/tool"},
				{Path: "usr/bin/tool", Type: EntryRegular, Mode: 0o755, Size: int64(len(tool)), Content: strings.NewReader(tool)},
				{Path: "usr/bin/tool2", Type: EntryHardlink, Linkname: "usr/bin/tool"},
				{Path: "usr/lib/empty", Type: EntryRegular, Mode: 0o644},
			}}
			fromEntries, err := r.CommitEntries(ctx, entries, fixedTime, WithNoParent(), WithBranch("b"), WithBindRefs("a"), WithoutBindings())
			if err != nil {
				t.Fatal(err)
			}
			fromDir2, err := r.CommitDir(ctx, src, append(opts, WithNoParent(), WithoutBindings())...)
			if err != nil {
				t.Fatal(err)
			}
			if fromEntries != fromDir2 {
				t.Fatalf("entries commit %s != directory commit %s", fromEntries, fromDir2)
			}
			// The first commit has the default ref binding.
			c, err := r.ReadCommit(fromDir)
			if err != nil {
				t.Fatal(err)
			}
			if v, ok := c.Metadata.Lookup("ostree.ref-binding"); !ok || v.Type.String() != "as" {
				t.Errorf("ref binding missing: %+v", c.Metadata)
			}
			third, err := r.CommitDir(ctx, src, opts...)
			if err != nil {
				t.Fatal(err)
			}
			c3, _ := r.ReadCommit(third)
			if c3.Parent != fromDir2 {
				t.Errorf("parent = %s, want the branch head %s", c3.Parent, fromDir2)
			}
			if head, _ := r.ReadRef("a"); head != third {
				t.Errorf("branch head = %s, want %s", head, third)
			}
		})
	}
}

type sliceSource struct{ entries []*Entry }

func (s *sliceSource) Next(context.Context) (*Entry, error) {
	if len(s.entries) == 0 {
		return nil, io.EOF
	}
	e := s.entries[0]
	s.entries = s.entries[1:]
	return e, nil
}

func TestCommitEntriesRejects(t *testing.T) {
	r := testRepo(t, ModeArchive)
	for name, e := range map[string]*Entry{
		"dotdot":            {Path: "a/../../etc", Type: EntryRegular},
		"dangling hardlink": {Path: "a", Type: EntryHardlink, Linkname: "nope"},
		"short content":     {Path: "a", Type: EntryRegular, Size: 10, Content: strings.NewReader("abc")},
		"long content":      {Path: "a", Type: EntryRegular, Size: 1, Content: strings.NewReader("abc")},
		"empty symlink":     {Path: "a", Type: EntrySymlink},
		"root file":         {Path: "/", Type: EntryRegular},
	} {
		if _, err := r.CommitEntries(context.Background(), &sliceSource{entries: []*Entry{e}}, fixedTime); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Failed commits publish nothing.
	objs, _ := filepath.Glob(filepath.Join(r.Path(), "objects", "*", "*"))
	staging, _ := filepath.Glob(filepath.Join(r.Path(), "tmp", "staging-*"))
	if len(objs) != 0 || len(staging) != 0 {
		t.Errorf("failed commits left objects %v and staging dirs %v", objs, staging)
	}
}

func TestCommitRefusesSpecialFiles(t *testing.T) {
	src := t.TempDir()
	if err := unix.Mkfifo(filepath.Join(src, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := testRepo(t, ModeArchive)
	_, err := r.CommitDir(context.Background(), src, fixedTime)
	if err == nil || !strings.Contains(err.Error(), "FIFO") || !strings.Contains(err.Error(), "fifo") {
		t.Fatalf("err = %v, want an error naming the FIFO", err)
	}
}

func TestBareUserSymlinkLayout(t *testing.T) {
	r := testRepo(t, ModeBareUser)
	tx, err := r.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := tx.WriteContent(&FileHeader{Mode: ModeSymlink | 0o777, SymlinkTarget: "hello"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if c.String() != "73baaba0102e9154b8522687d33eedb8ed1bc78eadb82428b2616144ec502934" {
		t.Fatalf("symlink checksum %s", c)
	}
	p := r.ObjectPath(ObjectName{c, ObjectFile})
	data, err := os.ReadFile(p)
	if err != nil || string(data) != "hello\x00" {
		t.Fatalf("object content %q, %v", data, err)
	}
	buf := make([]byte, 64)
	n, err := unix.Getxattr(p, "user.ostreemeta", buf)
	if err != nil || !bytes.Equal(buf[:n], unhex(t, "00000000 00000000 0000a1ff")) {
		t.Fatalf("user.ostreemeta = %x, %v", buf[:n], err)
	}
}

func TestArchiveObjectLayout(t *testing.T) {
	r := testRepo(t, ModeArchive)
	tx, _ := r.Begin(context.Background())
	c, err := tx.WriteContent(&FileHeader{Mode: ModeRegular | 0o644}, strings.NewReader("hello\n"), 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(r.ObjectPath(ObjectName{c, ObjectFile}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(r.ObjectPath(ObjectName{c, ObjectFile}), ".filez") {
		t.Error("archive content object is not .filez")
	}
	wantHdr := unhex(t, "0000001a 00000000 0000000000000006 00000000 00000000 000081a4 00000000 00 19")
	if !bytes.HasPrefix(data, wantHdr) {
		t.Fatalf("header %x, want %x", data[:len(wantHdr)], wantHdr)
	}
	obj, err := r.OpenContent(c)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	got, err := io.ReadAll(obj.Content)
	if err != nil || string(got) != "hello\n" {
		t.Fatalf("content %q, %v", got, err)
	}
}

func TestRefs(t *testing.T) {
	for _, bad := range []string{"", "/a", "a/", "a//b", "-a", "a b", "a/.b", "a:b"} {
		if err := ValidateRef(bad); err == nil {
			t.Errorf("ValidateRef(%q) accepted", bad)
		}
	}
	for _, good := range []string{"a", "fedora/x86_64/coreos/stable", "a_b-c.d", "0"} {
		if err := ValidateRef(good); err != nil {
			t.Errorf("ValidateRef(%q): %v", good, err)
		}
	}
	ctx := context.Background()
	r := testRepo(t, ModeArchive)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	c1, err := r.CommitDir(ctx, src, WithBranch("os/stable"), fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := r.CommitDir(ctx, src, WithBranch("os/stable"), fixedTime, WithSubject("second"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(r.Path(), "refs/heads/os/stable"))
	if string(data) != c2.String()+"\n" {
		t.Errorf("ref file = %q", data)
	}
	if got, err := r.ResolveRev("os/stable^"); err != nil || got != c1 {
		t.Errorf("os/stable^ = %s, %v; want %s", got, err, c1)
	}
	if err := r.SetRef("other", c1); err != nil {
		t.Fatal(err)
	}
	// What a ref write killed before its rename leaves is no ref.
	if err := os.WriteFile(filepath.Join(r.Path(), "refs/heads/os/.tmp-stable-1526929178"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	refs, err := r.ListRefs()
	if err != nil || len(refs) != 2 || refs[0].Name != "os/stable" || refs[1].Name != "other" {
		t.Errorf("refs = %v, %v", refs, err)
	}
	if err := r.DeleteRef("other"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadRef("other"); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("deleted ref: %v", err)
	}
	if err := r.SetRef("x", Checksum{1}); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("ref to a missing commit: %v", err)
	}
}

func TestFsckFindsCorruptAndMissing(t *testing.T) {
	ctx := context.Background()
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := testRepo(t, mode)
			src := t.TempDir()
			writeTree(t, src, map[string]string{"a": "alpha content", "b": "beta content", "d/c": "gamma"})
			if _, err := r.CommitDir(ctx, src, WithBranch("t"), fixedTime); err != nil {
				t.Fatal(err)
			}
			rep, err := r.Fsck(ctx)
			if err != nil || len(rep.Problems) != 0 || rep.Files != 3 {
				t.Fatalf("clean repo: %+v, %v", rep, err)
			}
			// Find the objects through the tree.
			var a, dirtree Checksum
			err = r.Walk(ctx, mustResolve(t, r, "t"), "/", WalkOptions{Recursive: true}, func(e *TreeEntry) error {
				switch e.Path {
				case "/a":
					a = e.Checksum
				case "/d":
					dirtree = e.Tree
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			// Corrupt a's content in place (keeping its size), and remove d's dirtree.
			ap := r.ObjectPath(ObjectName{a, ObjectFile})
			if mode == ModeArchive {
				obj, _ := os.ReadFile(ap)
				rewritten := rewriteArchive(t, obj, "ALPHA content")
				if err := os.WriteFile(ap, rewritten, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				f, err := os.OpenFile(ap, os.O_WRONLY, 0)
				if err != nil {
					os.Chmod(ap, 0o644)
					f, err = os.OpenFile(ap, os.O_WRONLY, 0)
				}
				if err != nil {
					t.Fatal(err)
				}
				f.WriteAt([]byte("ALPHA"), 0)
				f.Close()
			}
			if err := os.Remove(r.ObjectPath(ObjectName{dirtree, ObjectDirTree})); err != nil {
				t.Fatal(err)
			}
			rep, err = r.Fsck(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 2 {
				t.Fatalf("problems = %v, want 2", rep.Problems)
			}
			var sawCorrupt, sawMissing bool
			for _, p := range rep.Problems {
				switch {
				case p.Object == (ObjectName{a, ObjectFile}) && errors.Is(p.Err, ErrCorruptObject) && strings.HasSuffix(p.Path, "/a"):
					sawCorrupt = true
				case p.Object == (ObjectName{dirtree, ObjectDirTree}) && errors.Is(p.Err, ErrObjectNotFound) && strings.HasSuffix(p.Path, "/d/"):
					sawMissing = true
				}
			}
			if !sawCorrupt || !sawMissing {
				t.Errorf("problems %v: corrupt named %v, missing named %v", rep.Problems, sawCorrupt, sawMissing)
			}
		})
	}
}

func mustResolve(t *testing.T, r *Repo, rev string) Checksum {
	t.Helper()
	c, err := r.ResolveRev(rev)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// rewriteArchive replaces the payload of a .filez object with another of the same length.
func rewriteArchive(t *testing.T, obj []byte, content string) []byte {
	t.Helper()
	hdrLen := 8 + int(uint32(obj[0])<<24|uint32(obj[1])<<16|uint32(obj[2])<<8|uint32(obj[3]))
	var b bytes.Buffer
	b.Write(obj[:hdrLen])
	zw, _ := newFlateWriter(&b)
	zw.Write([]byte(content))
	zw.Close()
	return b.Bytes()
}

func TestCheckoutUnionAndWhiteouts(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, ModeArchive)
	lower := t.TempDir()
	writeTree(t, lower, map[string]string{"keep": "k", "gone": "g", "dir/old": "o", "opq/x": "x", "replaced": "file"})
	upper := t.TempDir()
	writeTree(t, upper, map[string]string{".wh.gone": "", "dir/new": "n", "opq/.wh..wh..opq": "", "opq/y": "y", "replaced/inner": "now a dir"})
	if _, err := r.CommitDir(ctx, lower, WithBranch("lower"), fixedTime); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CommitDir(ctx, upper, WithBranch("upper"), fixedTime); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "root")
	if err := r.Checkout(ctx, "lower", dest); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkout(ctx, "upper", dest); err == nil {
		t.Fatal("checkout over an existing directory without union succeeded")
	}
	if err := r.Checkout(ctx, "upper", dest, WithUnion(), WithWhiteouts()); err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dest, p)
		if !info.IsDir() {
			got = append(got, rel)
		}
		return nil
	})
	want := []string{"dir/new", "dir/old", "keep", "opq/y", "replaced/inner"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("files after layering = %v, want %v", got, want)
	}
	// Without whiteout processing, the markers are ordinary files.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := r.Checkout(ctx, "upper", plain); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(plain, ".wh.gone")); err != nil {
		t.Errorf("whiteout file not checked out verbatim: %v", err)
	}
}

func TestCheckoutDoesNotFollowSymlinks(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, ModeArchive)
	outside := t.TempDir()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"d/f": "payload"})
	if _, err := r.CommitDir(ctx, src, WithBranch("t"), fixedTime); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	// A symlink where the commit has a directory must be replaced, not followed.
	if err := os.Symlink(outside, filepath.Join(dest, "d")); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkout(ctx, "t", dest, WithUnion()); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Fatalf("checkout wrote through a symlink: %v", entries)
	}
	if data, err := os.ReadFile(filepath.Join(dest, "d/f")); err != nil || string(data) != "payload" {
		t.Fatalf("d/f = %q, %v", data, err)
	}
}

func TestCommitDirSkipAndEdit(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"etc/os-release": "ID=test\n", "dev/null-ish": "x", "boot/vmlinuz-6.1": "kernel", "usr/bin/sh": "sh"})
	r := testRepo(t, ModeArchive)
	// The caller's transaction: write the directory, edit the tree, write it and a commit.
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	root, err := tx.WriteDir(ctx, src, WithSkipContents(func(p string) bool { return p == "dev" }))
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Rename("etc", "usr/etc"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.MkdirAll("usr/lib/modules/6.1", Checksum{}); err != nil {
		t.Fatal(err)
	}
	if err := root.Rename("boot/vmlinuz-6.1", "usr/lib/modules/6.1/vmlinuz"); err != nil {
		t.Fatal(err)
	}
	if err := root.Rename("usr", "usr/x"); err == nil {
		t.Fatal("moved a directory into itself")
	}
	tree, err := root.Write(ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tx.WriteCommit(ctx, tree, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var paths []string
	if err := r.Walk(ctx, c, "/", WalkOptions{Recursive: true}, func(e *TreeEntry) error {
		paths = append(paths, e.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(paths, " ")
	want := "/ /boot /dev /usr /usr/bin /usr/bin/sh /usr/etc /usr/etc/os-release /usr/lib /usr/lib/modules /usr/lib/modules/6.1 /usr/lib/modules/6.1/vmlinuz"
	if got != want {
		t.Errorf("tree = %s\nwant   %s", got, want)
	}
}

// TestCheckoutManyDirectories checks out a tree of 120 directories (subtrees run in several
// goroutines) whole, then with one object missing deep inside: the error names it, the
// checkout returns (no goroutine left waiting), and read-only directories were filled first.
func TestCheckoutManyDirectories(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, ModeBareUser)
	src := t.TempDir()
	files := map[string]string{}
	for i := range 12 {
		for j := range 10 {
			files[fmt.Sprintf("d%02d/s%02d/f", i, j)] = fmt.Sprintf("file %d %d", i, j)
		}
	}
	writeTree(t, src, files)
	os.Chmod(filepath.Join(src, "d05"), 0o555)
	defer os.Chmod(filepath.Join(src, "d05"), 0o755)
	c, err := r.CommitDir(ctx, src, WithBranch("many"), fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	// As root, directory modes are kept (a read-only directory is filled before its mode is
	// set); in user mode, directories stay writable by their owner.
	var opts []CheckoutOption
	wantMode := os.FileMode(0o555)
	if os.Geteuid() != 0 {
		opts, wantMode = []CheckoutOption{WithUserMode()}, 0o755
	}
	dest := filepath.Join(t.TempDir(), "root")
	if err := r.Checkout(ctx, "many", dest, opts...); err != nil {
		t.Fatal(err)
	}
	for p, want := range files {
		if got, err := os.ReadFile(filepath.Join(dest, p)); err != nil || string(got) != want {
			t.Fatalf("%s: %q, %v", p, got, err)
		}
	}
	if st, err := os.Stat(filepath.Join(dest, "d05")); err != nil || st.Mode().Perm() != wantMode {
		t.Fatalf("d05: %v %v", st.Mode(), err)
	}
	os.Chmod(filepath.Join(dest, "d05"), 0o755)

	// Remove the object of d09/s07/f.
	var sum Checksum
	err = r.Walk(ctx, c, "/d09/s07/f", WalkOptions{}, func(e *TreeEntry) error { sum = e.Checksum; return nil })
	if err != nil || sum == (Checksum{}) {
		t.Fatalf("walk: %v", err)
	}
	if err := os.Remove(r.ObjectPath(ObjectName{sum, ObjectFile})); err != nil {
		t.Fatal(err)
	}
	err = r.Checkout(ctx, "many", filepath.Join(t.TempDir(), "again"), opts...)
	if !errors.Is(err, ErrObjectNotFound) || !strings.Contains(err.Error(), "d09/s07/f") {
		t.Fatalf("err = %v, want the missing object of d09/s07/f", err)
	}
}
