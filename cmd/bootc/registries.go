package main

import (
	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/transport"
)

// Global flags of the registry configuration, read by every command that reaches a registry
// (pull, verify, push, sign), as skopeo and podman take them.
func registriesFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "registries-conf", EnvVars: []string{"CONTAINERS_REGISTRIES_CONF"}, Usage: "a registries.conf (mirrors, blocked and insecure registries) to use instead of /etc/containers/registries.conf"},
		&cli.StringFlag{Name: "authfile", EnvVars: []string{"REGISTRY_AUTH_FILE"}, Usage: "the auth.json with registry credentials (default: containers' lookup)"},
		&cli.StringFlag{Name: "cert-dir", Usage: "a certs.d-style directory of registry certificates (default /etc/containers/certs.d)"},
	}
}

// registriesConfig is the registry configuration the global flags give; tmpDir is where large
// temporary data goes ("" for the system temp directory).
func registriesConfig(c *cli.Context, tmpDir string) transport.Registries {
	return transport.Registries{
		ConfPath:      globalString(c, "registries-conf"),
		AuthFile:      globalString(c, "authfile"),
		CertDir:       globalString(c, "cert-dir"),
		RegistriesDir: globalString(c, "registries-d"),
		TmpDir:        tmpDir,
	}
}
