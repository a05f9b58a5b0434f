// Package verify decides whether a host may deploy an image, by the containers ecosystem's
// trust policy (containers-policy.json(5)), before any of the image's content is fetched, and
// says exactly which manifest it checked so that the pull can be pinned to it.
//
// # API
//
//	reg := transport.Registries{ConfPath: "/etc/containers/registries.conf"} // or the zero value
//	v, err := verify.Verify(ctx, ref, verify.Options{Registries: reg})
//	// v == nil for ostree-unverified-* references: nothing to check.
//	imagestore.Pull(ctx, repo, ref, imagestore.PullOptions{ExpectDigest: &v.Digest, Registries: reg})
//
// Verify evaluates the policy with go.podman.io/image/v5's signature package, so every
// requirement it knows works as it does for podman and skopeo: insecureAcceptAnything,
// reject, signedBy (GPG keys; built with the containers_image_openpgp tag it uses a pure-Go
// OpenPGP), sigstoreSigned (public keys, or Fulcio and Rekor material given as files: all
// offline), scopes per transport and repository, and signedIdentity rules.
//
// # Semantics
//
//   - ostree-unverified-image:, ostree-unverified-registry: Verify returns (nil, nil); the
//     caller skips signatures (digests are still checked by the pull, blob by blob).
//   - ostree-image-signed: the requirements that apply to the image (the scope, see
//     [Verified.Scope]) must not include insecureAcceptAnything ([ErrAcceptsAnything]; this is
//     checked before the image is contacted), at least one of them must verify signatures (as
//     skopeo's and containers-image-proxy's --require-signed), and the policy must accept the
//     image. A refusal is a [*RejectedError] naming the image, the manifest digest, the scope
//     and the reason.
//   - ostree-remote-*: [ErrOstreeRemoteUnsupported] (ostree commit signatures are not
//     implemented).
//
// For a multi-platform index, the instance for Options.Platform is chosen from the index and
// that instance's signatures are verified, as containers/image's copy.Image does when it
// copies one image of a list; [Verified.Digest] is the instance's digest and
// [Verified.IndexDigest] the index's.
//
// # Where signatures are looked up
//
// Registry signatures are read as containers/image reads them: lookaside storage configured in
// registries.d, and sigstore attachments (cosign's "sha256-DIGEST.sig" tags). Because a
// sigstoreSigned policy would otherwise fail on a host whose registries.d does not mention
// attachments, Verify runs with a private copy of the registries.d configuration to which
// transport.RegistriesDConfig is added when no file defines "default-docker" (see
// transport.Registries.SystemContext). A host that defines default-docker, or a per-registry
// entry, keeps its own choice.
//
// OCI layouts and archives cannot hold signatures: a policy that requires one for an oci: or
// oci-archive: image refuses it, and the error says so.
//
// The image and its signatures are read with Options.Registries, the one registry
// configuration the pull uses too (registries.conf mirrors, blocked and insecure registries,
// auth.json, certs.d; see package transport): a blocked registry is refused before any request
// (transport.ErrBlocked), and the pull that follows reads the digest verified through the same
// mirrors.
package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
)

// DefaultPolicyPath is where the trust policy is read from unless Options.PolicyPath says.
const DefaultPolicyPath = "/etc/containers/policy.json"

// Errors callers test for (with errors.Is).
var (
	// ErrRejected: the trust policy refuses the image. Always carried by a *RejectedError.
	ErrRejected = errors.New("image rejected by the trust policy")
	// ErrAcceptsAnything: an ostree-image-signed: reference whose policy scope includes
	// insecureAcceptAnything, which would verify nothing. Carried by a *RejectedError.
	ErrAcceptsAnything = errors.New("the trust policy accepts any image here, so a signed reference would check nothing")
	// ErrInvalidPolicy: the policy file cannot be read or parsed.
	ErrInvalidPolicy = errors.New("invalid trust policy")
	// ErrOstreeRemoteUnsupported: ostree-remote-image: and ostree-remote-registry: references
	// ask for ostree commit signatures, which are not implemented.
	ErrOstreeRemoteUnsupported = errors.New("verifying ostree commit signatures with an ostree remote's keys is not supported")
)

// Options configures Verify. The zero value uses the system's configuration.
type Options struct {
	// PolicyPath is the containers-policy.json to apply (default DefaultPolicyPath).
	PolicyPath string
	// Platform selects the instance of a multi-platform index (default: linux and this
	// machine's architecture, as the pull does).
	Platform *v1.Platform
	// Registries is the registry configuration the image and its signatures are read with; the
	// pull that follows must use the same.
	Registries transport.Registries
}

func (o *Options) policyPath() string {
	if o.PolicyPath != "" {
		return o.PolicyPath
	}
	return DefaultPolicyPath
}

