package imagestore

import (
	"context"
	"fmt"
	"strings"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// treeMerger lays derived-layer commits over a base tree the way ostree-ext's checkout does
// (spec §3.4 "Merge": union checkout, whiteouts processed, existing directories keep their
// metadata), but on the trees themselves rather than on a checkout: nothing is written to the
// filesystem, so no symlink in the image can redirect a write, and directories no layer touches
// keep their dirtree objects as they are.
type treeMerger struct {
	repo *ostree.Repo
}

// mnode is a directory of the merged tree. Until it is loaded (files == nil) it is the
// repository's dirtree tree, unchanged; meta is zero for a directory whose metadata no layer
// has given yet (the root of an image without a base).
type mnode struct {
	tree, meta ostree.Checksum
	files      map[string]ostree.Checksum
	dirs       map[string]*mnode
}

func (m *treeMerger) load(n *mnode) error {
	if n.files != nil {
		return nil
	}
	n.files, n.dirs = map[string]ostree.Checksum{}, map[string]*mnode{}
	if n.tree.IsZero() {
		return nil
	}
	dt, err := m.repo.ReadDirTree(n.tree)
	if err != nil {
		return err
	}
	for _, f := range dt.Files {
		n.files[f.Name] = f.Checksum
	}
	for _, d := range dt.Dirs {
		n.dirs[d.Name] = &mnode{tree: d.Tree, meta: d.Meta}
	}
	n.tree = ostree.Checksum{}
	return nil
}

// apply lays the layer directory (tree, meta) over n: an opaque whiteout empties n, ".wh.NAME"
// removes NAME, files replace what is there, directories merge (a directory n already has
// keeps its metadata; a file in the way is replaced). Whiteout markers are not kept.
func (m *treeMerger) apply(ctx context.Context, n *mnode, tree, meta ostree.Checksum) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dt, err := m.repo.ReadDirTree(tree)
	if err != nil {
		return err
	}
	if err := m.load(n); err != nil {
		return err
	}
	if n.meta.IsZero() {
		n.meta = meta
	}
	for _, f := range dt.Files {
		if f.Name == ostree.OpaqueWhiteout {
			n.files, n.dirs = map[string]ostree.Checksum{}, map[string]*mnode{}
		}
	}
	for _, f := range dt.Files {
		if target, ok := strings.CutPrefix(f.Name, ostree.WhiteoutPrefix); ok && f.Name != ostree.OpaqueWhiteout {
			delete(n.files, target)
			delete(n.dirs, target)
		}
	}
	for _, f := range dt.Files {
		if strings.HasPrefix(f.Name, ostree.WhiteoutPrefix) {
			continue
		}
		delete(n.dirs, f.Name)
		n.files[f.Name] = f.Checksum
	}
	for _, d := range dt.Dirs {
		child, ok := n.dirs[d.Name]
		if !ok {
			delete(n.files, d.Name)
			child = &mnode{files: map[string]ostree.Checksum{}, dirs: map[string]*mnode{}}
			n.dirs[d.Name] = child
		}
		if err := m.apply(ctx, child, d.Tree, d.Meta); err != nil {
			return err
		}
	}
	return nil
}

// lookupFile returns the checksum of the file at path (slash-separated, relative).
func (m *treeMerger) lookupFile(n *mnode, path string) (ostree.Checksum, bool, error) {
	parts := strings.Split(path, "/")
	for _, p := range parts[:len(parts)-1] {
		if err := m.load(n); err != nil {
			return ostree.Checksum{}, false, err
		}
		if n = n.dirs[p]; n == nil {
			return ostree.Checksum{}, false, nil
		}
	}
	if err := m.load(n); err != nil {
		return ostree.Checksum{}, false, err
	}
	c, ok := n.files[parts[len(parts)-1]]
	return c, ok, nil
}

// removeFile deletes the file at path if it is there.
func (m *treeMerger) removeFile(n *mnode, path string) {
	parts := strings.Split(path, "/")
	for _, p := range parts[:len(parts)-1] {
		if n = n.dirs[p]; n == nil || n.files == nil {
			return
		}
	}
	delete(n.files, parts[len(parts)-1])
}

// write stores the dirtrees of the loaded directories through tx and returns the root's dirtree
// and dirmeta.
func (m *treeMerger) write(tx *ostree.Transaction, n *mnode) (tree, meta ostree.Checksum, err error) {
	if n.meta.IsZero() {
		if n.meta, err = tx.WriteMetadata(ostree.ObjectDirMeta, ostree.DefaultDirMeta.Marshal()); err != nil {
			return tree, meta, err
		}
	}
	if n.files == nil {
		return n.tree, n.meta, nil
	}
	var dt ostree.DirTree
	for name, c := range n.files {
		dt.Files = append(dt.Files, ostree.TreeFile{Name: name, Checksum: c})
	}
	for name, sub := range n.dirs {
		t, mc, err := m.write(tx, sub)
		if err != nil {
			return tree, meta, err
		}
		dt.Dirs = append(dt.Dirs, ostree.TreeDir{Name: name, Tree: t, Meta: mc})
	}
	tree, err = tx.WriteMetadata(ostree.ObjectDirTree, dt.Marshal())
	return tree, n.meta, err
}

// requireKernel refuses a tree without a regular file usr/lib/modules/KVER/vmlinuz, which
// bootc needs to boot it (spec §2.2).
func requireKernel(repo *ostree.Repo, root ostree.Checksum) error {
	dir := root
	for _, name := range []string{"usr", "lib", "modules"} {
		dt, err := repo.ReadDirTree(dir)
		if err != nil {
			return err
		}
		found := false
		for _, d := range dt.Dirs {
			if d.Name == name {
				dir, found = d.Tree, true
			}
		}
		if !found {
			return fmt.Errorf("%w: it has no /usr/lib/modules directory: a bootable image has its kernel at /usr/lib/modules/KVER/vmlinuz (and carries the label containers.bootc=1)", ErrNotBootable)
		}
	}
	modules, err := repo.ReadDirTree(dir)
	if err != nil {
		return err
	}
	for _, kver := range modules.Dirs {
		dt, err := repo.ReadDirTree(kver.Tree)
		if err != nil {
			return err
		}
		for _, f := range dt.Files {
			if f.Name != "vmlinuz" {
				continue
			}
			obj, err := repo.OpenContent(f.Checksum)
			if err != nil {
				return err
			}
			regular := obj.Header.Mode&ostree.ModeTypeMask == ostree.ModeRegular
			obj.Close()
			if regular {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: no regular file /usr/lib/modules/KVER/vmlinuz: a bootable image has its kernel there (and carries the label containers.bootc=1)", ErrNotBootable)
}
