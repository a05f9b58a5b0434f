package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
)

// Podman Machine drives a bootc guest with fixed command lines (containers/podman
// pkg/machine/os/ostree.go and bootc.go at commit c6580b4a5219, version 6.0.0-dev):
//
//	os apply:   sudo bootc switch [--transport containers-storage|oci|oci-archive] REF
//	            (registry, docker:// and bare names: no --transport; oci:DIR:TAG loses :TAG)
//	os upgrade: sudo bootc status --format json   decoded into BootcHost below
//	            ostree container image metadata --repo /ostree/repo docker://BOOTED
//	            (no sudo; the output is read as an OCI manifest: manifest.FromBlob, then
//	            ConfigInfo().Digest is compared with the registry's)
//	            sudo bootc upgrade                    (same MAJ.MIN, new config digest)
//	            sudo bootc switch NAME:MAJ.MIN        (client newer than the machine)
//
// The test replays them on a sysroot directory, adding --sysroot, and runs the metadata call
// through the real ostree CLI, which finds ostree-container on $PATH (here: this test binary,
// see TestMain). The VM test covers /usr/libexec/libostree/ext/ostree-container.

// The types below are copied from containers/podman pkg/machine/os/bootc.go (commit
// c6580b4a5219c9efb9ab79a540637d8a58b736f8, podman 6.0.0-dev), Apache-2.0, Copyright The
// Podman Authors; only renamed with a podman prefix. They are what podman decodes
// `bootc status --format json` into.
type podmanBootcHost struct {
	APIVersion string              `json:"apiVersion"`
	Kind       string              `json:"kind"`
	Metadata   podmanBootcMetadata `json:"metadata"`
	Spec       podmanBootcSpec     `json:"spec"`
	Status     podmanBootcStatus   `json:"status"`
}

type podmanBootcMetadata struct {
	Name string `json:"name"`
}

type podmanBootcSpec struct {
	BootOrder string         `json:"bootOrder"`
	Image     podmanImageRef `json:"image"`
}

type podmanImageRef struct {
	Image     string `json:"image"`
	Transport string `json:"transport"`
}

type podmanBootcStatus struct {
	Booted         *podmanBootEntry `json:"booted"`
	Rollback       *podmanBootEntry `json:"rollback"`
	Staged         *podmanBootEntry `json:"staged"`
	RollbackQueued bool             `json:"rollbackQueued"`
	Type           string           `json:"type"`
}

type podmanBootEntry struct {
	CachedUpdate      *podmanImageStatus `json:"cachedUpdate"`
	Image             podmanImageStatus  `json:"image"`
	Incompatible      bool               `json:"incompatible"`
	Ostree            podmanOstreeInfo   `json:"ostree"`
	Pinned            bool               `json:"pinned"`
	SoftRebootCapable bool               `json:"softRebootCapable"`
	Store             string             `json:"store"`
}

type podmanImageStatus struct {
	Architecture string                `json:"architecture"`
	Image        podmanImageRefWithSig `json:"image"`
	ImageDigest  string                `json:"imageDigest"`
	Timestamp    time.Time             `json:"timestamp"`
	Version      string                `json:"version"`
}

type podmanImageRefWithSig struct {
	Image     string           `json:"image"`
	Transport string           `json:"transport"`
	Signature *podmanSignature `json:"signature,omitempty"`
}

type podmanSignature struct {
	OstreeRemote string `json:"ostreeRemote"`
}

type podmanOstreeInfo struct {
	Checksum     string `json:"checksum"`
	DeploySerial int    `json:"deploySerial"`
	Stateroot    string `json:"stateroot"`
}

// podmanStatus runs podman's status call and decodes it as podman does.
func podmanStatus(t *testing.T, sys string) *podmanBootcHost {
	t.Helper()
	var h podmanBootcHost
	out := mustRun(t, "--sysroot", sys, "status", "--format", "json")
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("podman's BootcHost cannot decode bootc status --format json: %v\n%s", err, out)
	}
	return &h
}

// podmanBooted checks what podman reads of the booted image: the reference and its timestamp.
func podmanBooted(t *testing.T, h *podmanBootcHost, wantImage, wantTransport string) {
	t.Helper()
	if h.Status.Booted == nil {
		t.Fatalf("status.booted is null")
	}
	img := h.Status.Booted.Image
	if img.Image.Image != wantImage || img.Image.Transport != wantTransport || img.Timestamp.IsZero() || img.Version == "" {
		t.Errorf("status.booted.image = %+v, want image %q transport %q with a timestamp and version", img, wantImage, wantTransport)
	}
}