func (o *Options) platform() v1.Platform {
	if o.Platform != nil {
		return *o.Platform
	}
	return transport.DefaultPlatform()
}

// Verified is what Verify checked: pull exactly Digest.
type Verified struct {
	Ref imgref.OstreeRef
	// Digest is the manifest digest whose signatures were verified: for a multi-platform
	// index, that of the instance for the platform.
	Digest v1.Hash
	// IndexDigest is the index's digest when Ref names a multi-platform index, else zero.
	IndexDigest v1.Hash
	// Scope is the policy scope that applied, as "TRANSPORT: SCOPE" ("docker:
	// 127.0.0.1:5000/os"), "TRANSPORT: \"\"" for a transport's default, or "default".
	Scope string
	// Policy is the policy file that was applied.
	Policy string
}

// RejectedError is a refusal by the trust policy. It matches ErrRejected, and
// ErrAcceptsAnything when that is the reason, with errors.Is.
type RejectedError struct {
	// Image is the reference as given.
	Image string
	// Digest is the manifest digest that was evaluated ("" when the image was refused
	// before it was contacted).
	Digest string
	// Policy is the policy file; Scope the scope of it that applied (see Verified.Scope).
	Policy, Scope string
	// Reason says why, in the policy's words.
	Reason string
	// Err is the underlying error: ErrAcceptsAnything, or what containers/image's policy
	// evaluation returned (usually a signature.PolicyRequirementError; also an invalid
	// signature, or a key or signature that could not be read).
	Err error
	// hint says what to do.
	hint string
}

func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "image %s", e.Image)
	if e.Digest != "" {
		fmt.Fprintf(&b, " (manifest %s)", e.Digest)
	}
	fmt.Fprintf(&b, " rejected by the trust policy %s, scope %s: %s", e.Policy, e.Scope, e.Reason)
	if e.hint != "" {
		b.WriteString("; " + e.hint)
	}
	return b.String()
}

// Unwrap returns ErrRejected and the underlying error.
func (e *RejectedError) Unwrap() []error { return []error{ErrRejected, e.Err} }

// Verify checks ref's image against the trust policy (see the package documentation) and
// returns what it verified; it returns (nil, nil) for unverified references. From a
// registry only manifests and signatures are read (an oci-archive is unpacked to a temporary
// directory by containers/image); nothing is written to an ostree repository.
func Verify(ctx context.Context, ref imgref.OstreeRef, o Options) (*Verified, error) {
	switch ref.SigVerify {
	case imgref.Unverified:
		return nil, nil
	case imgref.OstreeRemote:
		return nil, fmt.Errorf("%w: %s (use ostree-image-signed: with a containers-policy.json that requires the image's signatures, or %s to deploy it without verification)",
			ErrOstreeRemoteUnsupported, ref, imgref.OstreeRef{SigVerify: imgref.Unverified, Image: ref.Image})
	case imgref.ContainerPolicy:
	default:
		return nil, fmt.Errorf("%s: unknown signature verification scheme", ref)
	}
	policyPath := o.policyPath()
	policy, err := loadPolicy(policyPath)
	if err != nil {
		return nil, err
	}
	imgRef, err := transport.ContainersRef(ref.Image)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	scope, reqs := Scope(policy, imgRef)
	rejected := func(digest string, reason string, err error, hint string) *RejectedError {
		return &RejectedError{Image: ref.String(), Digest: digest, Policy: policyPath, Scope: scope, Reason: reason, Err: err, hint: hint}
	}
	if AcceptsAnything(reqs) {
		return nil, rejected("", "the requirements include insecureAcceptAnything", ErrAcceptsAnything,
			fmt.Sprintf("require signatures for this scope in %s (sigstoreSigned or signedBy), or use %s to deploy without verification",
				policyPath, imgref.OstreeRef{SigVerify: imgref.Unverified, Image: ref.Image}))
	}

	sys, cleanup, err := systemContext(ref.Image, o)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	src, err := imgRef.NewImageSource(ctx, sys)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: opening the image: %w", ref, err)
	}
	defer src.Close()

	v := &Verified{Ref: ref, Scope: scope, Policy: policyPath}
	top := image.UnparsedInstance(src, nil)
	untrustedTop, mt, err := top.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: reading the manifest: %w", ref, err)
	}
	topDigest, err := manifest.Digest(untrustedTop)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	unparsed := top
	instance := topDigest
	if manifest.MIMETypeIsMultiImage(manifest.NormalizedMIMEType(mt)) {
		list, err := manifest.ListFromBlob(untrustedTop, manifest.NormalizedMIMEType(mt))
		if err != nil {
			return nil, fmt.Errorf("verifying %s: parsing the index %s: %w", ref, topDigest, err)
		}
		p := o.platform()
		instance, err = list.ChooseInstance(&types.SystemContext{OSChoice: p.OS, ArchitectureChoice: p.Architecture, VariantChoice: p.Variant})
		if err != nil {
			return nil, fmt.Errorf("verifying %s: index %s: %w", ref, topDigest, err)
		}
		unparsed = image.UnparsedInstance(src, &instance)
		if v.IndexDigest, err = v1.NewHash(topDigest.String()); err != nil {
			return nil, fmt.Errorf("verifying %s: %w", ref, err)
		}
	}

	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	defer pc.Destroy()
	pc.RequireSignatureVerification(true)
	allowed, err := pc.IsRunningImageAllowed(ctx, unparsed)
	if !allowed || err != nil {
		// Whatever made the policy say no (a requirement, an invalid signature, a key file
		// it could not read, signatures it could not fetch) is the reason of the refusal.
		if err == nil {
			err = signature.PolicyRequirementError("the policy did not allow the image")
		}
		return nil, rejected(instance.String(), strings.TrimSuffix(err.Error(), "."), err, hint(ref, policyPath))
	}
	// IsRunningImageAllowed checked the signatures against the manifest it read; make sure
	// we report that manifest's digest (UnparsedImage caches it, and checks an instance's
	// manifest against its digest).
	verifiedManifest, _, err := unparsed.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	d, err := manifest.Digest(verifiedManifest)
	if err != nil {
		return nil, err
	}
	if d != instance {
		return nil, fmt.Errorf("verifying %s: the manifest changed while it was verified (%s, then %s)", ref, instance, d)
	}
	if v.Digest, err = v1.NewHash(d.String()); err != nil {
		return nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	return v, nil
}

