package ostree

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrPathNotFound: the path Walk was given does not exist in the commit.
var ErrPathNotFound = errors.New("no such file or directory")

// TreeEntry is a file or directory of a commit, as Walk reports it.
type TreeEntry struct {
	// Path is absolute within the commit ("/", "/usr/bin/ls").
	Path string
	// For directories: the dirtree and dirmeta checksums and the parsed dirmeta.
	Tree, MetaChecksum Checksum
	Meta               *DirMeta
	// For files: the content checksum, and with WalkHeaders the header and content size.
	Checksum Checksum
	Header   *FileHeader
	Size     int64
}

// IsDir reports whether the entry is a directory.
func (e *TreeEntry) IsDir() bool { return e.Meta != nil }

// WalkOptions tune Walk.
type WalkOptions struct {
	// Recursive descends into subdirectories; otherwise Walk reports the start entry and, if it is
	// a directory, its direct children.
	Recursive bool
	// DirOnly reports only the start entry.
	DirOnly bool
	// Headers loads each file's header and size (reads every content object's metadata).
	Headers bool
}

// Walk reports the entries of commit c under path, depth first, a directory before its contents,
// and in each directory its files and then its subdirectories, each in name order, as `ostree ls`
// lists them.
func (r *Repo) Walk(ctx context.Context, c Checksum, p string, o WalkOptions, fn func(*TreeEntry) error) error {
	commit, err := r.ReadCommit(c)
	if err != nil {
		return err
	}
	p = path.Clean("/" + p)
	cur := &TreeEntry{Path: "/", Tree: commit.RootTree, MetaChecksum: commit.RootMeta}
	var parts []string
	if p != "/" {
		parts = strings.Split(p[1:], "/")
	}
	for i, name := range parts {
		tree, err := r.ReadDirTree(cur.Tree)
		if err != nil {
			return err
		}
		next, err := r.findEntry(tree, "/"+strings.Join(parts[:i+1], "/"), name)
		if err != nil {
			return err
		}
		if next == nil || !next.isDirRef() && i != len(parts)-1 {
			return fmt.Errorf("%s: %w in commit %s", p, ErrPathNotFound, c)
		}
		cur = next
	}
	return r.walkEntry(ctx, cur, o, fn, true)
}

func (e *TreeEntry) isDirRef() bool { return !e.Tree.IsZero() }

func (r *Repo) findEntry(tree *DirTree, p, name string) (*TreeEntry, error) {
	for _, d := range tree.Dirs {
		if d.Name == name {
			return &TreeEntry{Path: p, Tree: d.Tree, MetaChecksum: d.Meta}, nil
		}
	}
	for _, f := range tree.Files {
		if f.Name == name {
			return &TreeEntry{Path: p, Checksum: f.Checksum}, nil
		}
	}
	return nil, nil
}

func (r *Repo) walkEntry(ctx context.Context, e *TreeEntry, o WalkOptions, fn func(*TreeEntry) error, top bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !e.isDirRef() {
		if o.Headers {
			obj, err := r.OpenContent(e.Checksum)
			if err != nil {
				return err
			}
			e.Header, e.Size = obj.Header, obj.Size
			obj.Close()
		}
		return fn(e)
	}
	meta, err := r.ReadDirMeta(e.MetaChecksum)
	if err != nil {
		return err
	}
	e.Meta = meta
	if err := fn(e); err != nil {
		return err
	}
	if o.DirOnly || !top && !o.Recursive {
		return nil
	}
	tree, err := r.ReadDirTree(e.Tree)
	if err != nil {
		return err
	}
	// Files first, then directories, each in name order, as `ostree ls` lists them.
	for _, f := range tree.Files {
		child := &TreeEntry{Path: path.Join(e.Path, f.Name), Checksum: f.Checksum}
		if err := r.walkEntry(ctx, child, o, fn, false); err != nil {
			return err
		}
	}
	for _, d := range tree.Dirs {
		child := &TreeEntry{Path: path.Join(e.Path, d.Name), Tree: d.Tree, MetaChecksum: d.Meta}
		if err := r.walkEntry(ctx, child, o, fn, false); err != nil {
			return err
		}
	}
	return nil
}
