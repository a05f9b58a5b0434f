package imagestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"github.com/bootc-go/bootc/pkg/transport"
)

// Pulled images are recorded under ostreecontainer.ImageRef(ref) (ref is the canonical
// imgref.OstreeRef), naming the image's merged commit.

// Errors callers test for.
var (
	// ErrNotBootable: the image has no kernel (usr/lib/modules/KVER/vmlinuz) to boot.
	ErrNotBootable = errors.New("image is not bootable")
	// ErrDigestMismatch: a blob's bytes do not hash to the digest the manifest (or config, for
	// diff IDs) names. It is transport's: the transport's own checks report the same error.
	ErrDigestMismatch = transport.ErrDigestMismatch
	// ErrNotVerified: the reference asks for a signature check (ostree-image-signed:,
	// ostree-remote-*:) but PullOptions.ExpectDigest names no verified manifest; the image is
	// refused rather than taken unchecked.
	ErrNotVerified = errors.New("the image's signatures were not verified")
	// ErrImageChanged: the manifest read is not the one PullOptions.ExpectDigest names (the
	// image verified). Carried by an *ImageChangedError.
	ErrImageChanged = errors.New("the image is not the one that was verified")
	// ErrImageNotPulled: the repository holds no image for the reference.
	ErrImageNotPulled = errors.New("image not in the repository")
)

// PullOptions configures Inspect and Pull.
type PullOptions struct {
	// Platform selects from a multi-platform index (default: linux and this machine's arch).
	Platform *v1.Platform
	// Jobs is how many layers are fetched at once (default 3).
	Jobs int
	// Warn is told what the user should know but does not stop the pull: a layer fetched whole
	// because its partial fetch failed (nil: only the log hears of it).
	Warn func(what string, err error)
	// WholeLayers fetches changed zstd:chunked layers whole rather than only the files the
	// repository lacks (as the environment variable BOOTC_PARTIAL_PULL=0 does).
	WholeLayers bool
	// Progress is called as layers are fetched (from several goroutines; serialized by Pull).
	Progress func(PullProgress)
	// Log receives debug logs.
	Log *slog.Logger
	// ExpectDigest pins the manifest: the one read (for the platform, from a multi-platform
	// index) must have this digest, or Inspect and Pull fail with an *ImageChangedError before
	// any layer is fetched. Registry images are then fetched by digest (NAME@DIGEST), so a
	// tag that moves cannot substitute another image. It is what verify.Verify returned
	// (Verified.Digest), and it is required for references that ask for a signature check
	// (ostree-image-signed:, ostree-remote-*:), which are otherwise refused (ErrNotVerified):
	// the signature check itself is the caller's (package verify), not Pull's.
	ExpectDigest *v1.Hash
	// Registries is the registry configuration (registries.conf mirrors, blocked and insecure
	// registries, auth, certificates; see package transport) and where large temporary data
	// (an unpacked oci-archive) goes. Verify with the same, so that the image verified is the
	// one read.
	Registries transport.Registries
}

// ImageChangedError says that the manifest read is not the one that was verified.
type ImageChangedError struct {
	Image            string
	Expected, Actual v1.Hash
}

func (e *ImageChangedError) Error() string {
	return fmt.Sprintf("%s: the manifest read is %s, not %s which was verified: the image changed since it was verified (or its store is damaged); verify and pull again", e.Image, e.Actual, e.Expected)
}

// Is makes the error match ErrImageChanged.
func (e *ImageChangedError) Is(target error) bool { return target == ErrImageChanged }

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
	// RawManifest and RawConfig are the manifest and config as the commit records them
	// (ostree.manifest, ostree.container.image-config); nil if it records none.
	RawManifest, RawConfig []byte
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
func (p *Plan) ToFetch() (layers int, bytes int64) {
	if !p.Changed() {
		return 0, 0
	}
	for _, l := range p.Layers {
		if !l.Cached {
			layers++
			bytes += l.Size
		}
	}
	return layers, bytes
}

// PullResult says what Pull did.
type PullResult struct {
	Plan  *Plan
	Image *ImageState
	// LayersFetched and LayersReused count layers downloaded and those the repository had;
	// BytesFetched is the compressed bytes downloaded.
	LayersFetched, LayersReused int
	// LayersPartial counts the fetched layers of which only the missing files were fetched
	// (zstd:chunked).
	LayersPartial int
	BytesFetched  int64
}

