package imgref

import (
	"fmt"
	"strings"
)

// SigVerify is how an image's signature is checked before it is deployed (ostree-ext's
// SignatureSource).
type SigVerify int

// The signature verification schemes.
const (
	// Unverified skips signature checks ("ostree-unverified-image:", "ostree-unverified-registry:").
	Unverified SigVerify = iota
	// ContainerPolicy defers to containers-policy.json, which must not accept anything
	// unsigned for the image ("ostree-image-signed:").
	ContainerPolicy
	// OstreeRemote verifies the ostree commit's signature with the keys of an ostree remote
	// ("ostree-remote-image:REMOTE:", "ostree-remote-registry:REMOTE:").
	OstreeRemote
)

// OstreeRef is an image reference with its signature verification scheme, in ostree-ext's
// syntax: "<sigverify>:<transport>:<name>".
type OstreeRef struct {
	SigVerify SigVerify
	// Remote names the ostree remote for OstreeRemote.
	Remote string
	Image  Ref
}

// ParseOstree parses an ostree-ext image reference:
//
//	ostree-unverified-registry:NAME             (registry)
//	ostree-unverified-image:TRANSPORT:NAME
//	ostree-image-signed:TRANSPORT:NAME
//	ostree-remote-registry:REMOTE:NAME          (registry)
//	ostree-remote-image:REMOTE:TRANSPORT:NAME
//
// TRANSPORT:NAME is as for Parse ("registry:NAME" and "docker://NAME" are the same).
func ParseOstree(s string) (OstreeRef, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok {
		return OstreeRef{}, fmt.Errorf("image reference %q has no signature scheme: write ostree-unverified-registry:%s, ostree-image-signed:docker://%s, or use the transport form", s, s, s)
	}
	image := func(r string) (Ref, error) {
		ref, err := Parse(r)
		if err != nil {
			return Ref{}, fmt.Errorf("%s: %w", s, err)
		}
		return ref, nil
	}
	remote := func(r string) (string, string, error) {
		name, tail, ok := strings.Cut(r, ":")
		if !ok || name == "" || tail == "" {
			return "", "", fmt.Errorf("image reference %q: expected %s:REMOTE:...", s, scheme)
		}
		return name, tail, nil
	}
	switch scheme {
	case "ostree-unverified-registry":
		ref, err := registryRef(s, rest)
		return OstreeRef{SigVerify: Unverified, Image: ref}, err
	case "ostree-unverified-image":
		ref, err := image(rest)
		return OstreeRef{SigVerify: Unverified, Image: ref}, err
	case "ostree-image-signed":
		ref, err := image(rest)
		return OstreeRef{SigVerify: ContainerPolicy, Image: ref}, err
	case "ostree-remote-registry":
		name, tail, err := remote(rest)
		if err != nil {
			return OstreeRef{}, err
		}
		ref, err := registryRef(s, tail)
		return OstreeRef{SigVerify: OstreeRemote, Remote: name, Image: ref}, err
	case "ostree-remote-image":
		name, tail, err := remote(rest)
		if err != nil {
			return OstreeRef{}, err
		}
		ref, err := image(tail)
		return OstreeRef{SigVerify: OstreeRemote, Remote: name, Image: ref}, err
	}
	return OstreeRef{}, fmt.Errorf("image reference %q: unknown signature scheme %q (use ostree-unverified-registry, ostree-unverified-image, ostree-image-signed, ostree-remote-registry or ostree-remote-image)", s, scheme)
}

// String returns the canonical form, as ostree-ext displays it: unverified registry images as
// "ostree-unverified-registry:NAME", registries otherwise as "docker://NAME".
func (r OstreeRef) String() string {
	switch r.SigVerify {
	case Unverified:
		if r.Image.Transport == Registry {
			return "ostree-unverified-registry:" + r.Image.Name
		}
		return "ostree-unverified-image:" + r.Image.String()
	case ContainerPolicy:
		return "ostree-image-signed:" + r.Image.String()
	case OstreeRemote:
		return "ostree-remote-image:" + r.Remote + ":" + r.Image.String()
	}
	return fmt.Sprintf("SigVerify(%d):%s", int(r.SigVerify), r.Image)
}

// ParseOrRegistry parses s as a containers-transports reference (Parse) or, when that fails, as
// a bare registry name ("quay.io/org/os"): how bootc's REPO arguments and the update agent's
// [updates] releases key are read.
func ParseOrRegistry(s string) (Ref, error) {
	if ref, err := Parse(s); err == nil {
		return ref, nil
	}
	return FromTransport("", s)
}

// FromTransport builds a reference from bootc's `--transport T IMAGE` form, where T is
// registry (the default), oci, oci-archive or containers-storage.
func FromTransport(transport, name string) (Ref, error) {
	if transport == "" {
		transport = string(Registry)
	}
	switch Transport(transport) {
	case Registry:
		return registryRef("registry:"+name, strings.TrimPrefix(name, "docker://"))
	case OCI, OCIArchive, ContainersStorage:
		return Parse(transport + ":" + name)
	}
	return Ref{}, fmt.Errorf("--transport %q: use registry, oci, oci-archive or containers-storage", transport)
}
