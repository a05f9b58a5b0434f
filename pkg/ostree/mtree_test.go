package ostree

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
)

// inTx runs fn in a transaction of r and commits it.
func inTx(t *testing.T, r *Repo, fn func(tx *Transaction) error) {
	t.Helper()
	ctx := t.Context()
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	if err := fn(tx); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// writeCommit commits the tree in a transaction of its own.
func writeCommit(t *testing.T, r *Repo, tree *MutableTree, opts ...CommitOption) Checksum {
	t.Helper()
	var c Checksum
	inTx(t, r, func(tx *Transaction) error {
		root, err := tree.Write(t.Context(), tx)
		if err != nil {
			return err
		}
		c, err = tx.WriteCommit(t.Context(), root, opts...)
		return err
	})
	return c
}

// WriteCommit gives an existing tree a new commit that ostree reads; with the options of the
// original commit it makes the original commit; a lazily loaded tree, edited in the caller's
// transaction, commits as ostree expects.
func TestWriteCommit(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	src := t.TempDir()
	writeTree(t, src, map[string]string{"usr/bin/tool": "#!/bin/sh\n", "etc/conf": "x=1\n", "etc/link": "->../usr/bin/tool"})
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			r := testRepo(t, mode)
			opts := []CommitOption{fixedTime, WithSubject("orig"), WithBody("body"), WithMetadataString("version", "1")}
			orig, err := r.CommitDir(ctx, src, append(opts, WithBranch("orig"))...)
			if err != nil {
				t.Fatal(err)
			}
			oc, err := r.ReadCommit(orig)
			if err != nil {
				t.Fatal(err)
			}
			commitRoot := func(opts ...CommitOption) Checksum {
				t.Helper()
				var c Checksum
				inTx(t, r, func(tx *Transaction) (err error) {
					c, err = tx.WriteCommit(ctx, oc.Root(), opts...)
					return err
				})
				return c
			}

			// The same options make the same commit (no branch head yet: no parent either way).
			same := commitRoot(append(opts, WithBranch("copy"), WithBindRefs("orig"))...)
			if alsoOrig := commitRoot(append(opts, WithBranch("orig"), WithNoParent())...); alsoOrig != orig {
				t.Errorf("WriteCommit with the original options: %s, want %s", alsoOrig, orig)
			}
			if same == orig {
				t.Errorf("other bindings gave the original commit %s", same)
			}

			// New metadata on the same tree, as a child of orig.
			next := commitRoot(WithBranch("orig"), WithSubject("relabelled"),
				WithMetadataString("version", "2"), WithTimestamp(time.Date(2022, 2, 2, 0, 0, 0, 0, time.UTC)))
			nc, err := r.ReadCommit(next)
			if err != nil {
				t.Fatal(err)
			}
			if nc.Parent != orig || nc.Root() != oc.Root() || nc.Subject != "relabelled" {
				t.Errorf("new commit: parent %s, tree %v, subject %q", nc.Parent, nc.Root(), nc.Subject)
			}
			if head := mustResolve(t, r, "orig"); head != next {
				t.Errorf("orig points at %s, want %s", head, next)
			}
			show := testutil.Run(t, "ostree", "show", "--repo="+r.Path(), "orig")
			if !strings.Contains(show, next.String()) || !strings.Contains(show, "relabelled") || !strings.Contains(show, "Version: 2") {
				t.Errorf("ostree show:\n%s", show)
			}
			lsNew := testutil.Run(t, "ostree", "ls", "--repo="+r.Path(), "-R", "-C", "-X", next.String())
			lsOld := testutil.Run(t, "ostree", "ls", "--repo="+r.Path(), "-R", "-C", "-X", orig.String())
			if lsNew != lsOld || !strings.Contains(lsNew, "/usr/bin/tool") {
				t.Errorf("ostree ls of the new commit differs:\n%s", testutil.FirstDiff("orig", lsOld, "new", lsNew))
			}

			// An edit of the lazily loaded tree.
			tree, err := NewMutableTreeFromCommit(r, orig)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok, err := tree.File("etc/conf"); !ok || err != nil {
				t.Errorf("the loaded tree does not show etc/conf: %v", err)
			}
			if ok, err := tree.Remove("etc/conf"); !ok || err != nil {
				t.Errorf("Remove(etc/conf) = %v, %v", ok, err)
			}
			edited := writeCommit(t, r, tree, fixedTime, WithNoParent())
			ls := testutil.Run(t, "ostree", "ls", "--repo="+r.Path(), "-R", edited.String())
			if strings.Contains(ls, "/etc/conf") || !strings.Contains(ls, "/etc/link") || !strings.Contains(ls, "/usr/bin/tool") {
				t.Errorf("edited tree:\n%s", ls)
			}
			// Loaded but unchanged, it writes the same tree.
			tree, _ = NewMutableTreeFromCommit(r, orig)
			if _, err := tree.Dir("usr/bin"); err != nil {
				t.Fatal(err)
			}
			if unedited := writeCommit(t, r, tree, append(opts, WithNoParent(), WithBranch("orig"))...); unedited != orig {
				t.Errorf("an unedited tree committed as %s, want %s", unedited, orig)
			}
			testutil.Run(t, "ostree", "fsck", "--repo="+r.Path())
		})
	}
}

