package ostree

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

// Root names a directory tree stored in a repository: its dirtree and dirmeta, as a commit names
// its root and a TreeDir a subdirectory.
type Root struct {
	Tree, Meta Checksum
}

// Root returns the commit's root tree.
func (c *Commit) Root() Root { return Root{Tree: c.RootTree, Meta: c.RootMeta} }

// MutableTree is a directory being built or edited, as libostree's OstreeMutableTree: its
// dirmeta and its entries, files by content checksum and subdirectories as MutableTrees.
//
// A tree made from a stored one (NewMutableTreeFrom, NewMutableTreeFromCommit) is loaded lazily:
// a directory's dirtree is read from the repository only when something looks into or changes
// it, so an edit of /usr/etc reads the dirtrees of /, /usr and /usr/etc and no other, and memory
// holds only the directories walked into (names and checksums, never file contents). Write
// stores the dirtrees of the loaded directories inside the caller's transaction and reuses the
// others as they are:
//
//	tx, err := repo.Begin(ctx)
//	defer tx.Abort()
//	tree, err := ostree.NewMutableTreeFromCommit(repo, base)
//	err = tree.SetFile("usr/etc/motd", motd)
//	root, err := tree.Write(ctx, tx)
//	commit, err := tx.WriteCommit(ctx, root, ostree.WithBranch("edited"))
//	err = tx.Commit(ctx)
//
// Methods that may load a directory return an error for an unreadable or corrupt dirtree. Paths
// are slash-separated and relative to the tree ("" or "/" is the tree itself). A MutableTree is
// not safe for concurrent use.
type MutableTree struct {
	repo *Repo     // where an unloaded directory's dirtree is read from
	meta *Checksum // nil: not given yet (written as the default dirmeta)
	// contents is the stored dirtree of a directory not loaded yet (files == nil).
	contents Checksum
	files    map[string]*Checksum
	dirs     map[string]*MutableTree
}

// NewMutableTree returns an empty directory with the default dirmeta.
func NewMutableTree() *MutableTree {
	return &MutableTree{files: map[string]*Checksum{}, dirs: map[string]*MutableTree{}}
}

// NewMutableTreeFrom returns the stored tree root of repo as a MutableTree, loaded lazily: no
// object is read until the tree is looked into (nor checked to exist).
func NewMutableTreeFrom(repo *Repo, root Root) *MutableTree {
	meta := root.Meta
	return &MutableTree{repo: repo, meta: &meta, contents: root.Tree}
}

// NewMutableTreeFromCommit returns the root tree of commit c, loaded lazily.
func NewMutableTreeFromCommit(repo *Repo, c Checksum) (*MutableTree, error) {
	commit, err := repo.ReadCommit(c)
	if err != nil {
		return nil, err
	}
	return NewMutableTreeFrom(repo, commit.Root()), nil
}

// load reads the directory's dirtree if it has not been read; its subdirectories stay unloaded.
func (t *MutableTree) load() error {
	if t.files != nil {
		return nil
	}
	dt, err := t.repo.ReadDirTree(t.contents)
	if err != nil {
		return fmt.Errorf("loading tree: %w", err)
	}
	t.files = make(map[string]*Checksum, len(dt.Files))
	t.dirs = make(map[string]*MutableTree, len(dt.Dirs))
	for _, f := range dt.Files {
		c := f.Checksum
		t.files[f.Name] = &c
	}
	for _, d := range dt.Dirs {
		t.dirs[d.Name] = NewMutableTreeFrom(t.repo, Root{Tree: d.Tree, Meta: d.Meta})
	}
	t.contents = Checksum{}
	return nil
}

