package transport

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.podman.io/image/v5/types"
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

// registriesDFiles finds the registries.d files as containers/image's
// docker.loadRegistryConfiguration does: those of dir ("" for the system's directories), with
// absolute paths under root ("" for /).
func registriesDFiles(dir, root string) *configfile.File {
	return &configfile.File{
		Name:                            "registries",
		Extension:                       "yaml",
		DoNotLoadMainFiles:              true,
		DoNotUseExtensionForConfigName:  true,
		UserId:                          unshare.GetRootlessUID(),
		RootForImplicitAbsolutePaths:    root,
		CustomConfigFileDropInDirectory: dir,
	}
}

// registriesDir copies the registries.d files containers/image would read (those of custom,
// or the system's) into a new temporary directory, adding RegistriesDConfig when none of them
// defines default-docker, and returns the directory. The caller removes it.
func registriesDir(custom string) (string, error) {
	conf := registriesDFiles(custom, "")
	dir, err := os.MkdirTemp("", "bootc-registries.d-")
	if err != nil {
		return "", err
	}
	hasDefault := false
	n := 0
	for item, err := range configfile.Read(conf) {
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

// sigstoreAttachments reports whether the registries.d configuration of sys (the directory
// RegistriesDirPath, which [Registries.SystemContext] always makes) has containers/image read and
// write sigstore attachments for ref, by containers/image's rules: the files are merged (a
// namespace, or default-docker, defined twice is an error), then the first of ref's own entry under
// `docker`, its enclosing namespaces' (the longest first) and `default-docker` that sets
// use-sigstore-attachments decides; none means no.
func sigstoreAttachments(sys *types.SystemContext, ref types.ImageReference) (bool, error) {
	type namespace struct {
		UseSigstoreAttachments *bool `yaml:"use-sigstore-attachments"`
	}
	var dflt *namespace
	dfltFrom := ""
	docker := map[string]namespace{}
	from := map[string]string{}
	for item, err := range configfile.Read(registriesDFiles(sys.RegistriesDirPath, sys.RootForImplicitAbsolutePaths)) {
		if err != nil {
			return false, fmt.Errorf("reading the registries.d configuration: %w", err)
		}
		data, err := io.ReadAll(item.Reader)
		if err != nil {
			return false, err
		}
		var file struct {
			DefaultDocker *namespace           `yaml:"default-docker"`
			Docker        map[string]namespace `yaml:"docker"`
		}
		if err := yaml.Unmarshal(data, &file); err != nil {
			return false, fmt.Errorf("parsing %s: %w", item.Name, err)
		}
		if file.DefaultDocker != nil {
			if dflt != nil {
				return false, fmt.Errorf("registries.d: default-docker is defined both in %s and %s", dfltFrom, item.Name)
			}
			dflt, dfltFrom = file.DefaultDocker, item.Name
		}
		for ns, c := range file.Docker {
			if _, ok := docker[ns]; ok {
				return false, fmt.Errorf("registries.d: docker namespace %q is defined both in %s and %s", ns, from[ns], item.Name)
			}
			docker[ns], from[ns] = c, item.Name
		}
	}
	for _, ns := range append([]string{ref.PolicyConfigurationIdentity()}, ref.PolicyConfigurationNamespaces()...) {
		if c, ok := docker[ns]; ok && c.UseSigstoreAttachments != nil {
			return *c.UseSigstoreAttachments, nil
		}
	}
	if dflt != nil && dflt.UseSigstoreAttachments != nil {
		return *dflt.UseSigstoreAttachments, nil
	}
	return false, nil
}
