package imagestore

import (
	"context"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// Flatten applies the layers of img in order, as a container runtime does, into one tree: each
// layer is streamed into tx (every file checked as it is stored; device nodes, FIFOs and
// sockets skipped) and laid over the layers before it with MutableTree.Overlay (whiteouts and
// opaque whiteouts honoured, existing directories keeping their metadata). The tree is
// returned unwritten, for the caller to edit, Write and commit in tx. No layer and no file
// content is held in memory: the tree holds names and checksums.
//
// Every layer is a plain filesystem layer here: an ostree-container image's embedded
// repository is just files under /sysroot (its objects are the tree's files, so the repository
// stores them once).
func Flatten(ctx context.Context, tx *ostree.Transaction, img v1.Image) (*ostree.MutableTree, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the image's layers: %w", err)
	}
	root := ostree.NewMutableTree()
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		src := ostree.NewTarSource(rc)
		src.SkipSpecial = true
		layer, err := tx.WriteEntries(ctx, src)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		if err := root.Overlay(ctx, layer); err != nil {
			return nil, fmt.Errorf("applying layer %d: %w", i+1, err)
		}
	}
	return root, nil
}

// FlattenTo flattens img (see Flatten) in a transaction of its own and checks the tree out to
// dest, which must not exist (its parent must), with the owners, modes and xattrs the layers
// give (this needs root). It returns the image's creation time (zero if the config has none).
func FlattenTo(ctx context.Context, repo *ostree.Repo, img v1.Image, dest string) (time.Time, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the image config: %w", err)
	}
	tx, err := repo.Begin(ctx)
	if err != nil {
		return time.Time{}, err
	}
	defer tx.Abort()
	tree, err := Flatten(ctx, tx, img)
	if err != nil {
		return time.Time{}, err
	}
	root, err := tree.Write(ctx, tx)
	if err != nil {
		return time.Time{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return time.Time{}, err
	}
	if err := repo.CheckoutTree(ctx, root.Tree, root.Meta, dest); err != nil {
		return time.Time{}, err
	}
	return cf.Created.Time, nil
}