// Write stores, through tx, the dirtree of every loaded directory (bottom-up) and the default
// dirmeta where one is needed, and returns the tree's root. Directories never loaded are not
// read or written: their stored dirtrees are reused. The tree stays usable; writing it again
// after more edits writes only what changed (unchanged objects already exist).
func (t *MutableTree) Write(ctx context.Context, tx *Transaction) (Root, error) {
	if err := ctx.Err(); err != nil {
		return Root{}, err
	}
	var root Root
	if t.meta != nil {
		root.Meta = *t.meta
	} else {
		mc, err := tx.WriteMetadata(ObjectDirMeta, DefaultDirMeta.Marshal())
		if err != nil {
			return Root{}, err
		}
		root.Meta = mc
	}
	if t.files == nil {
		root.Tree = t.contents
		return root, nil
	}
	dt := DirTree{Files: make([]TreeFile, 0, len(t.files)), Dirs: make([]TreeDir, 0, len(t.dirs))}
	for name, c := range t.files {
		dt.Files = append(dt.Files, TreeFile{Name: name, Checksum: *c})
	}
	for name, sub := range t.dirs {
		r, err := sub.Write(ctx, tx)
		if err != nil {
			return Root{}, err
		}
		dt.Dirs = append(dt.Dirs, TreeDir{Name: name, Tree: r.Tree, Meta: r.Meta})
	}
	tc, err := tx.WriteMetadata(ObjectDirTree, dt.Marshal())
	if err != nil {
		return Root{}, err
	}
	root.Tree = tc
	return root, nil
}

func splitTreePath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// walk returns the directory at the path parts, or nil if there is none (or a file is in the
// way), loading each directory on the way.
func (t *MutableTree) walk(parts []string) (*MutableTree, error) {
	for _, name := range parts {
		if err := t.load(); err != nil {
			return nil, err
		}
		sub, ok := t.dirs[name]
		if !ok {
			return nil, nil
		}
		t = sub
	}
	return t, nil
}

// Dir returns the subdirectory at path, or nil if there is none.
func (t *MutableTree) Dir(path string) (*MutableTree, error) {
	return t.walk(splitTreePath(path))
}

// File returns the content checksum of the file at path, and whether there is one.
func (t *MutableTree) File(path string) (Checksum, bool, error) {
	parent, name, err := t.parentOf(path)
	if err != nil || parent == nil {
		return Checksum{}, false, err
	}
	if err := parent.load(); err != nil {
		return Checksum{}, false, err
	}
	c, ok := parent.files[name]
	if !ok {
		return Checksum{}, false, nil
	}
	return *c, true, nil
}

// Files returns the names of the files directly in t, sorted.
func (t *MutableTree) Files() ([]string, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	return sortedKeys(t.files), nil
}

