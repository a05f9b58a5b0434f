package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// ImportResult says what Import did.
type ImportResult struct {
	// Commit is the commit to deploy: the image's own ostree commit, or the merge of it with
	// the derived layers.
	Commit ostree.Checksum
	// LayersFetched and LayersReused count the layers read from the image and those whose
	// content the repository already had.
	LayersFetched, LayersReused int
	// BytesFetched is the compressed size of the layers read.
	BytesFetched int64
}

// ImportOption configures Import.
type ImportOption func(*importConfig)

type importConfig struct {
	log     *slog.Logger
	tempDir string
}

// WithImportLogger sends debug logs to l.
func WithImportLogger(l *slog.Logger) ImportOption { return func(c *importConfig) { c.log = l } }

// WithImportTempDir sets where derived layers are merged (default: the repository's tmp/).
func WithImportTempDir(dir string) ImportOption { return func(c *importConfig) { c.tempDir = dir } }

// Import brings an ostree-container image into repo (spec §3.4). Layer 0 and the chunk layers
// are imported as objects, each recorded under ostree/container/blob/<escaped diff ID> so that
// a later pull skips it; layers after the chunks (from podman build) are filtered as ostree-ext
// does and merged over the image's commit into a new commit that records the manifest and
// config. Every object is verified against its name; the layers' digests are the transport's to
// verify (ggcr and containers/image check them while reading).
func Import(ctx context.Context, repo *ostree.Repo, img v1.Image, opts ...ImportOption) (*ImportResult, error) {
	cfg := &importConfig{log: slog.New(slog.DiscardHandler), tempDir: filepath.Join(repo.Path(), "tmp")}
	for _, o := range opts {
		o(cfg)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the image config: %w", err)
	}
	lay, err := ParseLayout(cf)
	if err != nil {
		return nil, err
	}
	if lay.Ostree < 0 {
		return nil, fmt.Errorf("the image has no %s label: importing plain container images is not supported yet", LabelFinalDiffID)
	}
	want, ok := cf.Config.Labels["ostree.commit"]
	if !ok {
		return nil, fmt.Errorf("the image has no ostree.commit label")
	}
	base, err := ostree.ParseChecksum(want)
	if err != nil {
		return nil, fmt.Errorf("ostree.commit label: %w", err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	if len(layers) != len(cf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("the image has %d layers but its config lists %d", len(layers), len(cf.RootFS.DiffIDs))
	}
	res := &ImportResult{}
	objectLayers := append([]int{lay.Ostree}, lay.Chunks...)
	for _, i := range objectLayers {
		if err := importObjectLayer(ctx, repo, layers[i], cf.RootFS.DiffIDs[i], res); err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
	}
	if ok, err := repo.HasObject(ostree.ObjectName{Checksum: base, Type: ostree.ObjectCommit}); err != nil || !ok {
		return nil, fmt.Errorf("the image's layers do not hold its commit %s (ostree.commit): %w", base, errors.Join(err, ErrBadLayer))
	}
	res.Commit = base
	if len(lay.Derived) == 0 {
		return res, nil
	}
	merged, err := mergeDerived(ctx, repo, img, cf, base, layers, lay.Derived, cfg, res)
	if err != nil {
		return nil, err
	}
	res.Commit = merged
	return res, nil
}

func importObjectLayer(ctx context.Context, repo *ostree.Repo, l v1.Layer, diffID v1.Hash, res *ImportResult) error {
	ref := LayerRefPrefix + EscapeRef(diffID.String())
	if _, err := repo.ReadRef(ref); err == nil {
		res.LayersReused++
		return nil
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	if size, err := l.Size(); err == nil {
		res.BytesFetched += size
	}
	tx, err := repo.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Abort()
	st, err := ImportObjects(tx, rc)
	if err != nil {
		return err
	}
	// Drain what the tar reader left (padding), so the transport can verify the digest.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	res.LayersFetched++
	// Record the layer: a commit whose root holds its content objects, named by checksum (as
	// ostree-ext does), so that the objects stay reachable and the next pull skips the layer.
	objects := st.Contents
	_, err = repo.CommitEntries(ctx, emptySource{}, ostree.WithBranch(ref), ostree.WithTimestamp(time.Unix(0, 0)), ostree.WithNoParent(), ostree.WithoutBindings(),
		ostree.WithTreeEdit(func(_ context.Context, _ *ostree.Transaction, root *ostree.MutableTree) error {
			for _, c := range objects {
				if err := root.SetFile(c.String(), c); err != nil {
					return err
				}
			}
			return nil
		}))
	return err
}

type emptySource struct{}

func (emptySource) Next(context.Context) (*ostree.Entry, error) { return nil, io.EOF }

// derivedFilter maps a derived layer's paths the way ostree-ext's filter_tar does: /etc goes
// to /usr/etc; /usr, /var and the root are kept; /run, /tmp, /proc, /sys and /dev keep their
// directory but not its contents; other top-level entries are dropped (and counted).
func derivedFilter(dropped map[string]int) func(p string, typ byte) (string, bool) {
	return func(p string, typ byte) (string, bool) {
		if p == "" {
			return p, true
		}
		top, rest, _ := strings.Cut(p, "/")
		switch top {
		case "etc":
			return "usr/" + p, true
		case "usr", "var":
			return p, true
		case "run", "tmp", "proc", "sys", "dev":
			return p, rest == ""
		case "sysroot":
			return p, false
		}
		dropped[top]++
		return p, false
	}
}

func mergeDerived(ctx context.Context, repo *ostree.Repo, img v1.Image, cf *v1.ConfigFile, base ostree.Checksum, layers []v1.Layer, derived []int, cfg *importConfig, res *ImportResult) (ostree.Checksum, error) {
	work, err := os.MkdirTemp(cfg.tempDir, "merge-")
	if err != nil {
		return ostree.Checksum{}, err
	}
	defer os.RemoveAll(work)
	root := filepath.Join(work, "root")
	if err := repo.Checkout(ctx, base.String(), root); err != nil {
		return ostree.Checksum{}, fmt.Errorf("checking out the base commit: %w", err)
	}
	dropped := map[string]int{}
	for _, i := range derived {
		rc, err := layers[i].Uncompressed()
		if err != nil {
			return ostree.Checksum{}, fmt.Errorf("layer %d: %w", i, err)
		}
		if size, err := layers[i].Size(); err == nil {
			res.BytesFetched += size
		}
		src := ostree.NewTarSource(rc)
		src.Filter = derivedFilter(dropped)
		c, err := repo.CommitEntries(ctx, src, ostree.WithTimestamp(time.Unix(0, 0)), ostree.WithNoParent(), ostree.WithoutBindings())
		rc.Close()
		if err != nil {
			return ostree.Checksum{}, fmt.Errorf("derived layer %d: %w", i, errors.Join(ErrBadLayer, err))
		}
		res.LayersFetched++
		if err := repo.Checkout(ctx, c.String(), root, ostree.WithUnion(), ostree.WithWhiteouts()); err != nil {
			return ostree.Checksum{}, fmt.Errorf("applying derived layer %d: %w", i, err)
		}
	}
	// Builders inject these as empty files; they must not shadow the host's.
	for _, p := range []string{"usr/etc/hostname", "usr/etc/resolv.conf"} {
		if st, err := os.Lstat(filepath.Join(root, p)); err == nil && st.Mode().IsRegular() && st.Size() == 0 {
			os.Remove(filepath.Join(root, p))
		}
	}
	baseCommit, err := repo.ReadCommit(base)
	if err != nil {
		return ostree.Checksum{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return ostree.Checksum{}, err
	}
	manifest, err := img.RawManifest()
	if err != nil {
		return ostree.Checksum{}, err
	}
	config, err := json.Marshal(cf)
	if err != nil {
		return ostree.Checksum{}, err
	}
	opts := []ostree.CommitOption{ostree.WithNoParent(), ostree.WithoutBindings(), ostree.WithTimestamp(cf.Created.Time)}
	for _, m := range baseCommit.Metadata {
		opts = append(opts, ostree.WithMetadata(m.Key, m.Value))
	}
	opts = append(opts,
		ostree.WithMetadataString("ostree.manifest-digest", digest.String()),
		ostree.WithMetadataString("ostree.manifest", string(manifest)),
		ostree.WithMetadataString("ostree.container.image-config", string(config)),
		ostree.WithMetadataString("ostree.importer.version", "bootc-go 1"))
	merged, err := repo.CommitDir(ctx, root, opts...)
	if err != nil {
		return ostree.Checksum{}, fmt.Errorf("committing the merged tree: %w", err)
	}
	if len(dropped) > 0 {
		cfg.log.Info("dropped top-level entries of derived layers", "counts", dropped)
	}
	return merged, nil
}
