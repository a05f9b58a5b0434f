package transport

import (
	"runtime"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Registries is the one registry configuration that every client of a registry reads: pull,
// inspect, verification, signing and push. Its zero value means the system's configuration.
//
// (Contract shared by the host library and the registry clients; the registry work fills in
// how each field is applied.)
type Registries struct {
	// ConfPath is a registries.conf that replaces the system's /etc/containers/registries.conf
	// (mirrors, blocked registries, insecure registries, short names); its drop-in directory
	// (ConfPath + ".d") is read too. "" means the system's file and drop-ins.
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
}

// DefaultPlatform is the platform picked from a multi-platform index when the caller names none:
// linux on this machine's architecture.
func DefaultPlatform() v1.Platform {
	return v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}
