// Package sign signs images in registries with a cosign key, storing each signature as a sigstore
// attachment beside the image: an OCI manifest tagged "sha256-<manifest hex>.sig" in the image's
// repository whose layers carry the simple-signing payloads, the layout `cosign sign` writes. The
// cosign CLI (`cosign verify --key`) and containers/image's policy engine (`sigstoreSigned` with
// `keyPath`, given a registries.d entry with `use-sigstore-attachments: true`) both verify them.
//
// The key is read as containers/image's sigstore signer reads it (the encrypted PEM of `cosign
// generate-key-pair`), and the payload is the one it writes: the signature's identity
// (critical.identity.docker-reference) is the reference as given, tag included, as `skopeo copy
// --sign-by-sigstore` writes it; `cosign sign` writes the repository without the tag. The signature
// is added to the image's attachment by transport.AttachSigstoreSignature, beside those already
// there; the image itself is only read (its manifest must be in the repository), not pushed again.
//
// The registry is reached with the caller's transport.Registries, the configuration the push and
// every reader use (registries.conf `blocked` and `insecure`, auth.json, certs.d; the sigstore
// attachments setting of transport.RegistriesDConfig unless registries.d says otherwise).
package sign

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/signature"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/version"

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
	key signature.Signer
}

// The PEM types of encrypted cosign private keys: the older, which `cosign generate-key-pair` and
// containers/image write, and the newer.
const (
	cosignPrivateKeyPEMType   = "ENCRYPTED COSIGN PRIVATE KEY"
	sigstorePrivateKeyPEMType = "ENCRYPTED SIGSTORE PRIVATE KEY"
)

// LoadKey reads and decrypts a cosign private key (the encrypted PEM `cosign generate-key-pair`
// writes; ECDSA, RSA or Ed25519, signing SHA-256 digests as cosign does) with passphrase, which may
// be empty but not nil.
func LoadKey(file string, passphrase []byte) (*Signer, error) {
	if passphrase == nil {
		passphrase = []byte{}
	}
	key, err := loadKey(file, passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKey, file, err)
	}
	return &Signer{key: key}, nil
}

// loadKey is containers/image's (and cosign's) loadPrivateKey, with its error messages.
func loadKey(file string, passphrase []byte) (signature.Signer, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading private key from %s: %w", file, err)
	}
	p, _ := pem.Decode(b)
	if p == nil {
		return nil, errors.New("initializing private key: invalid pem block")
	}
	if p.Type != sigstorePrivateKeyPEMType && p.Type != cosignPrivateKeyPEMType {
		return nil, fmt.Errorf("initializing private key: unsupported pem type: %s", p.Type)
	}
	der, err := encrypted.Decrypt(p.Bytes, passphrase)
	if err != nil {
		hint := ""
		if strings.Contains(err.Error(), "decryption failed") { // secretbox's: not the passphrase's key
			hint = " (wrong passphrase?)"
		}
		return nil, fmt.Errorf("initializing private key: decrypt: %w%s", err, hint)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("initializing private key: parsing private key: %w", err)
	}
	switch pk := pk.(type) {
	case *rsa.PrivateKey:
		return signature.LoadRSAPKCS1v15SignerVerifier(pk, crypto.SHA256)
	case *ecdsa.PrivateKey:
		return signature.LoadECDSASignerVerifier(pk, crypto.SHA256)
	case ed25519.PrivateKey:
		return signature.LoadED25519SignerVerifier(pk)
	default:
		return nil, fmt.Errorf("initializing private key: unsupported key type %T", pk)
	}
}

// Close releases the key.
func (s *Signer) Close() error { return nil }

// Sign signs the image with manifest digest at ref, a registry reference whose tag (default
// "latest") becomes the signature's identity, and stores the signature as a sigstore attachment in
// ref's repository, beside any signatures already there. The image must already be in that
// repository (ErrNotFound otherwise). reg is the registry configuration (the one the image was
// pushed with).
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
	pinned, err := transport.PinDigest(ref, digest)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	if _, err := transport.ManifestDigest(ctx, pinned, transport.WithRegistries(reg)); err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	payload, err := sigstorePayload(named.String(), digest, time.Now())
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	sig, err := s.key.SignMessage(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	err = transport.AttachSigstoreSignature(ctx, imgref.Ref{Transport: imgref.Registry, Name: named.String()}, digest, transport.SigstoreSignature{
		MediaType:   sigstorePayloadMediaType,
		Payload:     payload,
		Annotations: map[string]string{sigstoreSignatureAnnotation: base64.StdEncoding.EncodeToString(sig)},
	}, reg)
	if err != nil {
		return fmt.Errorf("signing %s: %w", ref, err)
	}
	return nil
}

// The sigstore attachment layer of a cosign signature: its media type, and the annotation with
// the signature.
const (
	sigstorePayloadMediaType    = "application/vnd.dev.cosign.simplesigning.v1+json"
	sigstoreSignatureAnnotation = "dev.cosignproject.cosign/signature"
)

// sigstorePayload is the simple-signing payload containers/image signs for identity (a docker
// reference) and the manifest digest, byte for byte: its creator (containers/image's version,
// whose format it is) and the time in seconds are optional fields, which verifiers ignore.
func sigstorePayload(identity string, digest v1.Hash, now time.Time) ([]byte, error) {
	return json.Marshal(map[string]any{
		"critical": map[string]any{
			"type":     "cosign container image signature",
			"image":    map[string]string{"docker-manifest-digest": digest.String()},
			"identity": map[string]string{"docker-reference": identity},
		},
		"optional": map[string]any{
			"creator":   "containers/image " + version.Version,
			"timestamp": now.Unix(),
		},
	})
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
