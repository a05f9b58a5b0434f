package imagestore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

// FindImage returns the image the repository holds for ref, pulled with whichever signature
// verification scheme (ErrImageNotPulled if none). ostree-ext keys a stored image by transport and
// name alone (its query_image); this store keys it by its full ostree-ext reference, so an image
// pulled as "ostree-unverified-registry:NAME" is found for "docker://NAME". When several schemes
// hold the image, the first ref in the repository's order wins.
func FindImage(repo *ostree.Repo, ref imgref.Ref) (*ImageState, error) {
	refs, err := repo.ListRefs()
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		escaped, ok := strings.CutPrefix(r.Name, ostreecontainer.ImageRefPrefix)
		if !ok {
			continue
		}
		name, err := ostreecontainer.UnescapeRef(escaped)
		if err != nil {
			continue // not a ref this store wrote
		}
		if stored, err := imgref.ParseOstree(name); err == nil && stored.Image == ref {
			return ImageStateOf(repo, r.Checksum)
		}
	}
	return nil, fmt.Errorf("%w: %s (pull it first, e.g. with bootc switch)", ErrImageNotPulled, ref)
}

// MetadataJSON is what ostree-ext's `ostree container image metadata` prints for the image: its
// manifest, or with config its config, as ostree-ext re-serializes them (serde_json::to_writer
// of oci-spec's ImageManifest and ImageConfiguration): compact JSON, the fields in the OCI
// specification's order, unknown fields dropped, HTML characters unescaped, no final newline.
// Podman Machine reads config.digest from the manifest (manifest.FromBlob, OCI media type).
func MetadataJSON(s *ImageState, config bool) ([]byte, error) {
	raw, what := s.RawManifest, ostreecontainer.MetaManifest
	var v any = &ocispec.Manifest{}
	if config {
		raw, what, v = s.RawConfig, ostreecontainer.MetaImageConfig, &ocispec.Image{}
	}
	if raw == nil {
		return nil, fmt.Errorf("image commit %s records no %s", s.Commit, what)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, fmt.Errorf("image commit %s: %s: %w", s.Commit, what, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
