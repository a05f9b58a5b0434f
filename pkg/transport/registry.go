package transport

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	godigest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	ociarchive "go.podman.io/image/v5/oci/archive"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	cstorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"golang.org/x/sync/errgroup"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// ErrDigestMismatch reports content whose bytes do not hash to the digest (or do not have the
// size) its descriptor names.
var ErrDigestMismatch = errors.New("digest mismatch")

// maxConfigSize bounds an image config read into memory.
const maxConfigSize = 64 << 20

// pushJobs is how many blobs a push uploads at once (as go-containerregistry's remote.Write).
const pushJobs = 4

// ContainersRef converts ref to a containers/image reference.
func ContainersRef(ref imgref.Ref) (types.ImageReference, error) {
	var r types.ImageReference
	var err error
	switch ref.Transport {
	case imgref.Registry:
		r, err = docker.ParseReference("//" + ref.Name)
	case imgref.OCI:
		r, err = ocilayout.Transport.ParseReference(strings.TrimPrefix(ref.String(), "oci:"))
	case imgref.OCIArchive:
		r, err = ociarchive.Transport.ParseReference(strings.TrimPrefix(ref.String(), "oci-archive:"))
	case imgref.ContainersStorage:
		r, err = cstorage.Transport.ParseReference(ref.Name)
	default:
		return nil, fmt.Errorf("%s: transport %s is not supported", ref, ref.Transport)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return r, nil
}

// PinDigest returns the registry reference ref with its tag replaced by digest (NAME@DIGEST),
// the name normalized as containers/image normalizes it ("os" is docker.io/library/os).
func PinDigest(ref imgref.Ref, digest v1.Hash) (imgref.Ref, error) {
	if ref.Transport != imgref.Registry {
		return ref, fmt.Errorf("%s: only registry references can be pinned to a digest", ref)
	}
	named, err := reference.ParseNormalizedNamed(ref.Name)
	if err != nil {
		return ref, fmt.Errorf("%s: %w", ref, err)
	}
	d, err := godigest.Parse(digest.String())
	if err != nil {
		return ref, fmt.Errorf("%s: %w", ref, err)
	}
	pinned, err := reference.WithDigest(reference.TrimNamed(named), d)
	if err != nil {
		return ref, fmt.Errorf("%s: %w", ref, err)
	}
	ref.Name = pinned.String()
	return ref, nil
}

// readRegistry opens ref's image with containers/image (see the package documentation) and
// wraps it as a v1.Image: the manifest is read now (and checked against the reference's digest,
// or the index's entry), the config and layers when asked for, each checked against its
// descriptor while it streams.
func readRegistry(ctx context.Context, ref imgref.Ref, platform v1.Platform, reg Registries) (*Image, error) {
	sys, cleanup, err := reg.SystemContext(ref.Name, platform)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	cref, err := ContainersRef(ref)
	if err != nil {
		cleanup()
		return nil, err
	}
	src, err := cref.NewImageSource(ctx, sys)
	if err != nil {
		cleanup()
		return nil, registryError(ref, err)
	}
	closeAll := func() error {
		err := src.Close()
		cleanup()
		return err
	}
	img, err := newSourceImage(ctx, src, sys)
	if err != nil {
		closeAll()
		return nil, registryError(ref, err)
	}
	named, err := reference.ParseNormalizedNamed(ref.Name)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	proxy := http.ProxyFromEnvironment
	if reg.Proxy != nil {
		proxy = func(r *http.Request) (*url.URL, error) { return reg.Proxy(r.URL) }
	}
	ranges, err := newHTTPRanges(sys, reference.TrimNamed(named), proxy)
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return &Image{Image: rangedImage{img, ranges}, close: closeAll}, nil
}

// registryError names the reference, and says ErrNotFound when the registry has no such image.
func registryError(ref imgref.Ref, err error) error {
	if errors.Is(err, ErrNotFound) || notFound(err) {
		return fmt.Errorf("%w: %s: %w", ErrNotFound, ref, err)
	}
	return fmt.Errorf("reading %s: %w", ref, err)
}

// notFound reports a registry's "no such manifest" or "no such repository".
func notFound(err error) bool {
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		switch ec.ErrorCode() {
		case v2.ErrorCodeManifestUnknown, v2.ErrorCodeNameUnknown:
			return true
		}
	}
	return false
}