// ostreeExtensionPath is a $PATH on which the ostree CLI finds this test binary as ostree-container.
func ostreeExtensionPath(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/libexec/libostree/ext/" + ostreeContainerName); err == nil {
		t.Skipf("/usr/libexec/libostree/ext/%s exists: the ostree CLI would run it, not bootc", ostreeContainerName)
	}
	self, err := os.Executable()
	must(t, err)
	dir := t.TempDir()
	must(t, os.Symlink(self, filepath.Join(dir, ostreeContainerName)))
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}

// podmanLocalConfigDigest is podman's getLocalOsImageDigest: the real ostree CLI, decoded with
// containers/image's manifest.FromBlob as an OCI manifest.
func podmanLocalConfigDigest(t *testing.T, path, repo, booted string) string {
	t.Helper()
	cmd := exec.Command("ostree", "container", "image", "metadata", "--repo", repo, "docker://"+booted)
	cmd.Env = append(os.Environ(), "PATH="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, stderr.String())
	}
	m, err := manifest.FromBlob(out, ocispec.MediaTypeImageManifest)
	if err != nil {
		t.Fatalf("podman cannot read the metadata output %q: %v", out, err)
	}
	return m.ConfigInfo().Digest.String()
}

// registryConfigDigest is the config digest podman compares with: podman's in-band check
// (checkInBandUpgrade) reads the tag as a manifest list (containers/image manifest.ListFromBlob,
// which refuses a single image's manifest), picks the host's instance and reads its config.
func registryConfigDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref)
	must(t, err)
	desc, err := remote.Get(r)
	must(t, err)
	list, err := manifest.ListFromBlob(desc.Manifest, string(desc.MediaType))
	if err != nil {
		t.Fatalf("podman machine os upgrade cannot read %s (%s): %v", ref, desc.MediaType, err)
	}
	instance, err := list.ChooseInstance(&types.SystemContext{})
	must(t, err)
	img, err := remote.Image(r.Context().Digest(instance.String()))
	must(t, err)
	d, err := img.ConfigName()
	must(t, err)
	return d.String()
}

// publishAsIndex replaces the image at ref by an index of it, as multi-arch OS images are
// published (podman's in-band upgrade check needs one).
func publishAsIndex(t *testing.T, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref)
	must(t, err)
	img, err := remote.Image(r)
	must(t, err)
	cf, err := img.ConfigFile()
	must(t, err)
	idx := mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: cf.OS, Architecture: cf.Architecture}}})
	must(t, remote.WriteIndex(r, idx))
}

// TestPodmanMachineContract replays podman machine os upgrade and os apply on a sysroot directory.
func TestPodmanMachineContract(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	path := ostreeExtensionPath(t)
	osRepo := testutil.Registry(t) + "/machine-os"
	testimage.Compose(t, testimage.TinyOS(t, "5.7.0", nil), "docker://"+osRepo+":5.7")
	publishAsIndex(t, osRepo+":5.7")
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "docker://"+osRepo+":5.7", sys)
	repo := filepath.Join(sys, "ostree/repo")

	// os upgrade with client and machine at 5.7: compare the config digests.
	h := podmanStatus(t, sys)
	podmanBooted(t, h, osRepo+":5.7", "registry")
	booted := h.Status.Booted.Image.Image.Image
	if local, remote := podmanLocalConfigDigest(t, path, repo, booted), registryConfigDigest(t, booted); local != remote {
		t.Fatalf("ostree container image metadata gives config %s, the registry %s", local, remote)
	}
	// A rebuilt 5.7: the digests differ, and podman runs bootc upgrade.
	testimage.Compose(t, testimage.TinyOS(t, "5.7.1", nil), "docker://"+osRepo+":5.7")
	publishAsIndex(t, osRepo+":5.7")
	if local, remote := podmanLocalConfigDigest(t, path, repo, booted), registryConfigDigest(t, booted); local == remote {
		t.Fatalf("the rebuilt image has the stored config digest %s", local)
	}
	mustRun(t, "--sysroot", sys, "upgrade")
	if local, remote := podmanLocalConfigDigest(t, path, repo, booted), registryConfigDigest(t, booted); local != remote {
		t.Errorf("after bootc upgrade: ostree container image metadata gives config %s, the registry %s", local, remote)
	}
	podmanBooted(t, podmanStatus(t, sys), osRepo+":5.7", "registry")
	checkOstreeContainerCLI(t, repo, booted)
	podmanSwitches(t, sys, osRepo)
}

