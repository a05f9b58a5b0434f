// Package compose runs the build pipelines of `bootc compose`: a root filesystem (a directory, or
// one unpacked from a container image) becomes a bootable OSTree commit (package bootable), the
// commit a chunked OCI image (package encapsulate), and the image is written to a
// containers-transports target (package transport) and, with a signer, signed there.
//
// It sits apart from package encapsulate so that the image builder does not pull in the registry
// clients. Like every library here it prints nothing and reads no environment: it reports what it
// decides and how far it has got as Events.
package compose

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sign"
	"github.com/bootc-go/bootc/pkg/transport"
)

// ErrRootfs means the root filesystem to commit is missing or not a directory.
var ErrRootfs = errors.New("not a root filesystem directory")

// Option configures Commit, Encapsulate and Image.
//
// Defaults: the bootable package's commit defaults with the time now; the encapsulate package's
// image defaults; the previous build is the image already at the target, if it is a chunked build;
// no signature; scratch data under /var/tmp; no events; no log.
type Option func(*config)

type config struct {
	commit     []bootable.Option
	image      []encapsulate.Option
	timestamp  *time.Time
	prior      *imgref.Ref
	noPrior    bool
	signer     *sign.Signer
	registries transport.Registries
	repo       string
	tempDir    string
	progress   func(Event)
	log        *slog.Logger
}

func newConfig(opts []Option) *config {
	cfg := &config{tempDir: "/var/tmp", progress: func(Event) {}, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(cfg)
	}
	return cfg
}

// WithCommit adds options of the bootable commit: branch, subject, body, version, metadata,
// bindings. Progress and logging are set with WithProgress and WithLogger.
func WithCommit(opts ...bootable.Option) Option {
	return func(c *config) { c.commit = append(c.commit, opts...) }
}

// WithImage adds options of the image build: labels, the number of layers, compression.
// WithPreviousBuild, WithProgress and the scratch directory are set here instead.
func WithImage(opts ...encapsulate.Option) Option {
	return func(c *config) { c.image = append(c.image, opts...) }
}

// WithTimestamp sets the commit time. Without it, Image uses the source's creation time if it
// has one, and otherwise (as Commit always does) the current time.
func WithTimestamp(t time.Time) Option { return func(c *config) { c.timestamp = &t } }

// WithPreviousBuild keeps the layer assignment of the image at ref, which must be a chunked build.
func WithPreviousBuild(ref imgref.Ref) Option { return func(c *config) { c.prior = &ref } }

// WithoutPreviousBuild plans the layers afresh, ignoring any image already at the target.
func WithoutPreviousBuild() Option { return func(c *config) { c.noPrior = true } }

// WithSigner signs the written image with s (registry targets only; see sign.Signer.Sign).
func WithSigner(s *sign.Signer) Option { return func(c *config) { c.signer = s } }

// WithRegistries sets the registry configuration for reading the previous build, pushing and
// signing.
func WithRegistries(r transport.Registries) Option { return func(c *config) { c.registries = r } }

// WithRepo makes Image commit into the repository at path, created in mode bare-user if missing,
// instead of a scratch repository: unchanged files are then not written again.
func WithRepo(path string) Option { return func(c *config) { c.repo = path } }

// WithTempDir sets the directory under which Image keeps its scratch data: the scratch repository,
// an unpacked source and the layer blobs (default /var/tmp: these can be large).
func WithTempDir(dir string) Option { return func(c *config) { c.tempDir = dir } }

// WithProgress reports events to fn, from any goroutine.
func WithProgress(fn func(Event)) Option { return func(c *config) { c.progress = fn } }

// WithLogger logs what the bootable commit finds and changes (kernel, version, moved files) and
// the image build's details to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Event is something the pipelines report while they run: one of RepoCreated, CommitProgress,
// PriorBuildKept, PriorBuildUnreadable, PriorBuildNotChunked, LayerProgress and Signed.
type Event interface{ event() }

// RepoCreated: the repository did not exist (or was an empty directory) and was created.
type RepoCreated struct {
	Path string
	Mode ostree.RepoMode
}

// CommitProgress: how far the commit of the root filesystem has got.
type CommitProgress struct{ ostree.CommitProgress }

// LayerProgress: how many layers of the image are written.
type LayerProgress struct{ encapsulate.Progress }

// PriorBuildKept: the image already at Ref is a chunked build; its layer assignment (Layers chunk
// layers) is kept.
type PriorBuildKept struct {
	Ref    imgref.Ref
	Layers int
}

// PriorBuildUnreadable: the target Ref exists but could not be read (Err); layers are planned
// afresh. A target that does not exist yet is not reported.
type PriorBuildUnreadable struct {
	Ref imgref.Ref
	Err error
}