// hint says what to do about a refusal.
func hint(ref imgref.OstreeRef, policyPath string) string {
	switch ref.Image.Transport {
	case imgref.OCI, imgref.OCIArchive:
		return fmt.Sprintf("an OCI layout or archive cannot hold signatures: verify the image from a registry that holds its signatures, or, if you trust %s, use %s",
			ref.Image.Name, imgref.OstreeRef{SigVerify: imgref.Unverified, Image: ref.Image})
	}
	return fmt.Sprintf("sign the image with a key the policy trusts for this scope, or change %s", policyPath)
}

// loadPolicy reads and parses a policy file, strictly (containers/image rejects unknown and
// duplicate keys).
func loadPolicy(path string) (*signature.Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrInvalidPolicy, path, err)
	}
	p, err := signature.NewPolicyFromBytes(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalidPolicy, path, err)
	}
	return p, nil
}

// Scope returns the requirements of policy that apply to ref, and names the scope they come
// from, choosing as containers/image does: the transport's scope for the image's identity,
// then for each of its namespaces from the most specific, then the transport's "" scope, then
// the policy's default.
func Scope(policy *signature.Policy, ref types.ImageReference) (string, signature.PolicyRequirements) {
	transport := ref.Transport().Name()
	if scopes, ok := policy.Transports[transport]; ok {
		identity := ref.PolicyConfigurationIdentity()
		if reqs, ok := scopes[identity]; ok {
			return transport + ": " + identity, reqs
		}
		for _, ns := range ref.PolicyConfigurationNamespaces() {
			if reqs, ok := scopes[ns]; ok {
				return transport + ": " + ns, reqs
			}
		}
		if reqs, ok := scopes[""]; ok {
			return transport + `: ""`, reqs
		}
	}
	return "default", policy.Default
}

// AcceptsAnything reports whether reqs include insecureAcceptAnything.
func AcceptsAnything(reqs signature.PolicyRequirements) bool {
	for _, r := range reqs {
		// The requirement types are unexported; their JSON form names them.
		data, err := json.Marshal(r)
		if err != nil {
			continue
		}
		var t struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(data, &t) == nil && t.Type == "insecureAcceptAnything" {
			return true
		}
	}
	return false
}

// systemContext returns the containers/image configuration for reading ref's image and its
// signatures (o.Registries, see package transport), and a function removing what it created.
func systemContext(ref imgref.Ref, o Options) (*types.SystemContext, func(), error) {
	reg := o.Registries
	if ref.Transport != imgref.Registry {
		p := o.platform()
		return &types.SystemContext{OSChoice: p.OS, ArchitectureChoice: p.Architecture, VariantChoice: p.Variant, BigFilesTemporaryDir: reg.TmpDir}, func() {}, nil
	}
	sys, cleanup, err := reg.SystemContext(ref.Name, o.platform())
	if err != nil {
		return nil, nil, fmt.Errorf("verifying %s: %w", ref, err)
	}
	return sys, cleanup, nil
}
