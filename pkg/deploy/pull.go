package deploy

import (
	"context"
	"errors"
	"log/slog"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// CONTRACT STUB (issue 4): the helper implementing the pull path replaces the bodies; the
// exported names are shared with cmd/bootc and pkg/sysroot users and must not change without
// telling them.

// Pulled images are recorded under ImageRefPrefix+EscapeRef(ref.String()) (ref is the canonical
// imgref.OstreeRef), naming the image's merged commit.

// Errors callers test for.
var (
	// ErrNotBootable: the image has no kernel (usr/lib/modules/KVER/vmlinuz) to boot.
	ErrNotBootable = errors.New("image is not bootable")
	// ErrDigestMismatch: a blob's bytes do not hash to the digest the manifest (or config, for
	// diff IDs) names.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrImageNotPulled: the repository holds no image for the reference.
	ErrImageNotPulled = errors.New("image not in the repository")
)

// PullOptions configures Inspect and Pull.
type PullOptions struct {
	// Platform selects from a multi-platform index (default: linux and this machine's arch).
	Platform *v1.Platform
	// Jobs is how many layers are fetched at once (default 3).
	Jobs int
	// Progress is called as layers are fetched (from several goroutines; serialized by Pull).
	Progress func(PullProgress)
	// Log receives debug logs.
	Log *slog.Logger
}

// PullProgress is a progress report.
type PullProgress struct {
	// Layers to fetch and done; Bytes (compressed) to fetch and done.
	Layers, LayersDone int
	Bytes, BytesDone   int64
	// Phase is "fetching", "merging" or "committing".
	Phase string
}

// LayerKind classifies a layer (spec §3.4).
type LayerKind string

// The layer kinds.
const (
	LayerOstree  LayerKind = "ostree"
	LayerChunk   LayerKind = "chunk"
	LayerDerived LayerKind = "derived"
)

// LayerInfo describes one layer of an image.
type LayerInfo struct {
	Digest, DiffID v1.Hash
	// Size is the compressed size from the manifest.
	Size int64
	Kind LayerKind
	// Cached is true when the repository already holds the layer (its blob ref exists).
	Cached bool
}

// ImageState describes an image as recorded in the repository (from its commit's metadata).
type ImageState struct {
	// Commit is the image's merged commit (what is deployed).
	Commit ostree.Checksum
	// Digest is the manifest digest (ostree.manifest-digest).
	Digest   v1.Hash
	Manifest *v1.Manifest
	Config   *v1.ConfigFile
	// Version is the config label org.opencontainers.image.version, else "version", else "".
	Version string
	// Created is the label org.opencontainers.image.created, else the config's created time.
	Created time.Time
}

// Plan is what pulling an image would do, from its manifest and config alone.
type Plan struct {
	Ref      imgref.OstreeRef
	Digest   v1.Hash
	Manifest *v1.Manifest
	Config   *v1.ConfigFile
	Layers   []LayerInfo
	Version  string
	Created  time.Time
	// Previous is the image the repository holds for Ref, or nil.
	Previous *ImageState
}

// Changed reports whether the image differs from Previous (or there is none).
func (p *Plan) Changed() bool { return p.Previous == nil || p.Previous.Digest != p.Digest }

// ToFetch returns how many layers, and how many compressed bytes, a pull would download.
func (p *Plan) ToFetch() (layers int, bytes int64) { return 0, 0 }

// PullResult says what Pull did.
type PullResult struct {
	Plan  *Plan
	Image *ImageState
	// LayersFetched and LayersReused count layers downloaded and those the repository had;
	// BytesFetched is the compressed bytes downloaded.
	LayersFetched, LayersReused int
	BytesFetched                int64
}

// Inspect reads the manifest (for the platform) and config of ref's image, and says which
// layers the repository lacks. It downloads no layer.
func Inspect(ctx context.Context, repo *ostree.Repo, ref imgref.OstreeRef, o PullOptions) (*Plan, error) {
	return nil, errors.New("Inspect: not implemented")
}

// Pull imports ref's image into repo, fetching only the layers the repository lacks (Jobs at
// a time), verifying every blob against its digest and every layer against its diff ID while
// streaming. Object layers are imported as objects; derived layers are filtered (spec §3.4),
// committed and recorded under their blob refs too, then merged over the base in order;
// images without ostree layers are imported as all derived. The merged commit records
// ostree.manifest-digest, ostree.manifest and ostree.container.image-config, and is refused
// (ErrNotBootable) without a kernel. Only then is the image ref ImageRefPrefix+EscapeRef(ref)
// set. A failure or kill at any point leaves the repository consistent; a rerun reuses the
// layers that were complete.
func Pull(ctx context.Context, repo *ostree.Repo, ref imgref.OstreeRef, o PullOptions) (*PullResult, error) {
	return nil, errors.New("Pull: not implemented")
}

// QueryImage returns the image the repository holds for ref (ErrImageNotPulled if none).
func QueryImage(repo *ostree.Repo, ref imgref.OstreeRef) (*ImageState, error) {
	return nil, errors.New("QueryImage: not implemented")
}

// ImageStateOf reads the image state recorded in a merged commit's metadata (for `status` of a
// deployment); it fails if the commit carries no ostree.manifest-digest.
func ImageStateOf(repo *ostree.Repo, commit ostree.Checksum) (*ImageState, error) {
	return nil, errors.New("ImageStateOf: not implemented")
}

// GCStats says what GC removed.
type GCStats struct {
	Images, Layers int
}

// GC deletes the image refs whose commit is not in keepCommits and whose reference is not in
// keepImages, then the layer refs no remaining image (nor any commit in keepCommits) lists.
// It deletes refs only; the caller prunes objects afterwards (sysroot.Cleanup).
func GC(ctx context.Context, repo *ostree.Repo, keepCommits []ostree.Checksum, keepImages []imgref.OstreeRef) (*GCStats, error) {
	return nil, errors.New("GC: not implemented")
}
