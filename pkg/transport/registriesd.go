package transport

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.podman.io/storage/pkg/configfile"
	"go.podman.io/storage/pkg/unshare"
	"go.yaml.in/yaml/v3"
)

// RegistriesDConfig is the registries.d file that makes containers/image read (and write)
// sigstore attachments (cosign signatures, "sha256-DIGEST.sig" tags) for every registry: every
// registry client of this module adds it to its private copy of registries.d when no file there
// defines default-docker (see registriesDir). Tests and users that set up a registries.d of
// their own write it as it is.
var RegistriesDConfig = []byte("# Added by bootc: look up sigstore attachments (cosign signatures).\ndefault-docker:\n  use-sigstore-attachments: true\n")

// registriesDir copies the registries.d files containers/image would read (those of custom,
// or the system's) into a new temporary directory, adding RegistriesDConfig when none of them
// defines default-docker, and returns the directory. The caller removes it.
func registriesDir(custom string) (string, error) {
	conf := configfile.File{
		// As containers/image's docker.loadRegistryConfiguration.
		Name:                            "registries",
		Extension:                       "yaml",
		DoNotLoadMainFiles:              true,
		DoNotUseExtensionForConfigName:  true,
		UserId:                          unshare.GetRootlessUID(),
		CustomConfigFileDropInDirectory: custom,
	}
	dir, err := os.MkdirTemp("", "bootc-registries.d-")
	if err != nil {
		return "", err
	}
	hasDefault := false
	n := 0
	for item, err := range configfile.Read(&conf) {
		if err == nil {
			err = copyRegistriesFile(dir, n, item, &hasDefault)
		}
		if err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("reading the registries.d configuration: %w", err)
		}
		n++
	}
	if !hasDefault {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d-bootc-sigstore.yaml", n)), RegistriesDConfig, 0o644); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
	}
	return dir, nil
}

// copyRegistriesFile writes the nth file into dir, keeping the order, and notes whether it
// defines default-docker.
func copyRegistriesFile(dir string, n int, item *configfile.Item, hasDefault *bool) error {
	data, err := io.ReadAll(item.Reader)
	if err != nil {
		return err
	}
	var top struct {
		DefaultDocker *yaml.Node `yaml:"default-docker"`
	}
	if err := yaml.Unmarshal(data, &top); err != nil {
		return fmt.Errorf("parsing %s: %w", item.Name, err)
	}
	if top.DefaultDocker != nil {
		*hasDefault = true
	}
	return os.WriteFile(filepath.Join(dir, fmt.Sprintf("%04d-%s", n, filepath.Base(item.Name))), data, 0o644)
}