func TestWriteCommitMissing(t *testing.T) {
	ctx := t.Context()
	r := testRepo(t, ModeArchive)
	src := t.TempDir()
	writeTree(t, src, map[string]string{"f": "x"})
	c, err := r.CommitDir(ctx, src, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	commit, err := r.ReadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	var bogus Checksum
	bogus[0] = 1
	for _, tc := range []struct {
		root Root
		want string
	}{{Root{bogus, commit.RootMeta}, "dirtree"}, {Root{commit.RootTree, bogus}, "dirmeta"}} {
		tx, err := r.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.WriteCommit(ctx, tc.root, WithBranch("x")); !errors.Is(err, ErrObjectNotFound) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("missing %s: %v", tc.want, err)
		}
		tx.Abort()
	}
	if _, err := r.ReadRef("x"); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("a failed WriteCommit set the branch: %v", err)
	}
}

// A tree loaded from a commit reads only the dirtrees of the directories walked into: the
// others' objects can be gone and the edit, the write and the commit still succeed, reusing
// them by checksum.
func TestMutableTreeLazy(t *testing.T) {
	ctx := t.Context()
	r := testRepo(t, ModeArchive)
	src := t.TempDir()
	writeTree(t, src, map[string]string{
		"usr/etc/motd": "hello", "usr/bin/sh": "sh", "usr/lib/x/y": "y",
		"var/lib/z": "z", "opt/a/b/c": "c",
	})
	c, err := r.CommitDir(ctx, src, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	dirtrees := map[string]Checksum{}
	if err := r.Walk(ctx, c, "/", WalkOptions{Recursive: true}, func(e *TreeEntry) error {
		if e.IsDir() {
			dirtrees[e.Path] = e.Tree
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	tree, err := NewMutableTreeFromCommit(r, c)
	if err != nil {
		t.Fatal(err)
	}
	// Every dirtree but those of /, /usr and /usr/etc goes: reading one would fail.
	walked := map[string]bool{"/": true, "/usr": true, "/usr/etc": true}
	for p, dt := range dirtrees {
		if !walked[p] {
			if err := os.Remove(r.ObjectPath(ObjectName{dt, ObjectDirTree})); err != nil {
				t.Fatal(err)
			}
		}
	}
	motd, ok, err := tree.File("usr/etc/motd")
	if err != nil || !ok {
		t.Fatalf("File(usr/etc/motd) = %v, %v", ok, err)
	}
	if err := tree.SetFile("usr/etc/issue", motd); err != nil {
		t.Fatal(err)
	}
	edited := writeCommit(t, r, tree, fixedTime)
	ec, err := r.ReadCommit(edited)
	if err != nil {
		t.Fatal(err)
	}
	root, err := r.ReadDirTree(ec.RootTree)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range root.Dirs {
		if want := dirtrees["/"+d.Name]; d.Name != "usr" && d.Tree != want {
			t.Errorf("/%s: dirtree %s, want the unloaded %s", d.Name, d.Tree, want)
		}
	}
	// The unread directories really were never read: reading one now fails.
	if _, err := tree.Dir("opt/a"); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("Dir(opt/a) after its dirtree was removed: %v", err)
	}
}

// Overlay applies a layer as a container runtime does: whiteouts and opaque whiteouts remove
// what is below (never what the layer itself brings), files replace directories and the
// reverse, existing directories keep their metadata, markers are dropped. The tree is edited
// and committed in the caller's transaction, and Checkout's WithWhiteouts, following the same
// rules on disk, gives the same files.
func TestOverlay(t *testing.T) {
	ctx := t.Context()
	r := testRepo(t, ModeBareUser)
	base := &sliceSource{entries: []*Entry{
		{Path: "etc", Type: EntryDir, Mode: 0o755},
		{Path: "etc/a", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("a")},
		{Path: "etc/b", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("b")},
		{Path: "etc/sub/c", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("c")},
		{Path: "usr/bin/x", Type: EntryRegular, Mode: 0o755, Size: 1, Content: strings.NewReader("x")},
		{Path: "opt/o/1", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("1")},
		{Path: "srv", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("s")},
		{Path: "keep/deep/f", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("k")},
	}}
	baseCommit, err := r.CommitEntries(ctx, base, fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	empty := func(p string) *Entry {
		return &Entry{Path: p, Type: EntryRegular, Mode: 0o644, Content: strings.NewReader("")}
	}
	layerEntries := func() EntrySource {
		return &sliceSource{entries: []*Entry{
			{Path: "etc", Type: EntryDir, Mode: 0o700},
			empty("etc/.wh.a"),
			{Path: "etc/new", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("n")},
			empty("etc/.wh.new"), // a whiteout does not remove its own layer's file
			empty("etc/sub/.wh..wh..opq"),
			empty("usr/.wh..wh..opq"),
			{Path: "usr/lib/y", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("y")},
			{Path: "opt/o", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("o")},
			{Path: "srv", Type: EntryDir, Mode: 0o750},
			{Path: "srv/www", Type: EntryRegular, Mode: 0o644, Size: 1, Content: strings.NewReader("w")},
			empty(".wh.nothing-there"),
		}}
	}
	var merged, layerCommit Checksum
	inTx(t, r, func(tx *Transaction) error {
		tree, err := NewMutableTreeFromCommit(r, baseCommit)
		if err != nil {
			return err
		}
		layer, err := tx.WriteEntries(ctx, layerEntries())
		if err != nil {
			return err
		}
		if err := tree.Overlay(ctx, layer); err != nil {
			return err
		}
		if tree.dirs["keep"].files != nil {
			t.Error("Overlay loaded /keep, which the layer does not touch")
		}
		root, err := tree.Write(ctx, tx)
		if err != nil {
			return err
		}
		if merged, err = tx.WriteCommit(ctx, root, fixedTime); err != nil {
			return err
		}
		lroot, err := layer.Write(ctx, tx)
		if err != nil {
			return err
		}
		layerCommit, err = tx.WriteCommit(ctx, lroot, fixedTime)
		return err
	})

	got := map[string]string{}
	if err := r.Walk(ctx, merged, "/", WalkOptions{Recursive: true}, func(e *TreeEntry) error {
		if e.IsDir() {
			got[e.Path] = fmt.Sprintf("d%o", e.Meta.Mode&0o7777)
		} else {
			got[e.Path] = "f"
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/": "d755", "/etc": "d755", "/etc/b": "f", "/etc/new": "f", "/etc/sub": "d755",
		"/usr": "d755", "/usr/lib": "d755", "/usr/lib/y": "f", "/opt": "d755", "/opt/o": "f",
		"/srv": "d750", "/srv/www": "f", "/keep": "d755", "/keep/deep": "d755", "/keep/deep/f": "f",
	}
	if strings.Join(sortedKeys(got), " ") != strings.Join(sortedKeys(want), " ") {
		t.Errorf("merged tree:\n%v\nwant\n%v", sortedKeys(got), sortedKeys(want))
	}
	for p, w := range want {
		if got[p] != w {
			t.Errorf("%s: %s, want %s", p, got[p], w)
		}
	}

	// Checkout with whiteouts over a checkout of the base gives the same paths.
	dest := filepath.Join(t.TempDir(), "co")
	if err := r.Checkout(ctx, baseCommit.String(), dest, WithUserMode()); err != nil {
		t.Fatal(err)
	}
	if err := r.Checkout(ctx, layerCommit.String(), dest, WithUserMode(), WithUnion(), WithWhiteouts()); err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	filepath.Walk(dest, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dest, p)
		onDisk = append(onDisk, filepath.Join("/", rel))
		return err
	})
	sort.Strings(onDisk)
	if a, b := strings.Join(onDisk, " "), strings.Join(sortedKeys(want), " "); a != b {
		t.Errorf("checkout with whiteouts:\n%s\nOverlay:\n%s", a, b)
	}
}
