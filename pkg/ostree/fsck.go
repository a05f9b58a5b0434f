package ostree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
)

// FsckProblem is one thing wrong with a repository.
type FsckProblem struct {
	Object ObjectName
	// Path is where the object was first reached ("ref fedora/stable: /usr/bin/ls"), if known.
	Path string
	Err  error
}

func (p FsckProblem) String() string {
	s := fmt.Sprintf("%s: %v", p.Object, p.Err)
	if p.Path != "" {
		s += " (at " + p.Path + ")"
	}
	return s
}

// FsckReport is the result of Fsck.
type FsckReport struct {
	Commits, DirTrees, DirMetas, Files int
	Problems                           []FsckProblem
}

// Fsck checks that every object reachable from the refs and every commit object in the
// repository is present, parses, and hashes to its name. Content objects are rehashed in full,
// by several workers at once. Problems are collected, not returned as an error; the error is for
// failures to run the check at all.
func (r *Repo) Fsck(ctx context.Context) (*FsckReport, error) {
	f := &fsck{r: r, ctx: ctx, seenMeta: map[ObjectName]bool{}, seenFile: map[Checksum]bool{}, rep: &FsckReport{}}
	refs, err := r.ListRefs()
	if err != nil {
		return nil, err
	}
	roots := map[Checksum]string{}
	for _, ref := range refs {
		if _, ok := roots[ref.Checksum]; !ok {
			roots[ref.Checksum] = "ref " + ref.Name
		}
	}
	// Every loose commit too, so that fsck covers what `ostree fsck` covers.
	dirs, err := os.ReadDir(filepath.Join(r.path, "objects"))
	if err != nil {
		return nil, fmt.Errorf("fsck: %w", err)
	}
	for _, d := range dirs {
		if len(d.Name()) != 2 || !d.IsDir() {
			continue
		}
		ents, err := os.ReadDir(filepath.Join(r.path, "objects", d.Name()))
		if err != nil {
			return nil, fmt.Errorf("fsck: %w", err)
		}
		for _, e := range ents {
			base, ok := strings.CutSuffix(e.Name(), ".commit")
			if !ok {
				continue
			}
			c, err := ParseChecksum(d.Name() + base)
			if err != nil {
				f.problem(ObjectName{Type: ObjectCommit}, "objects/"+d.Name()+"/"+e.Name(), fmt.Errorf("%w: object file with an invalid name", ErrCorruptObject))
				continue
			}
			if _, ok := roots[c]; !ok {
				roots[c] = "commit " + c.String()
			}
		}
	}
	commits := make([]Checksum, 0, len(roots))
	for c := range roots {
		commits = append(commits, c)
	}
	sort.Slice(commits, func(i, j int) bool { return roots[commits[i]] < roots[commits[j]] })

	f.files = make(chan fileCheck, 256)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		g.Go(func() error {
			for fc := range f.files {
				if gctx.Err() != nil {
					continue
				}
				if err := r.verifyContent(fc.c); err != nil {
					f.problem(ObjectName{fc.c, ObjectFile}, fc.path, err)
				}
			}
			return nil
		})
	}
	walkErr := func() error {
		defer close(f.files)
		for _, c := range commits {
			if err := f.commit(c, roots[c]); err != nil {
				return err
			}
		}
		return nil
	}()
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if walkErr != nil {
		return nil, walkErr
	}
	sort.Slice(f.rep.Problems, func(i, j int) bool { return f.rep.Problems[i].String() < f.rep.Problems[j].String() })
	return f.rep, nil
}

type fileCheck struct {
	c    Checksum
	path string
}

type fsck struct {
	r        *Repo
	ctx      context.Context
	mu       sync.Mutex
	seenMeta map[ObjectName]bool
	seenFile map[Checksum]bool
	files    chan fileCheck
	rep      *FsckReport
}

func (f *fsck) problem(n ObjectName, path string, err error) {
	f.mu.Lock()
	f.rep.Problems = append(f.rep.Problems, FsckProblem{Object: n, Path: path, Err: err})
	f.mu.Unlock()
}

func (f *fsck) firstVisit(n ObjectName) bool {
	if f.seenMeta[n] {
		return false
	}
	f.seenMeta[n] = true
	return true
}

func (f *fsck) commit(c Checksum, where string) error {
	n := ObjectName{c, ObjectCommit}
	if !f.firstVisit(n) {
		return nil
	}
	commit, err := f.r.ReadCommit(c)
	if err != nil {
		f.problem(n, where, err)
		return nil
	}
	f.rep.Commits++
	if err := f.meta(commit.RootMeta, where+": /"); err != nil {
		return err
	}
	return f.tree(commit.RootTree, where, "/")
}

func (f *fsck) meta(c Checksum, where string) error {
	n := ObjectName{c, ObjectDirMeta}
	if !f.firstVisit(n) {
		return nil
	}
	data, err := f.r.ReadMetadataObject(n) // from the disk, never the cache
	if err == nil {
		_, err = UnmarshalDirMeta(data)
	}
	if err != nil {
		f.problem(n, where, err)
		return nil
	}
	f.rep.DirMetas++
	return nil
}

func (f *fsck) tree(c Checksum, where, dir string) error {
	if err := f.ctx.Err(); err != nil {
		return err
	}
	n := ObjectName{c, ObjectDirTree}
	if !f.firstVisit(n) {
		return nil
	}
	data, err := f.r.ReadMetadataObject(n)
	if err != nil {
		f.problem(n, where+": "+dir, err)
		return nil
	}
	tree, err := UnmarshalDirTree(data)
	if err != nil {
		f.problem(n, where+": "+dir, err)
		return nil
	}
	f.rep.DirTrees++
	for _, file := range tree.Files {
		if f.seenFile[file.Checksum] {
			continue
		}
		f.seenFile[file.Checksum] = true
		f.rep.Files++
		select {
		case f.files <- fileCheck{file.Checksum, where + ": " + dir + file.Name}:
		case <-f.ctx.Done():
			return f.ctx.Err()
		}
	}
	for _, d := range tree.Dirs {
		sub := dir + d.Name + "/"
		if err := f.meta(d.Meta, where+": "+sub); err != nil {
			return err
		}
		if err := f.tree(d.Tree, where, sub); err != nil {
			return err
		}
	}
	return nil
}

// verifyContent rehashes a content object.
func (r *Repo) verifyContent(c Checksum) error {
	obj, err := r.OpenContent(c)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := NewContentHash(obj.Header)
	if obj.Content != nil {
		bp := bufPool.Get().(*[]byte)
		_, err := io.CopyBuffer(h, obj.Content, *bp)
		bufPool.Put(bp)
		if err != nil {
			if !errors.Is(err, ErrCorruptObject) {
				err = fmt.Errorf("%w: %w", ErrCorruptObject, err)
			}
			return err
		}
	}
	var got Checksum
	h.Sum(got[:0])
	if got != c {
		return fmt.Errorf("%w: content hashes to %s", ErrCorruptObject, got)
	}
	return nil
}
