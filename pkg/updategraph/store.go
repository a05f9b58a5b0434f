package updategraph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/image/v5/docker/reference"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
)

// The release index in a registry: a stream's Index is an OCI artifact kept beside the images,
// in the same repository, under the tag IndexTagPrefix + stream ("releases-stable"). It is an
// OCI image manifest (schema 2) with
//   - artifactType and config media type ArtifactType, the config blob {"version":1};
//   - one layer of media type IndexMediaType holding the Index as JSON;
//   - no annotations and no timestamps, so the same Index always has the same digest.
//
// Publishing reads the index, changes it and writes it back: two publishers working on one
// stream at once race, and the last write wins (the other's change is lost). Publish from one
// place, or serialise publishers.
const (
	IndexTagPrefix = "releases-"
	ArtifactType   = "application/vnd.bootc.releases.config.v1+json"
	IndexMediaType = "application/vnd.bootc.releases.v1+json"
)

// ErrNoIndex reports a repository with no release index for the stream.
var ErrNoIndex = errors.New("no release index")

// streamName is what a stream may be called: the tag rules, with room for the prefix.
var streamName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,118}$`)

// IndexRef is where the index of stream lives for the images of repo: a registry repository
// (any tag or digest of repo is dropped) or an oci: layout directory, tag releases-STREAM.
// An oci-archive holds a single image and containers-storage no artifacts, so neither can keep
// an index.
func IndexRef(repo imgref.Ref, stream string) (imgref.Ref, error) {
	if !streamName.MatchString(stream) {
		return imgref.Ref{}, fmt.Errorf("stream name %q: use letters, digits, '_', '.' and '-' (at most 119, not starting with '.' or '-')", stream)
	}
	tag := IndexTagPrefix + stream
	switch repo.Transport {
	case imgref.Registry:
		name, err := Repository(repo)
		if err != nil {
			return imgref.Ref{}, err
		}
		return imgref.Ref{Transport: imgref.Registry, Name: name + ":" + tag}, nil
	case imgref.OCI:
		return imgref.Ref{Transport: imgref.OCI, Name: repo.Name, Tag: tag}, nil
	}
	return imgref.Ref{}, fmt.Errorf("%s: a release index lives in a registry repository (docker://REGISTRY/REPOSITORY) or an oci:DIR layout, not in %s", repo, repo.Transport)
}

// Repository is the normalized repository name of a registry reference, without tag or digest
// ("registry.example/os"), as payloads name it.
func Repository(ref imgref.Ref) (string, error) {
	named, err := reference.ParseNormalizedNamed(ref.Name)
	if err != nil {
		return "", fmt.Errorf("%s: %w", ref, err)
	}
	return reference.TrimNamed(named).String(), nil
}

// ReadIndex reads the release index of stream from repo (IndexRef). A repository without one
// gives an error that is ErrNoIndex (and transport.ErrNotFound). The artifact's media types
// are checked and the index parsed strictly (ParseIndex); its stream must be stream.
func ReadIndex(ctx context.Context, repo imgref.Ref, stream string, opts ...transport.Option) (*Index, error) {
	ref, err := IndexRef(repo, stream)
	if err != nil {
		return nil, err
	}
	img, err := transport.Read(ctx, ref, transport.DefaultPlatform(), opts...)
	if errors.Is(err, transport.ErrNotFound) {
		return nil, fmt.Errorf("%w for stream %q: %w", ErrNoIndex, stream, err)
	} else if err != nil {
		return nil, err
	}
	defer img.Close()
	idx, err := readArtifact(img)
	if err != nil {
		return nil, fmt.Errorf("reading the release index %s: %w", ref, err)
	}
	if idx.Stream != stream {
		return nil, fmt.Errorf("%w: %s holds stream %q, not %q", ErrInvalidIndex, ref, idx.Stream, stream)
	}
	return idx, nil
}

func readArtifact(img v1.Image) (*Index, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	if m.Config.MediaType != ArtifactType || len(m.Layers) != 1 || m.Layers[0].MediaType != IndexMediaType {
		return nil, fmt.Errorf("%w: not a bootc release index (want config %s and one %s layer)", ErrInvalidIndex, ArtifactType, IndexMediaType)
	}
	if m.Layers[0].Size > MaxIndexSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrInvalidIndex, m.Layers[0].Size, MaxIndexSize)
	}
	l, err := img.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return nil, err
	}
	rc, err := l.Compressed() // the layer is stored as is; transport checks its digest
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return ParseIndex(rc)
}

// WriteIndex validates idx and writes it to repo as the index of idx.Stream (IndexRef),
// replacing the one there; it returns the artifact's manifest digest. Concurrent writers race:
// the last write wins.
func WriteIndex(ctx context.Context, repo imgref.Ref, idx *Index, opts ...transport.Option) (v1.Hash, error) {
	if err := idx.Validate(); err != nil {
		return v1.Hash{}, err
	}
	ref, err := IndexRef(repo, idx.Stream)
	if err != nil {
		return v1.Hash{}, err
	}
	img, err := indexArtifact(idx)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := transport.Write(ctx, img, ref, opts...)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("writing the release index: %w", err)
	}
	return d, nil
}

// artifact is the index as a v1.Image: a manifest, the config and the one layer.
type artifact struct {
	manifest, config []byte
	layer            v1.Layer
}

func indexArtifact(idx *Index) (v1.Image, error) {
	out := *idx
	out.Version = IndexVersion
	body, err := json.Marshal(&out)
	if err != nil {
		return nil, err
	}
	a := &artifact{config: []byte(`{"version":1}`), layer: static.NewLayer(body, IndexMediaType)}
	desc := func(b []byte, mt types.MediaType) v1.Descriptor {
		h, n, _ := v1.SHA256(bytes.NewReader(b))
		return v1.Descriptor{MediaType: mt, Size: n, Digest: h}
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, ArtifactType: ArtifactType,
		Config: desc(a.config, ArtifactType), Layers: []v1.Descriptor{desc(body, IndexMediaType)}}
	if a.manifest, err = json.Marshal(&m); err != nil {
		return nil, err
	}
	return partial.CompressedToImage(a)
}

func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) RawConfigFile() ([]byte, error)      { return a.config, nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if d, _ := a.layer.Digest(); d == h {
		return a.layer, nil
	}
	if cd, _, _ := v1.SHA256(bytes.NewReader(a.config)); cd == h {
		return static.NewLayer(a.config, ArtifactType), nil
	}
	return nil, fmt.Errorf("the release index has no blob %s", h)
}

// VersionLabel is the image label ResolveRelease reads a release's version from.
const VersionLabel = "org.opencontainers.image.version"

// ResolveRelease is the release of the registry image ref: its payload the repository by the
// manifest digest (transport.ManifestDigest: a multi-platform image's index, which serves every
// architecture), its version ref's VersionLabel ("" without one). It has no rollout yet.
func ResolveRelease(ctx context.Context, ref imgref.Ref, opts ...transport.Option) (*Release, error) {
	d, err := transport.ManifestDigest(ctx, ref, opts...)
	if err != nil {
		return nil, err
	}
	pinned, err := transport.PinDigest(ref, d)
	if err != nil {
		return nil, fmt.Errorf("%w: releases name images in a registry (push it there, then give docker://REGISTRY/REPOSITORY:TAG)", err)
	}
	img, err := transport.Read(ctx, pinned, transport.DefaultPlatform(), opts...)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	return &Release{Version: cf.Config.Labels[VersionLabel], Payload: pinned.Name}, nil
}

// NewRegistrySource is the Source of hosts that read their stream's index from repo
// (ReadIndex) and build the graph themselves.
func NewRegistrySource(repo imgref.Ref, opts ...transport.Option) Source {
	return registrySource{repo: repo, opts: opts}
}

type registrySource struct {
	repo imgref.Ref
	opts []transport.Option
}

func (s registrySource) Graph(ctx context.Context, q Query) (*Graph, error) {
	idx, err := ReadIndex(ctx, s.repo, q.Stream, s.opts...)
	if err != nil {
		return nil, err
	}
	return hostGraph(idx, q)
}

// hostGraph is idx's graph as the host of q sees it.
func hostGraph(idx *Index, q Query) (*Graph, error) {
	g, err := Build(idx, q.Basearch)
	if err != nil {
		return nil, err
	}
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	return g.Throttle(q.EffectiveWariness(), now), nil
}