func (o *PullOptions) platform() v1.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	return transport.DefaultPlatform()
}

func (o *PullOptions) logger() *slog.Logger {
	if o.Log != nil {
		return o.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Inspect reads the manifest (for the platform) and config of ref's image, and says which
// layers the repository lacks. It downloads no layer.
func Inspect(ctx context.Context, repo *ostree.Repo, ref imgref.OstreeRef, o PullOptions) (*Plan, error) {
	img, err := readImage(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	plan, _, err := inspect(ctx, repo, img.Image, &ref, o.ExpectDigest, o.logger())
	return plan, err
}

// readImage opens ref's image for Inspect and Pull with o.Registries: by digest
// (NAME@DIGEST) when the registry image is pinned by o.ExpectDigest, so that it is read through
// the same registries.conf (mirrors included) as the verification that returned the digest.
func readImage(ctx context.Context, ref imgref.OstreeRef, o PullOptions) (*transport.Image, error) {
	if err := checkSigVerify(ref, o); err != nil {
		return nil, err
	}
	src := ref.Image
	if o.ExpectDigest != nil && src.Transport == imgref.Registry {
		var err error
		if src, err = transport.PinDigest(src, *o.ExpectDigest); err != nil {
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
	}
	return transport.Read(ctx, src, o.platform(), transport.WithRegistries(o.Registries))
}

// checkSigVerify refuses references that ask for a signature check unless the caller
// verified the image and pinned it: reading such an image without the check would trust what
// the owner said not to trust.
func checkSigVerify(ref imgref.OstreeRef, o PullOptions) error {
	if ref.SigVerify == imgref.Unverified || o.ExpectDigest != nil {
		return nil
	}
	return fmt.Errorf("%w: %s asks for a signature check: verify it first (package verify) and pull the digest verified; to accept the image without checking its signature, use %s",
		ErrNotVerified, ref, imgref.OstreeRef{SigVerify: imgref.Unverified, Image: ref.Image})
}

// Pull imports ref's image into repo, fetching only the layers the repository lacks (Jobs at
// a time), verifying every blob against its digest and every layer against its diff ID while
// streaming. Object layers are imported as objects; derived layers are filtered (spec §3.4),
// committed and recorded under their blob refs too, then merged over the base in order;
// images without ostree layers are imported as all derived. The merged commit records
// ostree.manifest-digest, ostree.manifest and ostree.container.image-config, and is refused
// (ErrNotBootable) without a kernel. Only then is the image ref ostreecontainer.ImageRef(ref)
// set. A failure or kill at any point leaves the repository consistent; a rerun reuses the
// layers that were complete.
//
// Derived layers are untrusted: names with ".." are refused, absolute names are made relative
// (as ostree-ext and container runtimes read them), device nodes and FIFOs outside /dev are
// refused (OSTree cannot store them), a hardlink must name an earlier file of its layer, and
// the merge works on the trees, never on a checkout, so no symlink in an image can redirect a
// write: an entry under a path that is a symlink replaces the symlink.
//
// Order of operations: each object layer is written in its own transaction and recorded under
// its blob ref once complete (the ostree layer's commit object is held back until every object
// it reaches is in, and then written with that layer's ref); each derived layer is committed
// with its blob ref in one transaction; then the merged tree's dirtrees, the merged commit,
// and last the image ref.
func Pull(ctx context.Context, repo *ostree.Repo, ref imgref.OstreeRef, o PullOptions) (*PullResult, error) {
	img, err := readImage(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	res, err := pullImage(ctx, repo, img.Image, &ref, o)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return res, nil
}

// source is an image's manifest and config as read, and verified against each other, by
// inspect.
type source struct {
	img                    v1.Image
	rawManifest, rawConfig []byte
	layout                 *ostreecontainer.Layout
	base                   ostree.Checksum // the ostree.commit label, for images with an ostree layer
}

func inspect(ctx context.Context, repo *ostree.Repo, img v1.Image, ref *imgref.OstreeRef, expect *v1.Hash, log *slog.Logger) (*Plan, *source, error) {
	src := &source{img: img}
	var err error
	if src.rawManifest, err = img.RawManifest(); err != nil {
		return nil, nil, fmt.Errorf("reading the manifest: %w", err)
	}
	digest, _, err := v1.SHA256(bytes.NewReader(src.rawManifest))
	if err != nil {
		return nil, nil, err
	}
	if expect != nil && digest != *expect {
		e := &ImageChangedError{Expected: *expect, Actual: digest}
		if ref != nil {
			e.Image = ref.String()
		}
		return nil, nil, e
	}
	untrustedManifest, err := v1.ParseManifest(bytes.NewReader(src.rawManifest))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the manifest %s: %w", digest, err)
	}
	if mt := untrustedManifest.MediaType; mt != "" && !mt.IsImage() {
		return nil, nil, fmt.Errorf("manifest %s has media type %s, not an image manifest", digest, mt)
	}
	if src.rawConfig, err = img.RawConfigFile(); err != nil {
		return nil, nil, fmt.Errorf("reading the image config: %w", err)
	}
	cd, _, err := v1.SHA256(bytes.NewReader(src.rawConfig))
	if err != nil {
		return nil, nil, err
	}
	if cd != untrustedManifest.Config.Digest {
		return nil, nil, fmt.Errorf("%w: the image config should be %s (manifest) but is %s: the image was tampered with or its store is damaged", ErrDigestMismatch, untrustedManifest.Config.Digest, cd)
	}
	cf, err := v1.ParseConfigFile(bytes.NewReader(src.rawConfig))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing the image config %s: %w", cd, err)
	}
	m := untrustedManifest
	if len(m.Layers) != len(cf.RootFS.DiffIDs) {
		return nil, nil, fmt.Errorf("the manifest lists %d layers but the config %d diff IDs: the image is damaged", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	if src.layout, err = ostreecontainer.ParseLayout(cf); err != nil {
		return nil, nil, err
	}
	if src.layout.Ostree >= 0 {
		label, ok := cf.Config.Labels[ostreecontainer.LabelCommit]
		if !ok {
			return nil, nil, fmt.Errorf("the image has the %s label but no ostree.commit label: it was not built by an ostree-container encapsulator", ostreecontainer.LabelFinalDiffID)
		}
		if src.base, err = ostree.ParseChecksum(label); err != nil {
			return nil, nil, fmt.Errorf("the image's ostree.commit label: %w", err)
		}
	}
	plan := &Plan{Digest: digest, Manifest: m, Config: cf}
	if ref != nil {
		plan.Ref = *ref
	}
	plan.Version, plan.Created = versionCreated(cf)
	kinds := make([]LayerKind, len(m.Layers))
	for i := range kinds {
		kinds[i] = LayerDerived
	}
	if src.layout.Ostree >= 0 {
		kinds[src.layout.Ostree] = LayerOstree
		for _, i := range src.layout.Chunks {
			kinds[i] = LayerChunk
		}
	}
	for i, d := range m.Layers {
		li := LayerInfo{Digest: d.Digest, DiffID: cf.RootFS.DiffIDs[i], Size: d.Size, Kind: kinds[i]}
		c, err := repo.ReadRef(ostreecontainer.LayerRef(li.DiffID))
		switch {
		case err == nil && li.Kind == LayerOstree:
			// The ostree layer's ref names the image's commit; anything else is a stale
			// record, and the layer is fetched again.
			li.Cached = c == src.base
		case err == nil:
			li.Cached = true
		case !errors.Is(err, ostree.ErrRefNotFound):
			return nil, nil, err
		}
		plan.Layers = append(plan.Layers, li)
	}
	if ref != nil {
		prev, err := QueryImage(repo, *ref)
		switch {
		case err == nil:
			plan.Previous = prev
		case errors.Is(err, ErrImageNotPulled):
		default:
			log.Warn("the image recorded for the reference is unreadable; pulling it anew", "ref", ref.String(), "err", err)
		}
	}
	return plan, src, nil
}

// versionCreated reads the version and creation time from a config (spec §5.4).
func versionCreated(cf *v1.ConfigFile) (string, time.Time) {
	labels := cf.Config.Labels
	version, ok := labels[ostreecontainer.LabelVersion]
	if !ok {
		version = labels["version"]
	}
	created := cf.Created.Time
	if s, ok := labels[ostreecontainer.LabelCreated]; ok {
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			created = t
		}
	}
	return version, created
}

// puller does one pull: the fetch jobs share it.
type puller struct {
	repo *ostree.Repo
	src  *source
	plan *Plan
	o    PullOptions
	log  *slog.Logger

	mu      sync.Mutex // guards what follows
	held    map[ostree.Checksum][]byte
	dropped map[string]int
	// holdsImage says whether the repository held an image when the pull began (partial.go).
	holdsImage *bool
	res        *PullResult
	progress   PullProgress
	lastProg   time.Time
}

func pullImage(ctx context.Context, repo *ostree.Repo, img v1.Image, ref *imgref.OstreeRef, o PullOptions) (*PullResult, error) {
	log := o.logger()
	plan, src, err := inspect(ctx, repo, img, ref, o.ExpectDigest, log)
	if err != nil {
		return nil, err
	}
	res := &PullResult{Plan: plan}
	if prev := plan.Previous; prev != nil && !plan.Changed() {
		if ok, err := repo.HasObject(ostree.ObjectName{Checksum: prev.Commit, Type: ostree.ObjectCommit}); err == nil && ok {
			res.Image, res.LayersReused = prev, len(plan.Layers)
			log.Debug("image unchanged", "digest", plan.Digest, "commit", prev.Commit)
			return res, nil
		}
	}
	p := &puller{repo: repo, src: src, plan: plan, o: o, log: log, res: res, held: map[ostree.Checksum][]byte{}, dropped: map[string]int{}}
	if err := p.fetch(ctx); err != nil {
		return nil, err
	}
	p.report(func(pp *PullProgress) { pp.Phase = "merging" })
	state := &ImageState{Digest: plan.Digest, Manifest: plan.Manifest, Config: plan.Config, Version: plan.Version, Created: plan.Created}
	if state.Commit, err = p.commit(ctx, ref); err != nil {
		return nil, err
	}
	if len(p.dropped) > 0 {
		log.Info("dropped top-level entries of derived layers (not kept by an ostree host)", "counts", p.dropped)
	}
	res.Image = state
	return res, nil
}

// report updates the progress and passes it on: always for a phase or layer change, at most
// every 100ms for bytes.
func (p *puller) report(update func(*PullProgress)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	before := p.progress
	update(&p.progress)
	if p.o.Progress == nil {
		return
	}
	now := time.Now()
	if before.Phase == p.progress.Phase && before.LayersDone == p.progress.LayersDone && now.Sub(p.lastProg) < 100*time.Millisecond {
		return
	}
	p.lastProg = now
	p.o.Progress(p.progress)
}

// fetch downloads the layers the repository lacks, Jobs at a time.
func (p *puller) fetch(ctx context.Context) error {
	var todo []int
	for i, l := range p.plan.Layers {
		if l.Cached {
			p.res.LayersReused++
			continue
		}
		todo = append(todo, i)
	}
	layers, size := 0, int64(0)
	for _, i := range todo {
		layers++
		size += p.plan.Layers[i].Size
	}
	p.report(func(pp *PullProgress) { *pp = PullProgress{Layers: layers, Bytes: size, Phase: "fetching"} })
	jobs := p.o.Jobs
	if jobs <= 0 {
		jobs = 3
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, i := range todo {
		g.Go(func() error {
			var err error
			if p.plan.Layers[i].Kind == LayerDerived {
				err = p.fetchDerived(gctx, i)
			} else {
				err = p.fetchObjects(gctx, i)
			}
			if err != nil {
				return err
			}
			p.report(func(pp *PullProgress) { pp.LayersDone++ })
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	p.res.LayersFetched = len(todo)
	return nil
}

func (p *puller) open(ctx context.Context, i int) (*layerBlob, error) {
	l := p.plan.Layers[i]
	desc := p.plan.Manifest.Layers[i]
	p.log.Debug("fetching layer", "index", i, "digest", l.Digest, "size", l.Size, "kind", l.Kind)
	return openLayerBlob(ctx, p.src.img, i, desc, l.DiffID, func(n int) {
		p.report(func(pp *PullProgress) { pp.BytesDone += int64(n) })
		p.mu.Lock()
		p.res.BytesFetched += int64(n)
		p.mu.Unlock()
	})
}

// layerStream is a layer's tar stream, whole (layerBlob) or rebuilt from parts (partialLayer).
type layerStream interface {
	Tar() io.Reader
	// finish gives the verdict on the stream, given the consumer's error.
	finish(consumeErr error) error
	// blobError is the verdict when it was about the layer's bytes, not the consumer's error.
	blobError() error
}

// fetchObjects imports an object layer: in part when it can (zstd:chunked; see partial.go),
// else whole, or whole again when the partial fetch failed for any but a local reason.
func (p *puller) fetchObjects(ctx context.Context, i int) error {
	if rr, ok := p.usePartial(i); ok {
		pl, err := p.openPartial(ctx, rr, i)
		if err == nil && pl != nil {
			// The progress counts what the partial fetch downloads, not the whole layer.
			saved := p.plan.Layers[i].Size - pl.plan.Bytes - pl.plan.TOCBytes
			p.report(func(pp *PullProgress) { pp.Bytes -= saved })
			err = p.importObjectLayer(ctx, i, pl)
			if err == nil {
				p.mu.Lock()
				p.res.LayersPartial++
				p.mu.Unlock()
				return nil
			}
			p.report(func(pp *PullProgress) { pp.Bytes += saved })
		}
		if err != nil {
			if localFailure(ctx, err) {
				return err
			}
			p.log.Warn("fetching the whole layer: its partial fetch failed", "index", i, "digest", p.plan.Layers[i].Digest, "err", err)
			if p.o.Warn != nil {
				p.mu.Lock() // serialized, as Progress is
				p.o.Warn(fmt.Sprintf("layer %d (%s) is fetched whole: fetching only its missing files failed", i, p.plan.Layers[i].Digest), err)
				p.mu.Unlock()
			}
		}
	}
	blob, err := p.open(ctx, i)
	if err != nil {
		return err
	}
	return p.importObjectLayer(ctx, i, blob)
}

// importObjectLayer imports an object layer in a transaction of its own. A chunk layer is
// recorded under its blob ref in the same transaction (a commit whose root holds its content
// objects, named by checksum, as ostree-ext does); the ostree layer's commit waits for
// baseCommit.
func (p *puller) importObjectLayer(ctx context.Context, i int, blob layerStream) error {
	tx, err := p.repo.Begin(ctx)
	if err != nil {
		blob.finish(err)
		return err
	}
	defer tx.Abort()
	held := map[ostree.Checksum][]byte{}
	st, err := importObjects(tx, blob.Tar(), held)
	if err := blob.finish(err); err != nil {
		if blob.blobError() == nil {
			return fmt.Errorf("layer %d (%s): %w", i, p.plan.Layers[i].Digest, err)
		}
		return err
	}
	if p.plan.Layers[i].Kind != LayerOstree {
		// A chunk layer's blob ref: a commit whose root holds its content objects, named by
		// checksum, published with them.
		root := ostree.NewMutableTree()
		for _, c := range st.Contents {
			if err := root.SetFile(c.String(), c); err != nil {
				return err
			}
		}
		tree, err := root.Write(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.WriteCommit(ctx, tree, ostree.WithBranch(ostreecontainer.LayerRef(p.plan.Layers[i].DiffID)),
			ostree.WithTimestamp(time.Unix(0, 0)), ostree.WithNoParent(), ostree.WithoutBindings()); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	p.mu.Lock()
	for c, data := range held {
		p.held[c] = data
	}
	p.mu.Unlock()
	return nil
}

// verifiedSource ends a derived layer's entries only once its blob is verified, so that a
// damaged or tampered blob aborts the commit.
type verifiedSource struct {
	ts   *ostree.TarSource
	blob *layerBlob
}

func (s *verifiedSource) Next(ctx context.Context) (*ostree.Entry, error) {
	e, err := s.ts.Next(ctx)
	if err == io.EOF {
		if err := s.blob.finish(nil); err != nil {
			return nil, err
		}
	}
	return e, err
}

// fetchDerived filters a derived layer and commits it under its blob ref.
func (p *puller) fetchDerived(ctx context.Context, i int) error {
	blob, err := p.open(ctx, i)
	if err != nil {
		return err
	}
	dropped := map[string]int{}
	ts := ostree.NewTarSource(blob.Tar())
	ts.Filter = derivedFilter(dropped, p.src.layout.Ostree < 0)
	_, err = p.repo.CommitEntries(ctx, &verifiedSource{ts: ts, blob: blob},
		ostree.WithBranch(ostreecontainer.LayerRef(p.plan.Layers[i].DiffID)), ostree.WithTimestamp(time.Unix(0, 0)),
		ostree.WithNoParent(), ostree.WithoutBindings(), ostree.WithMetadataString(ostreecontainer.MetaImporterVersion, ostreecontainer.ImporterVersion))
	if err := blob.finish(err); err != nil {
		if blob.blobErr != nil {
			return err
		}
		if dropped["sysroot"] > 0 && p.src.layout.Ostree < 0 {
			err = fmt.Errorf("%w (the layer holds an ostree repository under /sysroot: it looks like an ostree-container layer of an image that lost its %s label; rebuild or re-encapsulate the image)", err, ostreecontainer.LabelFinalDiffID)
		}
		return fmt.Errorf("%w: derived layer %d (%s): %w", ErrBadLayer, i, p.plan.Layers[i].Digest, err)
	}
	p.mu.Lock()
	for k, n := range dropped {
		p.dropped[k] += n
	}
	p.mu.Unlock()
	return nil
}

// baseCommit returns the image's ostree commit. When its layer was fetched, the commit object
// (held back) is written only now that every object layer is in and every object it reaches is
// present, together with the ostree layer's blob ref.
func (p *puller) baseCommit(ctx context.Context) (*ostree.Commit, error) {
	base := p.src.base
	l := p.plan.Layers[p.src.layout.Ostree]
	if l.Cached {
		return p.repo.ReadCommit(base)
	}
	data, ok := p.held[base]
	if !ok {
		return nil, fmt.Errorf("%w: the image's layers do not hold its commit %s (ostree.commit label)", ErrBadLayer, base)
	}
	commit, err := ostree.UnmarshalCommit(data)
	if err != nil {
		return nil, fmt.Errorf("%w: commit %s: %w", ErrBadLayer, base, err)
	}
	if err := checkComplete(ctx, p.repo, commit.RootTree, commit.RootMeta, map[ostree.Checksum]bool{}); err != nil {
		return nil, fmt.Errorf("%w: the image's commit %s is incomplete: %w", ErrBadLayer, base, err)
	}
	tx, err := p.repo.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Abort()
	if _, err := tx.WriteMetadata(ostree.ObjectCommit, data); err != nil {
		return nil, err
	}
	if err := tx.SetRef(ostreecontainer.LayerRef(l.DiffID), &base); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return commit, nil
}

// checkComplete makes sure every object a tree reaches is in the repository.
func checkComplete(ctx context.Context, repo *ostree.Repo, tree, meta ostree.Checksum, seen map[ostree.Checksum]bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ok, err := repo.HasObject(ostree.ObjectName{Checksum: meta, Type: ostree.ObjectDirMeta}); err != nil || !ok {
		return errors.Join(err, fmt.Errorf("dirmeta %s is missing", meta))
	}
	if seen[tree] {
		return nil
	}
	seen[tree] = true
	dt, err := repo.ReadDirTree(tree)
	if err != nil {
		return err
	}
	for _, f := range dt.Files {
		if ok, err := repo.HasObject(ostree.ObjectName{Checksum: f.Checksum, Type: ostree.ObjectFile}); err != nil || !ok {
			return errors.Join(err, fmt.Errorf("file %s (%s) is missing", f.Checksum, f.Name))
		}
	}
	for _, d := range dt.Dirs {
		if err := checkComplete(ctx, repo, d.Tree, d.Meta, seen); err != nil {
			return err
		}
	}
	return nil
}

// QueryImage returns the image the repository holds for ref (ErrImageNotPulled if none).
func QueryImage(repo *ostree.Repo, ref imgref.OstreeRef) (*ImageState, error) {
	c, err := repo.ReadRef(ostreecontainer.ImageRef(ref))
	if err != nil {
		if errors.Is(err, ostree.ErrRefNotFound) {
			return nil, fmt.Errorf("%w: %s (pull it first)", ErrImageNotPulled, ref)
		}
		return nil, err
	}
	return ImageStateOf(repo, c)
}

// ImageStateOf reads the image state recorded in a merged commit's metadata (for `status` of a
// deployment); it fails if the commit carries no ostree.manifest-digest.
func ImageStateOf(repo *ostree.Repo, commit ostree.Checksum) (*ImageState, error) {
	c, err := repo.ReadCommit(commit)
	if err != nil {
		return nil, err
	}
	d, ok := c.Metadata.String(ostreecontainer.MetaManifestDigest)
	if !ok {
		return nil, fmt.Errorf("commit %s has no %s: it was not pulled from a container image", commit, ostreecontainer.MetaManifestDigest)
	}
	st := &ImageState{Commit: commit}
	if st.Digest, err = v1.NewHash(d); err != nil {
		return nil, fmt.Errorf("commit %s: %s: %w", commit, ostreecontainer.MetaManifestDigest, err)
	}
	if s, ok := c.Metadata.String(ostreecontainer.MetaManifest); ok {
		st.RawManifest = []byte(s)
		if st.Manifest, err = v1.ParseManifest(bytes.NewReader([]byte(s))); err != nil {
			return nil, fmt.Errorf("commit %s: %s: %w", commit, ostreecontainer.MetaManifest, err)
		}
	}
	if s, ok := c.Metadata.String(ostreecontainer.MetaImageConfig); ok {
		st.RawConfig = []byte(s)
		if st.Config, err = v1.ParseConfigFile(bytes.NewReader([]byte(s))); err != nil {
			return nil, fmt.Errorf("commit %s: %s: %w", commit, ostreecontainer.MetaImageConfig, err)
		}
		st.Version, st.Created = versionCreated(st.Config)
	}
	return st, nil
}

// GCStats says what GC removed.
type GCStats struct {
	Images, Layers int
}

// GC deletes the image refs whose commit is not in keepCommits and whose reference is not in
// keepImages, then the layer refs no remaining image (nor any commit in keepCommits) lists.
// It deletes refs only; the caller prunes objects afterwards (sysroot.Cleanup).
func GC(ctx context.Context, repo *ostree.Repo, keepCommits []ostree.Checksum, keepImages []imgref.OstreeRef) (*GCStats, error) {
	refs, err := repo.ListRefs()
	if err != nil {
		return nil, err
	}
	keepC := map[ostree.Checksum]bool{}
	for _, c := range keepCommits {
		keepC[c] = true
	}
	keepI := map[string]bool{}
	for _, r := range keepImages {
		keepI[ostreecontainer.ImageRef(r)] = true
	}
	st := &GCStats{}
	// The layers the kept images and commits list (by their configs' diff IDs).
	layers := map[string]bool{}
	listLayers := func(c ostree.Checksum, must bool) error {
		s, err := ImageStateOf(repo, c)
		if err != nil {
			if must {
				return fmt.Errorf("reading the image of %s to keep its layers: %w", c, err)
			}
			return nil
		}
		if s.Config == nil {
			if must {
				return fmt.Errorf("commit %s records no image config: its layers cannot be told apart", c)
			}
			return nil
		}
		for _, d := range s.Config.RootFS.DiffIDs {
			layers[ostreecontainer.LayerRef(d)] = true
		}
		return nil
	}
	for _, c := range keepCommits {
		// A kept commit that was not pulled from an image (ostree-native deployments) lists
		// no layers.
		if err := listLayers(c, false); err != nil {
			return nil, err
		}
	}
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if len(r.Name) <= len(ostreecontainer.ImageRefPrefix) || r.Name[:len(ostreecontainer.ImageRefPrefix)] != ostreecontainer.ImageRefPrefix {
			continue
		}
		if keepC[r.Checksum] || keepI[r.Name] {
			if err := listLayers(r.Checksum, true); err != nil {
				return nil, err
			}
			continue
		}
		if err := repo.DeleteRef(r.Name); err != nil {
			return nil, err
		}
		st.Images++
	}
	for _, r := range refs {
		if len(r.Name) <= len(ostreecontainer.LayerRefPrefix) || r.Name[:len(ostreecontainer.LayerRefPrefix)] != ostreecontainer.LayerRefPrefix || layers[r.Name] {
			continue
		}
		if err := repo.DeleteRef(r.Name); err != nil {
			return nil, err
		}
		st.Layers++
	}
	return st, nil
}