// newSourceImage reads src's manifest (for sys's platform, from a multi-platform index) and
// returns the image it describes.
func newSourceImage(ctx context.Context, src types.ImageSource, sys *types.SystemContext) (v1.Image, error) {
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest: %w", err)
	}
	if named := src.Reference().DockerReference(); named != nil {
		if d, ok := named.(reference.Digested); ok {
			if err := checkManifest(raw, d.Digest()); err != nil {
				return nil, err
			}
		}
	}
	mt = manifest.NormalizedMIMEType(mt)
	if manifest.MIMETypeIsMultiImage(mt) {
		list, err := manifest.ListFromBlob(raw, mt)
		if err != nil {
			return nil, fmt.Errorf("parsing the index: %w", err)
		}
		instance, err := list.ChooseInstance(sys)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		if raw, mt, err = src.GetManifest(ctx, &instance); err != nil {
			return nil, fmt.Errorf("reading the manifest %s: %w", instance, err)
		}
		if err := checkManifest(raw, instance); err != nil {
			return nil, err
		}
		mt = manifest.NormalizedMIMEType(mt)
	}
	switch mt {
	case manifest.DockerV2Schema2MediaType, "application/vnd.oci.image.manifest.v1+json":
	default:
		return nil, fmt.Errorf("the manifest has media type %s: only OCI and Docker schema 2 image manifests can be read", mt)
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parsing the manifest: %w", err)
	}
	core := &sourceImage{ctx: ctx, src: src, raw: raw, mediaType: ggcrtypes.MediaType(mt), manifest: m}
	return partial.CompressedToImage(core)
}

// checkManifest makes sure raw is the manifest with digest want.
func checkManifest(raw []byte, want godigest.Digest) error {
	ok, err := manifest.MatchesDigest(raw, want)
	if err != nil {
		return fmt.Errorf("checking the manifest against %s: %w", want, err)
	}
	if !ok {
		got, _ := manifest.Digest(raw)
		return fmt.Errorf("%w: the registry sent manifest %s for %s", ErrDigestMismatch, got, want)
	}
	return nil
}

// sourceImage is a containers/image ImageSource as go-containerregistry's
// partial.CompressedImageCore. Blobs are fetched by digest from the endpoint (mirror or
// registry) that served the manifest, concurrently if asked (the docker ImageSource is safe
// for concurrent GetBlob).
type sourceImage struct {
	ctx       context.Context
	src       types.ImageSource
	raw       []byte
	mediaType ggcrtypes.MediaType
	manifest  *v1.Manifest

	configOnce sync.Once
	config     []byte
	configErr  error
}

func (s *sourceImage) RawManifest() ([]byte, error)            { return s.raw, nil }
func (s *sourceImage) MediaType() (ggcrtypes.MediaType, error) { return s.mediaType, nil }

// RawConfigFile reads the config blob, checked against the manifest's descriptor.
func (s *sourceImage) RawConfigFile() ([]byte, error) {
	s.configOnce.Do(func() {
		desc := s.manifest.Config
		if desc.Size > maxConfigSize {
			s.configErr = fmt.Errorf("the image config is %d bytes, more than the %d accepted", desc.Size, maxConfigSize)
			return
		}
		rc, err := s.open(desc)
		if err != nil {
			s.configErr = fmt.Errorf("reading the image config: %w", err)
			return
		}
		defer rc.Close()
		if s.config, err = io.ReadAll(rc); err != nil {
			s.configErr = fmt.Errorf("reading the image config: %w", err)
		}
	})
	return s.config, s.configErr
}

// LayerByDigest returns the layer (or the config) with that digest.
func (s *sourceImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	for _, d := range s.manifest.Layers {
		if d.Digest == h {
			return &sourceLayer{s: s, desc: d}, nil
		}
	}
	if s.manifest.Config.Digest == h {
		return &sourceLayer{s: s, desc: s.manifest.Config}, nil
	}
	return nil, fmt.Errorf("the manifest lists no blob %s", h)
}

// open streams the blob desc names, checked against it.
func (s *sourceImage) open(desc v1.Descriptor) (io.ReadCloser, error) {
	d, err := godigest.Parse(desc.Digest.String())
	if err != nil {
		return nil, err
	}
	if desc.Digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: only sha256 digests are supported", desc.Digest)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("blob %s: the manifest gives it a negative size", desc.Digest)
	}
	rc, _, err := s.src.GetBlob(s.ctx, types.BlobInfo{Digest: d, Size: desc.Size, URLs: desc.URLs, MediaType: string(desc.MediaType)}, none.NoCache)
	if err != nil {
		return nil, fmt.Errorf("fetching blob %s: %w", desc.Digest, err)
	}
	return newVerifiedReader(rc, desc), nil
}

type sourceLayer struct {
	s    *sourceImage
	desc v1.Descriptor
}

func (l *sourceLayer) Digest() (v1.Hash, error)                { return l.desc.Digest, nil }
func (l *sourceLayer) Size() (int64, error)                    { return l.desc.Size, nil }
func (l *sourceLayer) MediaType() (ggcrtypes.MediaType, error) { return l.desc.MediaType, nil }
func (l *sourceLayer) Compressed() (io.ReadCloser, error)      { return l.s.open(l.desc) }

// verifiedReader hashes a blob while it is read, never reads more than one byte past the size
// its descriptor declares, and fails at the end if the size or the digest is not the declared
// one (ErrDigestMismatch). A negative size means the size is unknown: only the digest is checked.
type verifiedReader struct {
	rc   io.ReadCloser
	h    hash.Hash
	desc v1.Descriptor
	n    int64
	err  error
}