// PriorBuildNotChunked: the image at Ref is not a chunked build of ours (Err says why); layers
// are planned afresh.
type PriorBuildNotChunked struct {
	Ref imgref.Ref
	Err error
}

// Signed: the image was signed at the target.
type Signed struct {
	Digest v1.Hash
	Took   time.Duration
}

func (RepoCreated) event()          {}
func (CommitProgress) event()       {}
func (LayerProgress) event()        {}
func (PriorBuildKept) event()       {}
func (PriorBuildUnreadable) event() {}
func (PriorBuildNotChunked) event() {}
func (Signed) event()               {}

// Result is what Encapsulate and Image produced.
type Result struct {
	// Commit is the encapsulated commit.
	Commit ostree.Checksum
	// Layers is the number of layers of the image, layer 0 included.
	Layers int
	// Digest is the manifest digest of the image as written to the target.
	Digest v1.Hash
}

// Commit commits the root filesystem directory rootfs as a bootable commit (see package bootable)
// to the repository at repoPath and returns its checksum. The rootfs is checked first (ErrRootfs);
// then a missing repository, or an empty directory, is created in mode bare-user (RepoCreated);
// an existing one is used in whatever mode it has.
func Commit(ctx context.Context, repoPath, rootfs string, opts ...Option) (ostree.Checksum, error) {
	cfg := newConfig(opts)
	if st, err := os.Stat(rootfs); err != nil {
		return ostree.Checksum{}, fmt.Errorf("%w: %w", ErrRootfs, err)
	} else if !st.IsDir() {
		return ostree.Checksum{}, fmt.Errorf("%w: %s is not a directory", ErrRootfs, rootfs)
	}
	repo, err := openOrInit(ctx, repoPath, cfg)
	if err != nil {
		return ostree.Checksum{}, err
	}
	return commit(ctx, repo, rootfs, cfg)
}

// openOrInit opens the repository at path, first creating it in mode bare-user if path does not
// exist or is an empty directory.
func openOrInit(ctx context.Context, path string, cfg *config) (*ostree.Repo, error) {
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		repo, err := ostree.Init(ctx, path, ostree.ModeBareUser)
		if err != nil {
			return nil, err
		}
		cfg.progress(RepoCreated{Path: path, Mode: ostree.ModeBareUser})
		return repo, nil
	}
	return ostree.Open(ctx, path)
}

func commit(ctx context.Context, repo *ostree.Repo, rootfs string, cfg *config) (ostree.Checksum, error) {
	opts := append(append([]bootable.Option(nil), cfg.commit...),
		bootable.WithLogger(cfg.log),
		bootable.WithProgress(func(p ostree.CommitProgress) { cfg.progress(CommitProgress{p}) }))
	if cfg.timestamp != nil {
		opts = append(opts, bootable.WithTimestamp(*cfg.timestamp))
	}
	return bootable.Commit(ctx, repo, rootfs, opts...)
}

// Encapsulate builds commit rev (a ref or checksum) of the repository at repoPath as a chunked
// image (see package encapsulate), keeping the layer assignment of the previous build, writes it
// to target and, with a signer, signs it there.
func Encapsulate(ctx context.Context, repoPath, rev string, target imgref.Ref, opts ...Option) (*Result, error) {
	cfg := newConfig(opts)
	prior, err := previousBuild(ctx, target, cfg)
	if err != nil {
		return nil, err
	}
	repo, err := ostree.Open(ctx, repoPath)
	if err != nil {
		return nil, err
	}
	return buildAndWrite(ctx, repo, rev, target, prior, "", cfg)
}

// Source is the root filesystem Image composes: a directory, or a function that unpacks one.
type Source struct {
	// Rootfs is a root filesystem directory, read in place and never modified.
	Rootfs string
	// From, used when Rootfs is "", is a container image whose layers, flattened (whiteouts
	// honoured, every file checked as it is stored in the repository), are the root filesystem;
	// its creation time is the commit time unless WithTimestamp gives one.
	From *imgref.Ref
}

