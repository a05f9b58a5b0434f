package ostree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/gvariant"
)

// looseObjectFiles lists the files under objects/ (as "xx/rest.type"), sorted.
func looseObjectFiles(t *testing.T, repo string) []string {
	t.Helper()
	sizes := looseObjectSizes(t, repo)
	out := make([]string, 0, len(sizes))
	for name := range sizes {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// looseObjectSizes maps each file under objects/ (as "xx/rest.type") to its size.
func looseObjectSizes(t *testing.T, repo string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	root := filepath.Join(repo, "objects")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = info.Size()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyRepo copies a repository with everything ostree stores in it (modes, owners, xattrs).
func copyRepo(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	testutil.Run(t, "cp", "-a", src, dst)
	return dst
}

// pruneFixture is a repository holding refs a and b, whose trees share files, a second
// commit on b (its parent holds objects only it reaches), a remote ref, and commit metadata.
type pruneFixture struct {
	repo                   *Repo
	commitA, commitB, oldB Checksum
	onlyA, onlyOldB        Checksum // content reached only by a, and only by b's parent
	shared, remoteOnly     Checksum
	tombstone              Checksum // of a deleted commit
	mirrorOnly             Checksum // commit reached only by a refs/mirrors ref
}

func fileChecksum(t *testing.T, r *Repo, commit Checksum, path string) Checksum {
	t.Helper()
	var c Checksum
	err := r.Walk(context.Background(), commit, path, WalkOptions{DirOnly: true}, func(e *TreeEntry) error {
		c = e.Checksum
		return nil
	})
	if err != nil || c.IsZero() {
		t.Fatalf("%s in %s: %v", path, commit, err)
	}
	return c
}

func newPruneFixture(t *testing.T, mode RepoMode) *pruneFixture {
	t.Helper()
	ctx := context.Background()
	r := testRepo(t, mode)
	f := &pruneFixture{repo: r}
	commit := func(files map[string]string, opts ...CommitOption) Checksum {
		t.Helper()
		src := t.TempDir()
		writeTree(t, src, files)
		c, err := r.CommitDir(ctx, src, append(opts, fixedTime, WithOwnerUID(0), WithOwnerGID(0))...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.commitA = commit(map[string]string{"shared/lib": "shared library", "a/only": "only in a", "a/deep/x": "deep a", "link": "->shared/lib"}, WithBranch("a"), WithSubject("a"))
	f.oldB = commit(map[string]string{"shared/lib": "shared library", "b/old": "only in old b"}, WithBranch("b"), WithSubject("b1"))
	f.commitB = commit(map[string]string{"shared/lib": "shared library", "b/new": "only in new b"}, WithBranch("b"), WithSubject("b2"))
	remote := commit(map[string]string{"r": "remote only"}, WithSubject("remote"))
	if err := r.SetRef("origin:stable/x", remote); err != nil {
		t.Fatal(err)
	}
	// A collection ref, as `ostree pull --mirror` of a repository with a collection ID makes.
	f.mirrorOnly = commit(map[string]string{"m": "mirror only"}, WithSubject("mirror"))
	writeTree(t, filepath.Join(r.Path(), "refs", "mirrors", "org.example.Os"), map[string]string{"os/stable": f.mirrorOnly.String() + "\n"})
	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var md Metadata
	md.Set("note", StringValue("detached"))
	for _, c := range []Checksum{f.commitA, f.commitB} {
		if err := tx.WriteCommitMeta(c, md); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// A tombstone, as ostree leaves for a commit it deleted with core.tombstone-commits set.
	var deleted Checksum
	deleted[0] = 0xde
	ay, err := gvariant.ParseType("ay")
	if err != nil {
		t.Fatal(err)
	}
	var tomb Metadata
	tomb.Set("commit", gvariant.Variant{Type: ay, Value: []byte(deleted.String() + "\x00")})
	data, err := MarshalMetadata(tomb)
	if err != nil {
		t.Fatal(err)
	}
	tombPath := r.ObjectPath(ObjectName{deleted, ObjectTombstoneCommit})
	if err := os.MkdirAll(filepath.Dir(tombPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tombPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f.tombstone = deleted
	f.onlyA = fileChecksum(t, r, f.commitA, "/a/only")
	f.onlyOldB = fileChecksum(t, r, f.oldB, "/b/old")
	f.shared = fileChecksum(t, r, f.commitB, "/shared/lib")
	f.remoteOnly = fileChecksum(t, r, remote, "/r")
	return f
}

func (f *pruneFixture) has(t *testing.T, n ObjectName) bool {
	t.Helper()
	ok, err := f.repo.HasObject(n)
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// Prune keeps what the refs reach and deletes the rest, exactly as `ostree prune --refs-only
// --depth=0` does on a copy of the repository.
func TestPruneMatchesOstree(t *testing.T) {
	testutil.RequireTool(t, "ostree", "cp")
	ctx := context.Background()
	for _, mode := range allModes {
		t.Run(mode.String(), func(t *testing.T) {
			f := newPruneFixture(t, mode)
			r := f.repo
			if err := r.DeleteRef("a"); err != nil {
				t.Fatal(err)
			}
			before := looseObjectSizes(t, r.Path())
			theirs := copyRepo(t, r.Path())
			out := testutil.Run(t, "ostree", "prune", "--repo="+theirs, "--refs-only", "--depth=0")
			var total, deleted int
			var freed int64
			if _, err := fmt.Sscanf(out, "Total objects: %d\nDeleted %d objects, %d bytes freed", &total, &deleted, &freed); err != nil {
				t.Fatalf("parsing ostree prune's report %q: %v", out, err)
			}

			st, err := r.Prune(ctx, PruneOptions{})
			if err != nil {
				t.Fatal(err)
			}
			after := looseObjectFiles(t, r.Path())
			if want := looseObjectFiles(t, theirs); strings.Join(after, "\n") != strings.Join(want, "\n") {
				t.Errorf("objects left differ:\n%s", testutil.FirstDiff("ostree prune", strings.Join(want, "\n"), "Prune", strings.Join(after, "\n")))
			}

			// The stats describe the files: every object but tombstones counts. ostree's report
			// leaves out .commitmeta files (it deletes them with their commits), so they are
			// told apart to compare with it.
			kept := map[string]bool{}
			for _, name := range after {
				kept[name] = true
			}
			var want, commitmeta PruneStats
			for name, size := range before {
				if strings.HasSuffix(name, ".tombstone-commit") {
					continue
				}
				s := &want
				if strings.HasSuffix(name, ".commitmeta") {
					s = &commitmeta
				}
				s.Objects++
				if !kept[name] {
					s.Deleted++
					s.BytesFreed += size
				}
			}
			if st.Objects != want.Objects+commitmeta.Objects || st.Deleted != want.Deleted+commitmeta.Deleted ||
				st.BytesFreed != want.BytesFreed+commitmeta.BytesFreed || st.Deleted == 0 {
				t.Errorf("stats %+v; the files say %+v, and commitmeta %+v", *st, want, commitmeta)
			}
			if want.Objects != total || want.Deleted != deleted || want.BytesFreed != freed {
				t.Errorf("stats without commitmeta %+v; ostree prune: %d objects, %d deleted, %d bytes freed", want, total, deleted, freed)
			}
			for _, n := range []ObjectName{{f.commitA, ObjectCommit}, {f.commitA, ObjectCommitMeta}, {f.oldB, ObjectCommit}, {f.onlyA, ObjectFile}, {f.onlyOldB, ObjectFile}} {
				if f.has(t, n) {
					t.Errorf("%s survived the prune", n)
				}
			}
			for _, n := range []ObjectName{{f.commitB, ObjectCommit}, {f.commitB, ObjectCommitMeta}, {f.shared, ObjectFile}, {f.remoteOnly, ObjectFile}, {f.tombstone, ObjectTombstoneCommit}, {f.mirrorOnly, ObjectCommit}} {
				if !f.has(t, n) {
					t.Errorf("%s was pruned", n)
				}
			}
			rep, err := r.Fsck(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 0 || rep.Commits != 3 {
				t.Errorf("fsck after prune: %d commits, problems %v", rep.Commits, rep.Problems)
			}
			testutil.Run(t, "ostree", "fsck", "--repo="+r.Path())

			// Nothing is left to prune.
			again, err := r.Prune(ctx, PruneOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if again.Deleted != 0 || again.Objects != len(after)-1 { // the tombstone is not counted
				t.Errorf("second prune: %+v, want nothing deleted of %d", *again, len(after)-1)
			}
		})
	}
}

// A dry run reports what a real prune does and deletes nothing.
func TestPruneDryRun(t *testing.T) {
	ctx := context.Background()
	f := newPruneFixture(t, ModeBareUser)
	r := f.repo
	if err := r.DeleteRef("a"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(r.Path(), "tmp", "staging-abandoned"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := looseObjectFiles(t, r.Path())
	dry, err := r.Prune(ctx, PruneOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := looseObjectFiles(t, r.Path()); strings.Join(got, "\n") != strings.Join(before, "\n") {
		t.Fatalf("dry run changed the objects: %d before, %d after", len(before), len(got))
	}
	if _, err := os.Stat(filepath.Join(r.Path(), "tmp", "staging-abandoned")); err != nil {
		t.Fatalf("dry run removed the staging directory: %v", err)
	}
	real, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *dry != *real {
		t.Errorf("dry run %+v, real prune %+v", *dry, *real)
	}
	if dry.Deleted == 0 || dry.StagingRemoved != 1 {
		t.Errorf("dry run found nothing to do: %+v", *dry)
	}
}

// Abandoned staging directories go; Prune waits for a running transaction.
func TestPruneStagingAndLock(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, ModeBareUser)
	stale := filepath.Join(r.Path(), "tmp", "staging-xyz")
	writeTree(t, stale, map[string]string{"tmp-123": "half-written object"})
	st, err := r.Prune(ctx, PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.StagingRemoved != 1 {
		t.Errorf("StagingRemoved = %d, want 1", st.StagingRemoved)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale staging directory still there: %v", err)
	}

	tx, err := r.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Abort()
	// A cancelled wait gives up.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := r.Prune(short, PruneOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Prune during a transaction with a short deadline: %v, want a deadline error", err)
	}

	type result struct {
		st  *PruneStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := r.Prune(ctx, PruneOptions{})
		done <- result{st, err}
	}()
	select {
	case res := <-done:
		t.Fatalf("Prune finished while a transaction was open: %+v, %v", res.st, res.err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := os.Stat(tx.dir); err != nil {
		t.Fatalf("the open transaction's staging directory was touched: %v", err)
	}
	if err := tx.Abort(); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatal(res.err)
		}
		if res.st.StagingRemoved != 0 {
			t.Errorf("StagingRemoved = %d after the transaction cleaned up itself", res.st.StagingRemoved)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Prune did not finish after the transaction ended")
	}
}

// An object a ref reaches is missing: Prune deletes nothing and says what and where.
func TestPruneMissingObject(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		obj  func(f *pruneFixture) ObjectName
	}{
		{"content", func(f *pruneFixture) ObjectName { return ObjectName{f.shared, ObjectFile} }},
		{"dirtree", func(f *pruneFixture) ObjectName {
			c, err := f.repo.ReadCommit(f.commitB)
			if err != nil {
				t.Fatal(err)
			}
			return ObjectName{c.RootTree, ObjectDirTree}
		}},
		{"commit", func(f *pruneFixture) ObjectName { return ObjectName{f.commitB, ObjectCommit} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newPruneFixture(t, ModeArchive)
			r := f.repo
			if err := r.DeleteRef("a"); err != nil {
				t.Fatal(err)
			}
			missing := tc.obj(f)
			if err := os.Remove(r.ObjectPath(missing)); err != nil {
				t.Fatal(err)
			}
			before := looseObjectFiles(t, r.Path())
			_, err := r.Prune(ctx, PruneOptions{})
			if !errors.Is(err, ErrObjectNotFound) || !strings.Contains(err.Error(), missing.String()) || !strings.Contains(err.Error(), "ref b") {
				t.Errorf("Prune: %v; want an ErrObjectNotFound naming %s and ref b", err, missing)
			}
			if got := looseObjectFiles(t, r.Path()); len(got) != len(before) {
				t.Errorf("Prune deleted %d objects despite the error", len(before)-len(got))
			}
		})
	}
}

// SetConfig edits a config made by `ostree init` so that ostree reads the new value and the
// rest of the file is as it was.
func TestSetConfigOstree(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "repo")
	testutil.Run(t, "ostree", "init", "--repo="+path, "--mode=bare-user")
	orig, err := os.ReadFile(filepath.Join(path, "config"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	get := func(key string) string {
		t.Helper()
		return strings.TrimSuffix(testutil.Run(t, "ostree", "config", "--repo="+path, "get", key), "\n")
	}

	if err := r.SetConfig("sysroot", "bootloader", "none"); err != nil {
		t.Fatal(err)
	}
	if got := get("sysroot.bootloader"); got != "none" {
		t.Errorf("ostree config get sysroot.bootloader = %q, want none", got)
	}
	data, _ := os.ReadFile(filepath.Join(path, "config"))
	if want := string(orig) + "\n[sysroot]\nbootloader=none\n"; string(data) != want {
		t.Errorf("config:\n%s\nwant:\n%s", data, want)
	}

	// Changing it again edits the line in place; a new core key goes into [core].
	if err := r.SetConfig("sysroot", "bootloader", "grub2"); err != nil {
		t.Fatal(err)
	}
	if err := r.SetConfig("core", "min-free-space-size", "500MB"); err != nil {
		t.Fatal(err)
	}
	value := " lead\\back\ttab"
	if err := r.SetConfig("x-test", "odd", value); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"sysroot.bootloader": "grub2", "core.min-free-space-size": "500MB", "core.mode": "bare-user", "x-test.odd": value} {
		if got := get(key); got != want {
			t.Errorf("ostree config get %s = %q, want %q", key, got, want)
		}
	}
	cfg, err := r.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg["sysroot"]["bootloader"] != "grub2" || cfg["core"]["min-free-space-size"] != "500MB" || cfg["x-test"]["odd"] != value || cfg["core"]["repo_version"] != "1" {
		t.Errorf("Config() = %q", cfg)
	}
	if _, err := Open(ctx, path); err != nil {
		t.Errorf("reopening after SetConfig: %v", err)
	}
	// What ostree writes is read back by Config.
	testutil.Run(t, "ostree", "config", "--repo="+path, "set", "x-test.theirs", " spaced\tvalue")
	if cfg, err := r.Config(); err != nil || cfg["x-test"]["theirs"] != " spaced\tvalue" {
		t.Errorf("Config() of ostree's value: %q, %v", cfg["x-test"]["theirs"], err)
	}
}

func TestSetConfigRejects(t *testing.T) {
	r := testRepo(t, ModeArchive)
	for _, gk := range [][2]string{{"", "k"}, {"g]", "k"}, {"g", ""}, {"g", "a=b"}, {"g", "k\n"}, {"g\n", "k"}, {"g", " k"}} {
		if err := r.SetConfig(gk[0], gk[1], "v"); err == nil {
			t.Errorf("SetConfig(%q, %q) succeeded", gk[0], gk[1])
		}
	}
}

// TestPruneIfRootsRemoved: with IfRootsRemoved, a prune walks the repository only when a commit
// a ref named (at the last prune, or since) lost its last ref; new roots alone skip it, and an
// object written without a ref waits for a full prune.
func TestPruneIfRootsRemoved(t *testing.T) {
	ctx := context.Background()
	r := testRepo(t, ModeBareUser)
	commit := func(ref, content string) Checksum {
		t.Helper()
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"f": content})
		c, err := r.CommitDir(ctx, dir, WithBranch(ref), fixedTime)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	has := func(c Checksum) bool {
		ok, err := r.HasObject(ObjectName{c, ObjectCommit})
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	prune := func(want bool) *PruneStats {
		t.Helper()
		st, err := r.Prune(ctx, PruneOptions{IfRootsRemoved: true})
		if err != nil {
			t.Fatal(err)
		}
		if st.Skipped == want {
			t.Fatalf("prune skipped = %v, want %v (%+v)", st.Skipped, !want, st)
		}
		return st
	}
	a := commit("a", "A")
	prune(true) // no record yet: a full prune
	b := commit("b", "B")
	prune(false) // b is a new root, nothing left
	if err := r.DeleteRef("b"); err != nil {
		t.Fatal(err)
	}
	if st := prune(true); has(b) || st.Deleted == 0 {
		t.Fatalf("b survived the prune after its ref went (%+v)", st)
	}
	c := commit("c", "C")
	// a moves to c: a's commit has no ref left.
	if err := r.SetRef("a", c); err != nil {
		t.Fatal(err)
	}
	if prune(true); has(a) || !has(c) {
		t.Fatalf("after moving ref a: a kept %v, c kept %v", has(a), has(c))
	}
	// A ref moving between commits that both stay named: nothing to walk.
	commit("d", "D")
	if err := r.SetRef("a", c); err != nil {
		t.Fatal(err)
	}
	prune(false)
	// An orphan (written, its ref deleted before this package could note anything: another
	// tool's doing) stays until a full prune.
	o := commit("orphan", "O")
	os.Remove(filepath.Join(r.Path(), "refs", "heads", "orphan"))
	prune(false)
	if !has(o) {
		t.Fatal("the orphan went without a full prune")
	}
	if _, err := r.Prune(ctx, PruneOptions{}); err != nil || has(o) {
		t.Fatalf("a full prune kept the orphan (%v)", err)
	}
}
