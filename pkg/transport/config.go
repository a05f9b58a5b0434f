package transport

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
)

// Registries is the one registry configuration that every client of a registry reads: pull,
// inspect, verification, signing and push. Its zero value means the system's configuration.
//
// Every registry request goes through containers/image with the types.SystemContext that
// [Registries.SystemContext] makes of it, so that the rules are the same everywhere:
//
//   - registries.conf (ConfPath and its drop-ins) decides mirrors, `blocked` (refused with
//     [ErrBlocked] before any request) and `insecure` (plain HTTP, or TLS without verification);
//   - a registry on a loopback address (localhost, 127.0.0.0/8, ::1) is reached over plain HTTP
//     too, when every endpoint a reference resolves to (its mirrors and its own location) is on
//     loopback; a loopback mirror of a remote registry needs `insecure = true`;
//   - no other registry is reached over plain HTTP (private addresses included).
type Registries struct {
	// ConfPath is a registries.conf that replaces the system's /etc/containers/registries.conf
	// (mirrors, blocked registries, insecure registries, short names); its drop-in directory
	// (ConfPath + ".d") is read too. "" means the system's file and drop-ins, as
	// containers/image finds them (which includes the CONTAINERS_REGISTRIES_CONF variable: the
	// library does not read it, containers/image does).
	ConfPath string
	// AuthFile is the auth.json with registry credentials ("" means the containers default
	// lookup: $XDG_RUNTIME_DIR/containers/auth.json, then ~/.docker/config.json).
	AuthFile string
	// CertDir is a directory of per-registry certificates in the certs.d layout ("" means
	// /etc/containers/certs.d and /etc/docker/certs.d).
	CertDir string
	// RegistriesDir is the registries.d directory that says where signatures are stored ("" means
	// /etc/containers/registries.d and /usr/share/containers/registries.d).
	RegistriesDir string
	// TmpDir is where large temporary data (an unpacked oci-archive) goes; "" means the system
	// temp directory. Callers that own a repository put it next to the repository.
	TmpDir string
	// Proxy, when set, returns the HTTP proxy for a registry request's URL (nil for a direct
	// connection); nil means containers/image's default (the HTTPS_PROXY, HTTP_PROXY and
	// NO_PROXY variables).
	Proxy func(*url.URL) (*url.URL, error)
}

// ErrBlocked reports a reference whose registry registries.conf blocks (`blocked = true`). No
// request is made to it, nor to its mirrors.
var ErrBlocked = errors.New("registry blocked by registries.conf")

// DefaultPlatform is the platform picked from a multi-platform index when the caller names none:
// linux on this machine's architecture.
func DefaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// SystemContext returns the containers/image configuration for reaching the registry of name
// (a docker reference without transport: "quay.io/fedora/fedora:40"), for the platform's
// instance of a multi-platform index, and a function that removes what it created (a private
// registries.d, see [RegistriesDConfig]). It refuses a blocked registry ([ErrBlocked]).
func (r Registries) SystemContext(name string, platform v1.Platform) (*types.SystemContext, func(), error) {
	sys := r.baseContext(platform)
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	reg, err := sysregistriesv2.FindRegistry(sys, named.String())
	if err != nil {
		return nil, nil, fmt.Errorf("reading the registries configuration (%s): %w", sysregistriesv2.ConfigurationSourceDescription(sys), err)
	}
	if reg != nil && reg.Blocked {
		return nil, nil, fmt.Errorf("%w: %s is blocked by the entry %q of %s", ErrBlocked, name, reg.Prefix, sysregistriesv2.ConfigurationSourceDescription(sys))
	}
	loopback, err := loopbackOnly(reg, named)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if loopback {
		sys.DockerInsecureSkipTLSVerify = types.OptionalBoolTrue
	}
	dir, err := registriesDir(r.RegistriesDir)
	if err != nil {
		return nil, nil, err
	}
	sys.RegistriesDirPath = dir
	return sys, func() { os.RemoveAll(dir) }, nil
}

// baseContext is the part of the configuration that does not depend on the registry: where
// registries.conf, auth.json and certificates are, and where big temporary files go.
func (r Registries) baseContext(platform v1.Platform) *types.SystemContext {
	sys := &types.SystemContext{
		AuthFilePath:             r.AuthFile,
		DockerPerHostCertDirPath: r.CertDir,
		BigFilesTemporaryDir:     r.TmpDir,
		OSChoice:                 platform.OS,
		ArchitectureChoice:       platform.Architecture,
		VariantChoice:            platform.Variant,
		DockerProxy:              r.Proxy,
	}
	if r.ConfPath != "" {
		sys.SystemRegistriesConfPath = r.ConfPath
		sys.SystemRegistriesConfDirPath = r.ConfPath + ".d"
	}
	return sys
}

// loopbackOnly reports whether every endpoint a pull of named may reach (its mirrors, then its
// location) is on a loopback address. reg is named's registries.conf entry, or nil.
func loopbackOnly(reg *sysregistriesv2.Registry, named reference.Named) (bool, error) {
	if reg == nil {
		return loopbackHost(reference.Domain(named)), nil
	}
	sources, err := reg.PullSourcesFromReference(named)
	if err != nil {
		return false, err
	}
	for _, s := range sources {
		if !loopbackHost(reference.Domain(s.Reference)) {
			return false, nil
		}
	}
	return len(sources) > 0, nil
}

// loopbackHost reports whether a registry host ("HOST[:PORT]") is on a loopback address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