// Image composes src into a bootable chunked image at target: the previous build is read first,
// then the root filesystem is committed (to WithRepo's repository, else a scratch one), built as
// an image, written and, with a signer, signed. The commit time is WithTimestamp's, else the
// source's creation time, else now. Scratch data is removed before Image returns.
func Image(ctx context.Context, src Source, target imgref.Ref, opts ...Option) (*Result, error) {
	cfg := newConfig(opts)
	if (src.Rootfs == "") == (src.From == nil) {
		return nil, errors.New("compose image: give a root filesystem directory or an image to flatten, not both")
	}
	prior, err := previousBuild(ctx, target, cfg)
	if err != nil {
		return nil, err
	}
	scratch, err := os.MkdirTemp(cfg.tempDir, "bootc-compose-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	repoPath := cfg.repo
	if repoPath == "" {
		repoPath = filepath.Join(scratch, "repo")
	}
	repo, err := ostree.Init(ctx, repoPath, ostree.ModeBareUser)
	if err != nil {
		return nil, err
	}
	rootfs := src.Rootfs
	if rootfs == "" {
		rootfs = filepath.Join(scratch, "rootfs")
		created, err := flatten(ctx, repo, *src.From, rootfs, cfg)
		if err != nil {
			return nil, err
		}
		if cfg.timestamp == nil && !created.IsZero() {
			cfg.timestamp = &created
		}
	}
	sum, err := commit(ctx, repo, rootfs, cfg)
	if err != nil {
		return nil, fmt.Errorf("compose: %w", err)
	}
	return buildAndWrite(ctx, repo, sum.String(), target, prior, scratch, cfg)
}

// flatten writes the root filesystem of the image at ref to dir, and returns the image's creation
// time.
func flatten(ctx context.Context, repo *ostree.Repo, ref imgref.Ref, dir string, cfg *config) (time.Time, error) {
	img, err := transport.Read(ctx, ref, transport.DefaultPlatform(), transport.WithRegistries(cfg.registries))
	if err != nil {
		return time.Time{}, err
	}
	defer img.Close()
	created, err := imagestore.FlattenTo(ctx, repo, img, dir)
	if err != nil {
		return time.Time{}, fmt.Errorf("flattening %s: %w", ref, err)
	}
	return created, nil
}

// previousBuild returns the chunk layout to keep: WithPreviousBuild's image's (which must be a
// chunked build), else the image already at target's if it is one, else none.
func previousBuild(ctx context.Context, target imgref.Ref, cfg *config) ([][]string, error) {
	if cfg.prior != nil {
		img, err := transport.Read(ctx, *cfg.prior, transport.DefaultPlatform(), transport.WithRegistries(cfg.registries))
		if err != nil {
			return nil, fmt.Errorf("reading the previous build: %w", err)
		}
		defer img.Close()
		return encapsulate.PriorLayers(img)
	}
	if cfg.noPrior {
		return nil, nil
	}
	img, err := transport.Read(ctx, target, transport.DefaultPlatform(), transport.WithRegistries(cfg.registries))
	if err != nil {
		if !errors.Is(err, transport.ErrNotFound) {
			cfg.progress(PriorBuildUnreadable{Ref: target, Err: err})
		}
		return nil, nil
	}
	defer img.Close()
	prior, err := encapsulate.PriorLayers(img)
	if err != nil {
		cfg.progress(PriorBuildNotChunked{Ref: target, Err: err})
		return nil, nil
	}
	cfg.progress(PriorBuildKept{Ref: target, Layers: len(prior)})
	return prior, nil
}

// buildAndWrite builds the image of rev, writes it to target and, with a signer, signs it there.
// Layer blobs go to tempDir ("" for the system's temporary directory).
func buildAndWrite(ctx context.Context, repo *ostree.Repo, rev string, target imgref.Ref, prior [][]string, tempDir string, cfg *config) (*Result, error) {
	opts := append(append([]encapsulate.Option(nil), cfg.image...),
		encapsulate.WithLogger(cfg.log),
		encapsulate.WithProgress(func(p encapsulate.Progress) { cfg.progress(LayerProgress{p}) }))
	if prior != nil {
		opts = append(opts, encapsulate.WithPriorBuild(prior))
	}
	if tempDir != "" {
		opts = append(opts, encapsulate.WithTempDir(tempDir))
	}
	img, err := encapsulate.Build(ctx, repo, rev, opts...)
	if err != nil {
		return nil, fmt.Errorf("encapsulate: %w", err)
	}
	defer img.Close()
	digest, err := publish(ctx, img, target, cfg)
	if err != nil {
		return nil, err
	}
	return &Result{Commit: img.Commit, Layers: len(img.Plan) + 1, Digest: digest}, nil
}

// publish writes (pushes) img to target and, with a signer, signs it there.
func publish(ctx context.Context, img v1.Image, target imgref.Ref, cfg *config) (v1.Hash, error) {
	digest, err := transport.Write(ctx, img, target, transport.WithRegistries(cfg.registries))
	if err != nil {
		return v1.Hash{}, err
	}
	if cfg.signer != nil {
		start := time.Now()
		if err := cfg.signer.Sign(ctx, target, digest, cfg.registries); err != nil {
			return v1.Hash{}, fmt.Errorf("pushed %s as %s but %w", target, digest, err)
		}
		cfg.progress(Signed{Digest: digest, Took: time.Since(start)})
	}
	return digest, nil
}
