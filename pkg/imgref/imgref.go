// Package imgref parses image references: the containers-transports syntax ("docker://REF",
// "oci:DIR[:REF]", "oci-archive:FILE[:REF]", "containers-storage:REF") and, later, ostree-ext's
// signature-verification prefixes. It does no I/O.
package imgref

import (
	"regexp"

	gcrname "github.com/google/go-containerregistry/pkg/name"

	"fmt"
	"strings"
)

// Transport names where an image lives.
type Transport string

// The transports.
const (
	Registry          Transport = "registry"
	OCI               Transport = "oci"
	OCIArchive        Transport = "oci-archive"
	ContainersStorage Transport = "containers-storage"
	// DockerArchive and Dir are parsed for compatibility with ostree-ext references; reading
	// them is not supported.
	DockerArchive Transport = "docker-archive"
	Dir           Transport = "dir"
)

// Ref is an image reference with its transport.
type Ref struct {
	Transport Transport
	// Name is the registry reference ("quay.io/fedora/fedora-coreos:stable"), the OCI layout
	// directory or archive file, or the containers-storage reference.
	Name string
	// Tag is the optional ":REF" of oci and oci-archive references.
	Tag string
}

// String returns the reference in containers-transports syntax.
func (r Ref) String() string {
	switch r.Transport {
	case Registry:
		return "docker://" + r.Name
	case OCI, OCIArchive:
		if r.Tag != "" {
			return string(r.Transport) + ":" + r.Name + ":" + r.Tag
		}
		return string(r.Transport) + ":" + r.Name
	}
	return string(r.Transport) + ":" + r.Name
}

// Parse parses "docker://REF", "registry:REF", "oci:DIR[:REF]", "oci-archive:FILE[:REF]" or
// "containers-storage:REF".
func Parse(s string) (Ref, error) {
	if rest, ok := strings.CutPrefix(s, "docker://"); ok {
		return registryRef(s, rest)
	}
	transport, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Ref{}, fmt.Errorf("image reference %q has no transport: write docker://%s, oci:DIR, oci-archive:FILE or containers-storage:%s", s, s, s)
	}
	switch Transport(transport) {
	case Registry:
		return registryRef(s, rest)
	case OCI, OCIArchive:
		path, tag, _ := strings.Cut(rest, ":")
		if path == "" {
			return Ref{}, fmt.Errorf("image reference %q: empty path", s)
		}
		return Ref{Transport: Transport(transport), Name: path, Tag: tag}, nil
	case ContainersStorage, DockerArchive, Dir:
		if rest == "" {
			return Ref{}, fmt.Errorf("image reference %q: empty name", s)
		}
		return Ref{Transport: Transport(transport), Name: rest}, nil
	case "docker":
		return Ref{}, fmt.Errorf("image reference %q: the docker transport is written docker://NAME", s)
	}
	return Ref{}, fmt.Errorf("image reference %q: unknown transport %q (use docker://, oci:, oci-archive: or containers-storage:)", s, transport)
}

func registryRef(s, name string) (Ref, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsAny(name, " \t\n") {
		return Ref{}, fmt.Errorf("image reference %q: %q is not a registry image name", s, name)
	}
	if _, err := gcrname.ParseReference(name); err != nil {
		return Ref{}, fmt.Errorf("image reference %q: %s", s, whyNotReference(name))
	}
	return Ref{Transport: Registry, Name: name}, nil
}

// whyNotReference says which part of a registry image name is wrong, and how to write it.
func whyNotReference(name string) string {
	repo, digest, hasDigest := strings.Cut(name, "@")
	if hasDigest {
		algo, hex, _ := strings.Cut(digest, ":")
		if algo != "sha256" || len(hex) != 64 || strings.Trim(hex, "0123456789abcdef") != "" {
			return fmt.Sprintf("the digest %q is not sha256: followed by 64 lower-case hex digits: write %s@sha256:<64 hex digits>, or use a tag", digest, repo)
		}
	}
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		tag := repo[i+1:]
		if repo = repo[:i]; !gcrTag.MatchString(tag) {
			return fmt.Sprintf("the tag %q may hold only letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')", tag)
		}
	}
	host, path, ok := strings.Cut(repo, "/")
	if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
		path = repo
	}
	if path != strings.ToLower(path) {
		return fmt.Sprintf("the repository %q must be lower case: write %s", path, strings.Replace(name, path, strings.ToLower(path), 1))
	}
	return fmt.Sprintf("%q is not REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] (repository: lower-case letters, digits and . _ - separators)", name)
}

var gcrTag = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
