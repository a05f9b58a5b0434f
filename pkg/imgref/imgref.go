// Package imgref parses image references: the containers-transports syntax ("docker://REF",
// "oci:DIR[:REF]", "oci-archive:FILE[:REF]", "containers-storage:REF") and, later, ostree-ext's
// signature-verification prefixes. It does no I/O.
package imgref

import (
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
	return Ref{Transport: Registry, Name: name}, nil
}
