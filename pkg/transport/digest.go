package transport

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// ManifestDigest is the digest of the manifest a registry reference names, as the registry
// stores it: for a multi-platform image the image index's own digest, which serves every
// platform (Read's image has one platform's). A reference by digest is checked against it.
// Other transports give the digest of the image Read opens.
func ManifestDigest(ctx context.Context, ref imgref.Ref, opts ...Option) (v1.Hash, error) {
	if ref.Transport != imgref.Registry {
		img, err := Read(ctx, ref, DefaultPlatform(), opts...)
		if err != nil {
			return v1.Hash{}, err
		}
		defer img.Close()
		return img.Digest()
	}
	sys, cleanup, err := makeOptions(opts).registries.SystemContext(ref.Name, DefaultPlatform())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	defer cleanup()
	cref, err := ContainersRef(ref)
	if err != nil {
		return v1.Hash{}, err
	}
	src, err := cref.NewImageSource(ctx, sys)
	if err != nil {
		return v1.Hash{}, registryError(ref, err)
	}
	defer src.Close()
	raw, _, err := src.GetManifest(ctx, nil)
	if err != nil {
		return v1.Hash{}, registryError(ref, err)
	}
	if named, ok := src.Reference().DockerReference().(reference.Digested); ok {
		if err := checkManifest(raw, named.Digest()); err != nil {
			return v1.Hash{}, fmt.Errorf("reading %s: %w", ref, err)
		}
	}
	d, err := manifest.Digest(raw)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	return v1.NewHash(d.String())
}
