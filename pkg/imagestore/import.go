package imagestore

import (
	"context"
	"log/slog"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// ImportResult says what Import did.
type ImportResult struct {
	// Commit is the commit to deploy: the image's tree (its ostree commit merged with the
	// derived layers, if any) in a commit of its own that records the manifest and config.
	Commit ostree.Checksum
	// LayersFetched and LayersReused count the layers read from the image and those the
	// repository already had (by their blob refs).
	LayersFetched, LayersReused int
	// BytesFetched is the compressed bytes read.
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

// WithImportTempDir is kept for compatibility: derived layers are now merged on the trees
// themselves, with no temporary checkout, so the directory is not used.
func WithImportTempDir(dir string) ImportOption { return func(c *importConfig) { c.tempDir = dir } }

// Import brings an ostree-container image into repo (spec §3.4), as Pull does but from an
// image already opened and without recording it under an image ref: the object layers are
// imported as objects, each recorded under ostree/container/blob/<escaped diff ID> so that a
// later pull skips it; derived layers are filtered, committed, recorded the same way and merged
// over the image's commit into a new commit that records the manifest and config. Every blob is
// verified against its digest and diff ID while it streams, every object against its name.
func Import(ctx context.Context, repo *ostree.Repo, img v1.Image, opts ...ImportOption) (*ImportResult, error) {
	cfg := &importConfig{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(cfg)
	}
	res, err := pullImage(ctx, repo, img, nil, PullOptions{Log: cfg.log})
	if err != nil {
		return nil, err
	}
	return &ImportResult{Commit: res.Image.Commit, LayersFetched: res.LayersFetched, LayersReused: res.LayersReused, BytesFetched: res.BytesFetched}, nil
}

// derivedFilter maps a derived layer's paths the way ostree-ext's filter_tar does: /etc goes
// to /usr/etc; /usr, /var and the root are kept; /run, /tmp, /proc, /sys and /dev keep their
// directory but not its contents; /sysroot is dropped over an ostree base (which has its own)
// and keeps only its directory without one. Other top-level entries (/opt, /srv, /bin symlinks)
// are dropped, and counted, over an ostree base, and kept when there is none (noBase: the image
// is all derived layers, spec §3.4).
func derivedFilter(dropped map[string]int, noBase bool) func(p string, typ byte) (string, bool) {
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
			if noBase && rest != "" {
				dropped[top]++
			}
			return p, noBase && rest == ""
		}
		if noBase {
			return p, true
		}
		dropped[top]++
		return p, false
	}
}
