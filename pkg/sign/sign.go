// Package sign signs images in registries with a cosign key, storing each signature as a sigstore
// attachment beside the image: an OCI manifest tagged "sha256-<manifest hex>.sig" in the image's
// repository whose layers carry the simple-signing payloads, the layout `cosign sign` writes. The
// cosign CLI (`cosign verify --key`) and containers/image's policy engine (`sigstoreSigned` with
// `keyPath`, given a registries.d entry with `use-sigstore-attachments: true`) both verify them.
//
// Signing goes through containers/image (its sigstore signer and copy pipeline), not the cosign Go
// module: after the image is pushed, it is copied from the registry onto itself by digest with a
// signer attached. The blobs are already there, so the copy moves only the manifest (unchanged, the
// digest is checked) and the new signature. The signature's identity (critical.identity.
// docker-reference) is the reference as given, tag included, as `skopeo copy --sign-by-sigstore`
// writes it; `cosign sign` writes the repository without the tag.
//
// The registry is reached with the caller's transport.Registries, the configuration the push and
// every reader use (registries.conf `blocked` and `insecure`, auth.json, certs.d; the sigstore
// attachments setting of transport.RegistriesDConfig unless registries.d says otherwise).
package sign

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	godigest "github.com/opencontainers/go-digest"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
)

// ErrKey reports a private key that cannot be used: unreadable, not a cosign key, or encrypted
// with another passphrase.
var ErrKey = errors.New("cannot use signing key")

// ErrNotRegistry reports a target that cannot hold sigstore attachments (anything but a registry).
var ErrNotRegistry = errors.New("signatures can only be stored in a registry")

// Signer signs with one cosign private key. Load it before pushing anything, so that a wrong
// passphrase stops the build before it has changed the registry.
type Signer struct {
	s *signer.Signer
}

// LoadKey reads and decrypts a cosign private key (the encrypted PEM `cosign generate-key-pair`
// writes; ECDSA, RSA or Ed25519) with passphrase, which may be empty but not nil.
func LoadKey(file string, passphrase []byte) (*Signer, error) {
	if passphrase == nil {
		passphrase = []byte{}
	}
	s, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(file, passphrase))
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "decryption failed") {
			hint = " (wrong passphrase?)"
		}
		return nil, fmt.Errorf("%w %s: %w%s", ErrKey, file, err, hint)
	}
	return &Signer{s: s}, nil
}

// Close releases the key.
func (s *Signer) Close() error { return s.s.Close() }

// Sign signs the image with manifest digest at ref, a registry reference whose tag (default
// "latest") becomes the signature's identity, and stores the signature as a sigstore attachment in
// ref's repository, beside any signatures already there. The image must already be in that
// repository; Sign fails if the manifest would change. reg is the registry configuration (the
// one the image was pushed with).
func (s *Signer) Sign(ctx context.Context, ref imgref.Ref, digest v1.Hash, reg transport.Registries) error {
	if ref.Transport != imgref.Registry {
		return fmt.Errorf("signing %s: %w", ref, ErrNotRegistry)
	}
	named, err := reference.ParseNormalizedNamed(ref.Name)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	if _, ok := named.(reference.Digested); ok {
		return fmt.Errorf("signing %s: name the image by tag, not by digest (the tag is the signature's identity)", ref)
	}
	named = reference.TagNameOnly(named)
	d, err := docker.NewReference(named)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	dg, err := godigest.Parse(digest.String())
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	byDigest, err := reference.WithDigest(reference.TrimNamed(named), dg)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	src, err := docker.NewReference(byDigest)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	sys, cleanup, err := reg.SystemContext(ref.Name, transport.DefaultPlatform())
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	defer cleanup()

	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer pc.Destroy()
	// Our own image, just pushed, copied onto itself: no policy to apply to the source.
	out, err := copy.Image(ctx, pc, d, src, &copy.Options{
		SourceCtx:        sys,
		DestinationCtx:   sys,
		Signers:          []*signer.Signer{s.s},
		PreserveDigests:  true,
		RemoveSignatures: true, // those already attached stay; we only add ours
	})
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	got, err := manifest.Digest(out)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	if got.String() != digest.String() {
		return fmt.Errorf("signing %s: the signed manifest is %s, not the pushed %s", ref, got, digest)
	}
	return nil
}

// Passphrase is a key passphrase as cosign reads it: the first line of file (without its line
// ending) if file is set, else fromEnv (the caller reads COSIGN_PASSWORD).
func Passphrase(file, fromEnv string) ([]byte, error) {
	if file == "" {
		return []byte(fromEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return []byte(strings.TrimSuffix(line, "\r")), nil
}
