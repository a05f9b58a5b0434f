package imagestore

import (
	"context"
	"fmt"
	"time"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

// requireKernel refuses a tree without a regular file usr/lib/modules/KVER/vmlinuz, which
// bootc needs to boot it (spec §2.2). It loads only the directories on the way.
func requireKernel(repo *ostree.Repo, root *ostree.MutableTree) error {
	modules, err := root.Dir("usr/lib/modules")
	if err != nil {
		return err
	}
	if modules == nil {
		return fmt.Errorf("%w: it has no /usr/lib/modules directory: a bootable image has its kernel at /usr/lib/modules/KVER/vmlinuz (and carries the label containers.bootc=1)", ErrNotBootable)
	}
	kvers, err := modules.Dirs()
	if err != nil {
		return err
	}
	for _, kver := range kvers {
		c, ok, err := modules.File(kver + "/vmlinuz")
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		obj, err := repo.OpenContent(c)
		if err != nil {
			return err
		}
		regular := obj.Header.Mode&ostree.ModeTypeMask == ostree.ModeRegular
		obj.Close()
		if regular {
			return nil
		}
	}
	return fmt.Errorf("%w: no regular file /usr/lib/modules/KVER/vmlinuz: a bootable image has its kernel there (and carries the label containers.bootc=1)", ErrNotBootable)
}

// commit makes the image's commit in one transaction of the caller's (spec §3.4 "Merge"): the
// base commit's tree, loaded lazily, with the derived layers laid over it in order as a
// container runtime applies layers (MutableTree.Overlay: whiteouts processed, existing
// directories keep their metadata), written together with a commit that records the manifest
// and config, and the image ref (if ref is given) set to it. The merge works on the trees, not on
// a checkout: nothing is written to the filesystem, so no symlink in the image can redirect a
// write, and directories no layer touches keep their dirtree objects, unread.
func (p *puller) commit(ctx context.Context, ref *imgref.OstreeRef) (ostree.Checksum, error) {
	root := ostree.NewMutableTree()
	var baseCommit *ostree.Commit
	if p.src.layout.Ostree >= 0 {
		var err error
		if baseCommit, err = p.baseCommit(ctx); err != nil {
			return ostree.Checksum{}, err
		}
		root = ostree.NewMutableTreeFrom(p.repo, baseCommit.Root())
	}
	if err := p.mergeDerived(ctx, root); err != nil {
		return ostree.Checksum{}, err
	}
	if err := requireKernel(p.repo, root); err != nil {
		return ostree.Checksum{}, err
	}
	p.report(func(pp *PullProgress) { pp.Phase = "committing" })
	plan := p.plan
	ts := plan.Created
	opts := []ostree.CommitOption{ostree.WithNoParent(), ostree.WithoutBindings()}
	if baseCommit != nil {
		if ts.IsZero() {
			ts = time.Unix(int64(baseCommit.Timestamp), 0)
		}
		for _, m := range baseCommit.Metadata {
			opts = append(opts, ostree.WithMetadata(m.Key, m.Value))
		}
		opts = append(opts, ostree.WithSubject(baseCommit.Subject), ostree.WithBody(baseCommit.Body))
	}
	if ts.IsZero() {
		ts = time.Unix(0, 0)
	}
	opts = append(opts, ostree.WithTimestamp(ts),
		ostree.WithMetadataString(ostreecontainer.MetaManifestDigest, plan.Digest.String()),
		ostree.WithMetadataString(ostreecontainer.MetaManifest, string(p.src.rawManifest)),
		ostree.WithMetadataString(ostreecontainer.MetaImageConfig, string(p.src.rawConfig)),
		ostree.WithMetadataString(ostreecontainer.MetaImporterVersion, ostreecontainer.ImporterVersion))

	tx, err := p.repo.Begin(ctx)
	if err != nil {
		return ostree.Checksum{}, err
	}
	defer tx.Abort()
	tree, err := root.Write(ctx, tx)
	if err != nil {
		return ostree.Checksum{}, fmt.Errorf("writing the merged tree: %w", err)
	}
	c, err := tx.WriteCommit(ctx, tree, opts...)
	if err != nil {
		return ostree.Checksum{}, fmt.Errorf("committing the merged tree: %w", err)
	}
	if ref != nil {
		if err := tx.SetRef(ostreecontainer.ImageRef(*ref), &c); err != nil {
			return ostree.Checksum{}, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return ostree.Checksum{}, err
	}
	return c, nil
}

// mergeDerived lays the derived layers (each committed under its blob ref) over root in order,
// then drops the empty /usr/etc/hostname and /usr/etc/resolv.conf builders inject: they must
// not shadow the host's. With no derived layers root is left as it is.
func (p *puller) mergeDerived(ctx context.Context, root *ostree.MutableTree) error {
	derived := p.src.layout.Derived
	if len(derived) == 0 {
		return nil
	}
	for _, i := range derived {
		c, err := p.repo.ReadRef(ostreecontainer.LayerRef(p.plan.Layers[i].DiffID))
		if err != nil {
			return fmt.Errorf("derived layer %d: %w", i, err)
		}
		layer, err := ostree.NewMutableTreeFromCommit(p.repo, c)
		if err != nil {
			return fmt.Errorf("derived layer %d: %w", i, err)
		}
		if err := root.Overlay(ctx, layer); err != nil {
			return fmt.Errorf("applying derived layer %d: %w", i, err)
		}
	}
	for _, f := range []string{"usr/etc/hostname", "usr/etc/resolv.conf"} {
		c, ok, err := root.File(f)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		obj, err := p.repo.OpenContent(c)
		if err != nil {
			return err
		}
		empty := obj.Header.Mode&ostree.ModeTypeMask == ostree.ModeRegular && obj.Size == 0
		obj.Close()
		if empty {
			if _, err := root.Remove(f); err != nil {
				return err
			}
		}
	}
	return nil
}