// newVerifiedReader checks rc against desc, which has a sha256 digest.
func newVerifiedReader(rc io.ReadCloser, desc v1.Descriptor) *verifiedReader {
	return &verifiedReader{rc: rc, h: sha256.New(), desc: desc}
}

func (r *verifiedReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if max := r.desc.Size + 1 - r.n; r.desc.Size >= 0 && int64(len(p)) > max {
		p = p[:max]
	}
	n, err := r.rc.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	switch {
	case r.desc.Size >= 0 && r.n > r.desc.Size:
		r.err = fmt.Errorf("%w: blob %s is longer than the %d bytes declared", ErrDigestMismatch, r.desc.Digest, r.desc.Size)
		return n, r.err
	case err == io.EOF:
		if r.n < r.desc.Size {
			r.err = fmt.Errorf("blob %s is truncated: got %d of %d bytes: %w", r.desc.Digest, r.n, r.desc.Size, io.ErrUnexpectedEOF)
		} else if got := fmt.Sprintf("%x", r.h.Sum(nil)); got != r.desc.Digest.Hex {
			r.err = fmt.Errorf("%w: blob %s has digest sha256:%s", ErrDigestMismatch, r.desc.Digest, got)
		} else {
			r.err = io.EOF
		}
		return n, r.err
	}
	return n, err
}

func (r *verifiedReader) Close() error { return r.rc.Close() }

// writeRegistry pushes img to ref with containers/image's registry client (see putImage).
func writeRegistry(ctx context.Context, img v1.Image, ref imgref.Ref, reg Registries) error {
	sys, cleanup, err := reg.SystemContext(ref.Name, DefaultPlatform())
	if err != nil {
		return fmt.Errorf("pushing to %s: %w", ref, err)
	}
	defer cleanup()
	cref, err := ContainersRef(ref)
	if err != nil {
		return err
	}
	dest, err := cref.NewImageDestination(ctx, sys)
	if err != nil {
		return fmt.Errorf("pushing to %s: %w", ref, err)
	}
	defer dest.Close()
	if err := putImage(ctx, dest, img); err != nil {
		return fmt.Errorf("pushing to %s: %w", ref, err)
	}
	return nil
}

// putImage writes img to a containers/image destination (a registry or containers-storage): the
// blobs pushJobs at a time, each skipped if dest has it, then the config, the manifest (byte for
// byte) and the commit. Foreign layers are left where their URLs say when dest accepts them (a
// registry, as remote.Write does); containers-storage needs them.
func putImage(ctx context.Context, dest types.ImageDestination, img v1.Image) error {
	m, err := img.Manifest()
	if err != nil {
		return err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pushJobs)
	for _, desc := range m.Layers {
		if !desc.MediaType.IsDistributable() && dest.AcceptsForeignLayerURLs() {
			continue
		}
		g.Go(func() error {
			return putBlob(gctx, dest, desc, false, func() (io.ReadCloser, error) {
				l, err := img.LayerByDigest(desc.Digest)
				if err != nil {
					return nil, err
				}
				return l.Compressed()
			})
		})
	}
	g.Go(func() error {
		return putBlob(gctx, dest, m.Config, true, func() (io.ReadCloser, error) {
			b, err := img.RawConfigFile()
			return io.NopCloser(bytes.NewReader(b)), err
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if err := dest.PutManifest(ctx, raw, nil); err != nil {
		return fmt.Errorf("the manifest: %w", err)
	}
	return dest.Commit(ctx, writtenImage{ref: dest.Reference(), raw: raw, mediaType: manifest.GuessMIMEType(raw)})
}

// writtenImage is the image putImage wrote, as a destination's Commit wants it: our own manifest,
// without signatures.
type writtenImage struct {
	ref       types.ImageReference
	raw       []byte
	mediaType string
}

func (w writtenImage) Reference() types.ImageReference { return w.ref }
func (w writtenImage) Manifest(context.Context) ([]byte, string, error) {
	return w.raw, w.mediaType, nil
}
func (w writtenImage) Signatures(context.Context) ([][]byte, error) { return nil, nil }

// putBlob uploads the blob desc names unless the repository has it.
func putBlob(ctx context.Context, dest types.ImageDestination, desc v1.Descriptor, isConfig bool, open func() (io.ReadCloser, error)) error {
	d, err := godigest.Parse(desc.Digest.String())
	if err != nil {
		return err
	}
	info := types.BlobInfo{Digest: d, Size: desc.Size, MediaType: string(desc.MediaType)}
	if ok, _, err := dest.TryReusingBlob(ctx, info, none.NoCache, false); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	} else if ok {
		return nil
	}
	rc, err := open()
	if err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	defer rc.Close()
	if _, err := dest.PutBlob(ctx, rc, info, none.NoCache, isConfig); err != nil {
		return fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	return nil
}
