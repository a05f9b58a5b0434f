package ostree

import (
	"context"
	"errors"
	"os"
	"testing"
)

// TestMetadataCache: dirtrees and dirmetas read once are served from the cache while their file
// is there, but ReadMetadataObject and Fsck read the disk, so a damaged object is still found;
// an object deleted behind the Repo's back reads as missing.
func TestMetadataCache(t *testing.T) {
	f := newPruneFixture(t, ModeBare)
	r := f.repo
	c, err := r.ReadCommit(f.commitB)
	if err != nil {
		t.Fatal(err)
	}
	tree := ObjectName{c.RootTree, ObjectDirTree}
	meta := ObjectName{c.RootMeta, ObjectDirMeta}
	if _, err := r.ReadDirTree(tree.Checksum); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadDirMeta(meta.Checksum); err != nil {
		t.Fatal(err)
	}
	// Damaged on disk (replaced: objects may be hardlinked).
	p := r.ObjectPath(tree)
	if err := os.WriteFile(p+".tmp", []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadDirTree(tree.Checksum); err != nil {
		t.Errorf("ReadDirTree of a cached dirtree: %v", err)
	}
	if _, err := r.ReadMetadataObject(tree); !errors.Is(err, ErrCorruptObject) {
		t.Errorf("ReadMetadataObject of the damaged dirtree: %v, want ErrCorruptObject", err)
	}
	rep, err := r.Fsck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 {
		t.Errorf("Fsck found no problem with the damaged dirtree %s", tree)
	}
	// Deleted behind the Repo's back.
	if err := os.Remove(r.ObjectPath(meta)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadDirMeta(meta.Checksum); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("ReadDirMeta of a deleted dirmeta: %v, want ErrObjectNotFound", err)
	}
}