// Dirs returns the names of the subdirectories of t, sorted.
func (t *MutableTree) Dirs() ([]string, error) {
	if err := t.load(); err != nil {
		return nil, err
	}
	return sortedKeys(t.dirs), nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Meta returns the checksum of t's dirmeta, or zero for the default one.
func (t *MutableTree) Meta() Checksum {
	if t.meta == nil {
		return Checksum{}
	}
	return *t.meta
}

// SetMeta sets t's dirmeta checksum (the object must be written, e.g. with
// Transaction.WriteMetadata).
func (t *MutableTree) SetMeta(c Checksum) { t.meta = &c }

// Clear removes everything inside t (reading nothing).
func (t *MutableTree) Clear() {
	t.files = map[string]*Checksum{}
	t.dirs = map[string]*MutableTree{}
	t.contents = Checksum{}
}

// Remove deletes the file or directory at path and reports whether there was one.
func (t *MutableTree) Remove(path string) (bool, error) {
	parent, name, err := t.parentOf(path)
	if err != nil || parent == nil {
		return false, err
	}
	if err := parent.load(); err != nil {
		return false, err
	}
	if _, isFile := parent.files[name]; isFile {
		delete(parent.files, name)
		return true, nil
	}
	if _, isDir := parent.dirs[name]; isDir {
		delete(parent.dirs, name)
		return true, nil
	}
	return false, nil
}

// parentOf returns the directory holding path (nil if there is none) and path's last name.
func (t *MutableTree) parentOf(path string) (*MutableTree, string, error) {
	parts := splitTreePath(path)
	if len(parts) == 0 {
		return nil, "", nil
	}
	parent, err := t.walk(parts[:len(parts)-1])
	return parent, parts[len(parts)-1], err
}

// MkdirAll returns the directory at path, creating it and missing parents with the default
// dirmeta (or the given one, if not zero). A file in the way is an error.
func (t *MutableTree) MkdirAll(path string, meta Checksum) (*MutableTree, error) {
	cur := t
	for i, name := range splitTreePath(path) {
		if err := ValidateFilename(name); err != nil {
			return nil, err
		}
		if err := cur.load(); err != nil {
			return nil, err
		}
		if _, isFile := cur.files[name]; isFile {
			return nil, fmt.Errorf("creating %s: %s is a file", path, strings.Join(splitTreePath(path)[:i+1], "/"))
		}
		sub, ok := cur.dirs[name]
		if !ok {
			sub = NewMutableTree()
			if !meta.IsZero() {
				sub.SetMeta(meta)
			}
			cur.dirs[name] = sub
		}
		cur = sub
	}
	return cur, nil
}

// SetFile puts a file with content checksum c at path, replacing a file there. The parent
// directories must exist.
func (t *MutableTree) SetFile(path string, c Checksum) error {
	parent, name, err := t.parentOf(path)
	if err != nil {
		return err
	}
	if parent == nil {
		return fmt.Errorf("setting %s: no parent directory", path)
	}
	if err := ValidateFilename(name); err != nil {
		return err
	}
	if err := parent.load(); err != nil {
		return err
	}
	if _, isDir := parent.dirs[name]; isDir {
		return fmt.Errorf("setting %s: it is a directory", path)
	}
	parent.files[name] = &c
	return nil
}

// Rename moves the file or directory at from to to. The parent of to must exist and to must not.
func (t *MutableTree) Rename(from, to string) error {
	if to == from || strings.HasPrefix(strings.Trim(to, "/")+"/", strings.Trim(from, "/")+"/") {
		return fmt.Errorf("renaming %s to %s: cannot move a directory into itself", from, to)
	}
	src, sname, err := t.parentOf(from)
	if err != nil {
		return err
	}
	if src == nil {
		return fmt.Errorf("renaming %s: not found", from)
	}
	dst, dname, err := t.parentOf(to)
	if err != nil {
		return err
	}
	if dst == nil {
		return fmt.Errorf("renaming %s to %s: the parent of %s does not exist", from, to, to)
	}
	if err := ValidateFilename(dname); err != nil {
		return err
	}
	if err := src.load(); err != nil {
		return err
	}
	if err := dst.load(); err != nil {
		return err
	}
	if _, exists := dst.files[dname]; exists {
		return fmt.Errorf("renaming %s to %s: %s exists", from, to, to)
	}
	if _, exists := dst.dirs[dname]; exists {
		return fmt.Errorf("renaming %s to %s: %s exists", from, to, to)
	}
	if f, isFile := src.files[sname]; isFile {
		delete(src.files, sname)
		dst.files[dname] = f
		return nil
	}
	if d, isDir := src.dirs[sname]; isDir {
		delete(src.dirs, sname)
		dst.dirs[dname] = d
		return nil
	}
	return fmt.Errorf("renaming %s: not found", from)
}

// Overlay lays layer over t as a container runtime applies an image layer (and as
// ostree-ext's union checkout merges derived layers): in each directory the layer's whiteouts
// are processed first (see whiteouts: an opaque whiteout empties the directory, ".wh.NAME"
// removes NAME), then its files replace what is there (a directory in the way included), and
// its directories are merged into t's, recursively. A directory t already has keeps its
// dirmeta; one t lacks (or whose dirmeta was never given) takes the layer's. No whiteout marker
// is kept. Only the directories of t the layer reaches are loaded; every directory of the layer
// is.
func (t *MutableTree) Overlay(ctx context.Context, layer *MutableTree) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := layer.load(); err != nil {
		return err
	}
	if err := t.load(); err != nil {
		return err
	}
	if t.meta == nil && layer.meta != nil {
		m := *layer.meta
		t.meta = &m
	}
	names := sortedKeys(layer.files)
	w := planWhiteouts(names)
	if w.opaque {
		t.Clear()
	}
	for _, name := range w.remove {
		delete(t.files, name)
		delete(t.dirs, name)
	}
	for _, name := range names {
		if isWhiteout(name) {
			continue
		}
		c := *layer.files[name]
		delete(t.dirs, name)
		t.files[name] = &c
	}
	for _, name := range sortedKeys(layer.dirs) {
		child, ok := t.dirs[name]
		if !ok {
			delete(t.files, name)
			child = NewMutableTree()
			t.dirs[name] = child
		}
		if err := child.Overlay(ctx, layer.dirs[name]); err != nil {
			return err
		}
	}
	return nil
}
