package ostree

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"github.com/bootc-go/bootc/internal/lockfile"
	"golang.org/x/sys/unix"
)

// PruneOptions configures Prune.
type PruneOptions struct {
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
	// IfRootsRemoved skips the walk (removing only abandoned staging directories) when every
	// commit a ref named at the end of the last full prune, and every commit a ref has left
	// since, is still named by a ref: then no object became unreachable since, except those
	// written without a ref (an interrupted pull's, kept to resume), which stay until a later
	// prune. Only ref changes made through this package are seen (pruneRootsFile,
	// pruneDepartedFile); another tool's deletion of a ref is seen at the next full prune.
	IfRootsRemoved bool
}

// pruneRootsFile, in the repository, lists the commits refs named at the end of the last full
// prune (hex checksums, sorted, one a line); pruneDepartedFile the commits a ref has left since
// (one a line, appended). libostree ignores both.
const (
	pruneRootsFile    = ".bootc-prune-roots"
	pruneDepartedFile = ".bootc-prune-departed"
)

// noteDeparted records that a ref left commit c. It is not synced: a line lost to a crash
// only delays the prune of what c alone reached.
func (r *Repo) noteDeparted(c Checksum) error {
	f, err := os.OpenFile(filepath.Join(r.path, pruneDepartedFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(c.String() + "\n"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PruneStats says what Prune found and did.
type PruneStats struct {
	// Objects is the number of loose objects before pruning; Deleted how many were (or, in a
	// dry run, would be) removed; BytesFreed their size on disk.
	Objects, Deleted int
	BytesFreed       int64
	// StagingRemoved counts abandoned transaction staging directories removed (left by a
	// killed process).
	StagingRemoved int
	// Skipped is true when IfRootsRemoved found no root removed and walked nothing.
	Skipped bool
}

// Prune deletes every loose object no ref reaches, as `ostree prune --refs-only --depth=0`:
// from each ref's commit, its commitmeta, root dirtree and dirmeta and everything below them
// are kept; parent commits are not followed. It takes the repository's lock exclusively, so it
// waits for running transactions and none start while it runs; abandoned staging directories
// under tmp/ are removed too.
//
// Every ref counts: local, remote (refs/remotes) and collection mirrors (refs/mirrors). If an object a ref reaches is missing or unreadable,
// Prune deletes nothing and returns an error naming the object and the ref: the repository is
// damaged, and what is unreachable cannot be known. Only metadata objects are read. Commits are
// deleted before the objects below them, so that an interrupted prune never leaves a commit
// whose objects are gone. BytesFreed counts each deleted file's size (st_size), as ostree does.
// Commit tombstones are kept, as ostree keeps them; Prune writes none (even with
// core.tombstone-commits set). A dry run takes the lock too (so that the staging directories it
// counts are really abandoned) but removes nothing.
func (r *Repo) Prune(ctx context.Context, opts PruneOptions) (*PruneStats, error) {
	unlock, err := r.lock(ctx, lockfile.Exclusive)
	if err != nil {
		return nil, err
	}
	defer unlock()

	refs, err := r.pruneRoots()
	if err != nil {
		return nil, err
	}
	roots := rootSet(refs)
	if opts.IfRootsRemoved && !opts.DryRun && r.rootsKept(roots) {
		stats := &PruneStats{Skipped: true}
		if stats.StagingRemoved, err = r.removeStaging(false); err != nil {
			return nil, err
		}
		r.log.Debug("prune skipped: no ref root removed since the last prune", "staging", stats.StagingRemoved)
		return stats, nil
	}
	loose, err := r.listLooseObjects()
	if err != nil {
		return nil, err
	}
	reachable, err := r.reachableFrom(ctx, refs, loose)
	if err != nil {
		return nil, err
	}
	stats := &PruneStats{Objects: len(loose)}
	if stats.StagingRemoved, err = r.removeStaging(opts.DryRun); err != nil {
		return nil, err
	}

	var doomed []ObjectName
	for n := range loose {
		if !reachable[n] {
			doomed = append(doomed, n)
		}
	}
	// Commits first, then what they name, so that an interrupted prune leaves no commit with
	// missing objects (see pruneOrder).
	sort.Slice(doomed, func(i, j int) bool {
		a, b := doomed[i], doomed[j]
		if pa, pb := pruneOrder(a.Type), pruneOrder(b.Type); pa != pb {
			return pa < pb
		}
		return bytes.Compare(a.Checksum[:], b.Checksum[:]) < 0
	})
	for _, n := range doomed {
		if err := ctx.Err(); err != nil {
			return stats, err
		}
		p := r.ObjectPath(n)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return stats, fmt.Errorf("prune: %s: %w", n, err)
		}
		if !opts.DryRun {
			r.meta.forget(n)
			if err := os.Remove(p); err != nil {
				return stats, fmt.Errorf("prune: deleting %s: %w", n, err)
			}
		}
		stats.Deleted++
		stats.BytesFreed += st.Size
	}
	if !opts.DryRun {
		// Recorded only once the prune is complete: a prune cut short leaves the previous
		// record, or none, and the next prune walks again.
		if err := atomicfile.WriteFile(filepath.Join(r.path, pruneRootsFile), []byte(strings.Join(roots, "\n")+"\n"), 0o644, syncOption(r.fsync)...); err != nil {
			return stats, fmt.Errorf("prune: recording the roots: %w", err)
		}
		if err := os.Remove(filepath.Join(r.path, pruneDepartedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return stats, fmt.Errorf("prune: %w", err)
		}
	}
	r.log.Debug("pruned repository", "objects", stats.Objects, "deleted", stats.Deleted,
		"bytes", stats.BytesFreed, "staging", stats.StagingRemoved, "dry-run", opts.DryRun)
	return stats, nil
}

// pruneOrder ranks object types for deletion: an object is deleted before those it names.
func pruneOrder(t ObjectType) int {
	switch t {
	case ObjectCommit:
		return 0
	case ObjectCommitMeta:
		return 1
	case ObjectDirTree:
		return 2
	case ObjectDirMeta:
		return 3
	}
	return 4
}

// removeStaging removes (or, in a dry run, only counts) the transaction staging directories
// under tmp/. The caller must hold the lock exclusively: no transaction runs, so every one is
// abandoned.
func (r *Repo) removeStaging(dryRun bool) (int, error) {
	ents, err := os.ReadDir(filepath.Join(r.path, "tmp"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, fmt.Errorf("prune: listing tmp: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "staging-") {
			continue
		}
		if !dryRun {
			if err := os.RemoveAll(filepath.Join(r.path, "tmp", e.Name())); err != nil {
				return n, fmt.Errorf("prune: removing abandoned staging directory: %w", err)
			}
		}
		n++
	}
	return n, nil
}

// looseSuffixes maps the file name suffixes of the loose objects Prune manages to their types.
// Content objects are .file, or .filez in an archive repository. Commit tombstones
// (.tombstone-commit) are left out: they record deliberately deleted commits, and ostree's
// prune neither counts nor deletes them.
func (r *Repo) looseSuffixes() map[string]ObjectType {
	file := "file"
	if r.mode == ModeArchive {
		file = "filez"
	}
	return map[string]ObjectType{
		"commit":     ObjectCommit,
		"commitmeta": ObjectCommitMeta,
		"dirtree":    ObjectDirTree,
		"dirmeta":    ObjectDirMeta,
		file:         ObjectFile,
	}
}

// listLooseObjects returns every loose object under objects/. Files it does not recognise as
// objects (other suffixes, malformed names) are left out, and so never deleted.
func (r *Repo) listLooseObjects() (map[ObjectName]bool, error) {
	objDir := filepath.Join(r.path, "objects")
	dirs, err := os.ReadDir(objDir)
	if err != nil {
		return nil, fmt.Errorf("prune: listing objects: %w", err)
	}
	suffixes := r.looseSuffixes()
	out := map[ObjectName]bool{}
	for _, d := range dirs {
		if len(d.Name()) != 2 || !d.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(objDir, d.Name()))
		if err != nil {
			return nil, fmt.Errorf("prune: listing objects: %w", err)
		}
		for _, e := range ents {
			base, suffix, ok := strings.Cut(e.Name(), ".")
			t, known := suffixes[suffix]
			if !ok || !known {
				continue
			}
			c, err := ParseChecksum(d.Name() + base)
			if err != nil {
				continue
			}
			out[ObjectName{c, t}] = true
		}
	}
	return out, nil
}

// pruneRoots lists every ref Prune keeps: local, remote and mirror refs.
func (r *Repo) pruneRoots() ([]Ref, error) {
	refs, err := r.ListRefs()
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	mirrors, err := r.listMirrorRefs()
	if err != nil {
		return nil, fmt.Errorf("prune: %w", err)
	}
	return append(refs, mirrors...), nil
}

// rootSet is the sorted, distinct commits of refs, in hex.
func rootSet(refs []Ref) []string {
	var out []string
	for _, ref := range refs {
		out = append(out, ref.Checksum.String())
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// rootsKept says whether every commit recorded by the last full prune, and every commit a ref
// left since, is among roots.
func (r *Repo) rootsKept(roots []string) bool {
	data, err := os.ReadFile(filepath.Join(r.path, pruneRootsFile))
	if err != nil {
		return false
	}
	departed, err := os.ReadFile(filepath.Join(r.path, pruneDepartedFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false
	}
	for _, c := range strings.Fields(string(data) + string(departed)) {
		if _, found := slices.BinarySearch(roots, c); !found {
			return false
		}
	}
	return true
}

// reachableFrom returns the objects reachable from refs (see Prune). present is the set of
// loose objects: a content object a ref reaches must be in it.
func (r *Repo) reachableFrom(ctx context.Context, refs []Ref, present map[ObjectName]bool) (map[ObjectName]bool, error) {
	seen := map[ObjectName]bool{}
	for _, ref := range refs {
		if err := r.markCommit(ctx, ref, present, seen); err != nil {
			return nil, fmt.Errorf("prune: ref %s (commit %s): %w; nothing was deleted", ref.Name, ref.Checksum, err)
		}
	}
	return seen, nil
}

// listMirrorRefs returns the collection refs under refs/mirrors/COLLECTION-ID/, named
// "mirror COLLECTION-ID:REF". ListRefs leaves them out, but ostree's prune keeps what they reach.
func (r *Repo) listMirrorRefs() ([]Ref, error) {
	refs, err := readRefDir(filepath.Join(r.path, "refs", "mirrors"), func(rel string) string {
		collection, ref, _ := strings.Cut(rel, "/")
		return "mirror " + collection + ":" + ref
	})
	if err != nil {
		return nil, fmt.Errorf("listing mirror refs: %w", err)
	}
	return refs, nil
}

func (r *Repo) markCommit(ctx context.Context, ref Ref, present, seen map[ObjectName]bool) error {
	n := ObjectName{ref.Checksum, ObjectCommit}
	if seen[n] {
		return nil
	}
	seen[n] = true
	seen[ObjectName{ref.Checksum, ObjectCommitMeta}] = true // kept if present; optional
	commit, err := r.ReadCommit(ref.Checksum)
	if err != nil {
		return err
	}
	mark := func(n ObjectName) error {
		if !present[n] {
			return fmt.Errorf("%w: %s", ErrObjectNotFound, n)
		}
		seen[n] = true
		return nil
	}
	var tree func(c Checksum) error
	tree = func(c Checksum) error {
		n := ObjectName{c, ObjectDirTree}
		if seen[n] {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		seen[n] = true
		data, err := r.readMeta(n)
		if err != nil {
			return err
		}
		dt, err := UnmarshalDirTree(data)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		for _, f := range dt.Files {
			if err := mark(ObjectName{f.Checksum, ObjectFile}); err != nil {
				return err
			}
		}
		for _, d := range dt.Dirs {
			if err := mark(ObjectName{d.Meta, ObjectDirMeta}); err != nil {
				return err
			}
			if err := tree(d.Tree); err != nil {
				return err
			}
		}
		return nil
	}
	if err := mark(ObjectName{commit.RootMeta, ObjectDirMeta}); err != nil {
		return err
	}
	return tree(commit.RootTree)
}
