package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/docker/distribution/registry/api/errcode"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	godigest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// SigstoreSignature is one signature as a sigstore attachment holds it: a layer of the attachment
// manifest, whose blob is the payload.
type SigstoreSignature struct {
	// MediaType is the layer's media type: "application/vnd.dev.cosign.simplesigning.v1+json"
	// for a cosign signature.
	MediaType string
	// Payload is what was signed.
	Payload []byte
	// Annotations carry the signature ("dev.cosignproject.cosign/signature": base64) and
	// whatever comes with it (certificates, a Rekor bundle).
	Annotations map[string]string
}

// ErrSigstoreAttachmentsOff reports a registry for which registries.d turns sigstore attachments
// off (use-sigstore-attachments: false, or nothing saying true): containers/image would neither
// read nor write them there.
var ErrSigstoreAttachmentsOff = errors.New("sigstore attachments are turned off by registries.d")

// AttachSigstoreSignature stores sig as a sigstore attachment of the image with manifest digest
// in the repository of ref (a registry reference; its tag or digest is not used, except to pick
// the registries.d entry), as containers/image's registry client and cosign write them: the OCI
// manifest tagged "sha256-<hex>.sig" in that repository gets sig as one more layer (created if
// there is none), and its config (an OCI image config) the payload's digest as one more rootfs
// diff ID. A signature already there (same media type, payload and annotations) is not added
// again.
//
// The attachment is read from the registry it is written to, never from a mirror: its digest is
// asked of the registry (HEAD), then it is read by that digest; the whole manifest is then
// written back, so two signers at the same time may lose one signature, as with containers/image
// and cosign. Nothing checks that the image itself is in the repository.
//
// The registry is reached with reg (see [Registries]); registries.d must turn sigstore
// attachments on for ref ([RegistriesDConfig] does unless registries.d says otherwise), or the
// error is ErrSigstoreAttachmentsOff.
func AttachSigstoreSignature(ctx context.Context, ref imgref.Ref, digest v1.Hash, sig SigstoreSignature, reg Registries) error {
	if ref.Transport != imgref.Registry {
		return fmt.Errorf("%s: sigstore attachments are stored in registries only", ref)
	}
	sys, cleanup, err := reg.SystemContext(ref.Name, DefaultPlatform())
	if err != nil {
		return fmt.Errorf("attaching a signature to %s: %w", ref, err)
	}
	defer cleanup()
	named, err := reference.ParseNormalizedNamed(ref.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	imageRef, err := docker.NewReference(reference.TagNameOnly(named))
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	on, err := sigstoreAttachments(sys, imageRef)
	if err != nil {
		return err
	}
	if !on {
		return fmt.Errorf("%w for %s (use-sigstore-attachments in registries.d)", ErrSigstoreAttachmentsOff, ref)
	}
	dg, err := godigest.Parse(digest.String())
	if err != nil {
		return err
	}
	tagged, err := reference.WithTag(reference.TrimNamed(named), strings.Replace(dg.String(), ":", "-", 1)+".sig")
	if err != nil {
		return err
	}
	if err := attach(ctx, sys, tagged, sig); err != nil {
		return fmt.Errorf("attaching a signature to %s as %s: %w", ref, tagged, err)
	}
	return nil
}

// attach adds sig to the attachment manifest tagged (REPO:sha256-<hex>.sig): read, extend, write
// the payload, the config and the manifest.
func attach(ctx context.Context, sys *types.SystemContext, tagged reference.NamedTagged, sig SigstoreSignature) error {
	m, config, err := readAttachment(ctx, sys, tagged)
	if err != nil {
		return err
	}
	payloadDigest := godigest.FromBytes(sig.Payload)
	if m == nil {
		m = manifest.OCI1FromComponents(imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig}, nil)
		config.RootFS.Type = "layers"
	}
	for _, l := range m.Layers {
		if l.MediaType == sig.MediaType && l.Size == int64(len(sig.Payload)) && l.Digest == payloadDigest && maps.Equal(l.Annotations, sig.Annotations) {
			return nil // already there
		}
	}
	dref, err := docker.NewReference(tagged)
	if err != nil {
		return err
	}
	dest, err := dref.NewImageDestination(ctx, sys)
	if err != nil {
		return err
	}
	defer dest.Close()
	layer, err := putBytes(ctx, dest, sig.Payload, sig.MediaType, false)
	if err != nil {
		return fmt.Errorf("the payload: %w", err)
	}
	layer.Annotations = sig.Annotations
	m.Layers = append(slices.Clone(m.Layers), layer)
	config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, payloadDigest)
	configBlob, err := json.Marshal(config)
	if err != nil {
		return err
	}
	if m.Config, err = putBytes(ctx, dest, configBlob, imgspecv1.MediaTypeImageConfig, true); err != nil {
		return fmt.Errorf("the config: %w", err)
	}
	raw, err := m.Serialize()
	if err != nil {
		return err
	}
	if err := dest.PutManifest(ctx, raw, nil); err != nil {
		return fmt.Errorf("the manifest: %w", err)
	}
	return dest.Commit(ctx, writtenImage{ref: dref, raw: raw, mediaType: imgspecv1.MediaTypeImageManifest})
}