// podmanSwitches replays os upgrade with a newer client, and os apply with each transport podman
// passes on.
func podmanSwitches(t *testing.T, sys, osRepo string) {
	dir := t.TempDir()
	testimage.Compose(t, testimage.TinyOS(t, "5.8.0", nil), "docker://"+osRepo+":5.8")
	testimage.Compose(t, testimage.TinyOS(t, "6.0.0", nil), "oci:"+dir+"/layout:6.0")
	testimage.Compose(t, testimage.TinyOS(t, "6.1.0", nil), "oci-archive:"+dir+"/os.tar")
	pm := testutil.NewPodman(t)
	stored := pm.StorageRef("localhost/machine-os:6.2")
	testimage.Compose(t, testimage.TinyOS(t, "6.2.0", nil), "containers-storage:"+stored)
	for _, tc := range []struct {
		name, image, transport, version string
		args                            []string
	}{
		{"upgrade to the client's version", osRepo + ":5.8", "registry", "5.8.0", []string{"switch", osRepo + ":5.8"}},
		{"apply oci:DIR:TAG", dir + "/layout", "oci", "6.0.0", []string{"switch", "--transport", "oci", dir + "/layout"}},
		{"apply oci-archive:FILE", dir + "/os.tar", "oci-archive", "6.1.0", []string{"switch", "--transport", "oci-archive", dir + "/os.tar"}},
		{"apply containers-storage:REF", stored, "containers-storage", "6.2.0", []string{"switch", "--transport", "containers-storage", stored}},
		{"apply docker://REF", osRepo + ":5.7", "registry", "5.7.1", []string{"switch", osRepo + ":5.7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustRun(t, append([]string{"--sysroot", sys}, tc.args...)...)
			h := podmanStatus(t, sys)
			if h.Spec.Image != (podmanImageRef{Image: tc.image, Transport: tc.transport}) {
				t.Errorf("spec.image = %+v, want %s %s", h.Spec.Image, tc.transport, tc.image)
			}
			// A sysroot directory stages nothing: its default deployment is the booted one.
			podmanBooted(t, h, tc.image, tc.transport)
			if v := h.Status.Booted.Image.Version; v != tc.version {
				t.Errorf("status.booted.image.version = %q, want %s", v, tc.version)
			}
		})
	}
}

// checkOstreeContainerCLI checks the rest of bootc's ostree-container: its two entry points,
// --config, and its errors.
func checkOstreeContainerCLI(t *testing.T, repo, booted string) {
	t.Helper()
	ext := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := Main(t.Context(), append([]string{"/usr/libexec/libostree/ext/" + ostreeContainerName, "container"}, args...), &out, &errb)
		return out.String(), errb.String(), code
	}
	manifestOut, errs, code := ext("image", "metadata", "--repo", repo, "docker://"+booted)
	if code != 0 || strings.HasSuffix(manifestOut, "\n") || !strings.HasPrefix(manifestOut, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{`) {
		t.Errorf("ostree-container container image metadata: exit %d, %q, %s", code, manifestOut, errs)
	}
	if out := mustRun(t, "internals", ostreeContainerName, "image", "metadata", "--repo="+repo, "ostree-unverified-registry:"+booted); out != manifestOut {
		t.Errorf("bootc internals ostree-container printed %q, ostree-container %q", out, manifestOut)
	}
	var cfg ocispec.Image
	out, errs, code := ext("image", "metadata", "--repo", repo, "--config", "registry:"+booted)
	if err := json.Unmarshal([]byte(out), &cfg); code != 0 || err != nil || cfg.OS != "linux" || cfg.Config.Labels["org.opencontainers.image.version"] != "5.7.1" {
		t.Errorf("image metadata --config: exit %d, %q (%v), %s", code, out, err, errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"image", "metadata", "--repo", repo, "docker://" + booted + "-missing"}, "no such image in " + repo + ": image not in the repository: docker://" + booted + "-missing"},
		{[]string{"image", "pull", repo, "ostree-unverified-registry:" + booted}, "ostree container image pull: not supported by bootc's ostree-container"},
		{[]string{"encapsulate", "--repo", repo}, "ostree container encapsulate: not supported"},
	} {
		if out, errs, code := ext(tc.args...); code != 1 || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("ostree container %s: exit %d, %q, %q; want exit 1 with %q", strings.Join(tc.args, " "), code, out, errs, tc.want)
		}
	}
}