// putBytes uploads a small blob (unless dest has it) and returns its descriptor.
func putBytes(ctx context.Context, dest types.ImageDestination, b []byte, mediaType string, isConfig bool) (imgspecv1.Descriptor, error) {
	d := godigest.FromBytes(b)
	h, err := v1.NewHash(d.String())
	if err != nil {
		return imgspecv1.Descriptor{}, err
	}
	desc := v1.Descriptor{MediaType: ggcrtypes.MediaType(mediaType), Digest: h, Size: int64(len(b))}
	err = putBlob(ctx, dest, desc, isConfig, func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	return imgspecv1.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}, err
}

// readAttachment reads the sigstore attachment manifest tagged in the registry, and its config;
// nil if there is none.
func readAttachment(ctx context.Context, sys *types.SystemContext, tagged reference.NamedTagged) (*manifest.OCI1, imgspecv1.Image, error) {
	var config imgspecv1.Image
	tagRef, err := docker.NewReference(tagged)
	if err != nil {
		return nil, config, err
	}
	// Ask the registry, not a mirror, which manifest the tag names, and read that one (from
	// wherever has it). A HEAD answer has no body, so a missing tag cannot be told from other
	// failures: then the tag itself is read, whose error says.
	readRef, pinned := tagRef, godigest.Digest("")
	if d, err := docker.GetDigest(ctx, sys, tagRef); err == nil {
		byDigest, err := reference.WithDigest(reference.TrimNamed(tagged), d)
		if err != nil {
			return nil, config, err
		}
		if readRef, err = docker.NewReference(byDigest); err != nil {
			return nil, config, err
		}
		pinned = d
	}
	src, err := readRef.NewImageSource(ctx, sys)
	if err != nil {
		if attachmentMissing(err) {
			return nil, config, nil
		}
		return nil, config, fmt.Errorf("reading the attachment: %w", err)
	}
	defer src.Close()
	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return nil, config, fmt.Errorf("reading the attachment: %w", err)
	}
	if pinned != "" {
		if err := checkManifest(raw, pinned); err != nil {
			return nil, config, err
		}
	}
	if mt != imgspecv1.MediaTypeImageManifest {
		return nil, config, fmt.Errorf("the attachment manifest has media type %q, not %q", mt, imgspecv1.MediaTypeImageManifest)
	}
	m, err := manifest.OCI1FromManifest(raw)
	if err != nil {
		return nil, config, fmt.Errorf("parsing the attachment manifest: %w", err)
	}
	if m.Config.Size > maxConfigSize || m.Config.Digest.Algorithm() != godigest.SHA256 {
		return nil, config, fmt.Errorf("the attachment config %s (%d bytes) is not a sha256 blob of at most %d bytes", m.Config.Digest, m.Config.Size, maxConfigSize)
	}
	h, err := v1.NewHash(m.Config.Digest.String())
	if err != nil {
		return nil, config, err
	}
	rc, _, err := src.GetBlob(ctx, types.BlobInfo{Digest: m.Config.Digest, Size: m.Config.Size, MediaType: m.Config.MediaType}, none.NoCache)
	if err != nil {
		return nil, config, fmt.Errorf("reading the attachment config: %w", err)
	}
	defer rc.Close()
	b, err := io.ReadAll(newVerifiedReader(rc, v1.Descriptor{Digest: h, Size: m.Config.Size}))
	if err != nil {
		return nil, config, fmt.Errorf("reading the attachment config: %w", err)
	}
	if err := json.Unmarshal(b, &config); err != nil {
		return nil, config, fmt.Errorf("parsing the attachment config: %w", err)
	}
	return m, config, nil
}

// attachmentMissing reports a registry's answer that there is no such manifest, as
// containers/image recognizes it when it looks for a sigstore attachment: the standard error
// code, or (registry.redhat.io, Harbor) an unknown error saying "not found".
func attachmentMissing(err error) bool {
	if notFound(err) {
		return true
	}
	var e errcode.Error
	return errors.As(err, &e) && e.ErrorCode() == errcode.ErrorCodeUnknown && strings.Contains(strings.ToLower(e.Message), "not found")
}
