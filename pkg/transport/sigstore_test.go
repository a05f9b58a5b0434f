package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"

	"github.com/bootc-go/bootc/internal/testutil"
)

var someDigest = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}

func testSignature(payload string) SigstoreSignature {
	return SigstoreSignature{
		MediaType:   "application/vnd.dev.cosign.simplesigning.v1+json",
		Payload:     []byte(payload),
		Annotations: map[string]string{"dev.cosignproject.cosign/signature": "sig of " + payload},
	}
}

// attachment reads the sigstore attachment of someDigest in repo (HOST/REPO) as cosign does
// (go-containerregistry): the payloads of its layers in order, and its config's diff IDs.
func attachment(t *testing.T, repo string) (payloads []string, diffIDs []string) {
	t.Helper()
	ref, err := name.ParseReference(fmt.Sprintf("%s:%s-%s.sig", repo, someDigest.Algorithm, someDigest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("reading %s: %v", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("attachment manifest %s with config %s; want OCI", m.MediaType, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		b := compressedBytes(t, layer)
		payloads = append(payloads, string(b))
		if want := "sig of " + string(b); l.Annotations["dev.cosignproject.cosign/signature"] != want || l.MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" {
			t.Errorf("layer %s: media type %s, annotations %v", l.Digest, l.MediaType, l.Annotations)
		}
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		RootFS struct {
			Type    string   `json:"type"`
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.Type != "layers" {
		t.Errorf("config %s", raw)
	}
	for i, l := range m.Layers {
		if i >= len(cfg.RootFS.DiffIDs) || cfg.RootFS.DiffIDs[i] != l.Digest.String() {
			t.Errorf("config diff IDs %v do not list the layers %v", cfg.RootFS.DiffIDs, m.Layers)
			break
		}
	}
	return payloads, cfg.RootFS.DiffIDs
}

// Signatures are added to the attachment one after the other, as layers whose digests the config
// lists; the same signature twice is stored once.
func TestAttachSigstoreSignature(t *testing.T) {
	ctx := t.Context()
	repo := testutil.Registry(t) + "/os"
	ref := registryRef(t, repo+":1")
	for _, p := range []string{"one", "one", "two", "one"} {
		if err := AttachSigstoreSignature(ctx, ref, someDigest, testSignature(p), Registries{}); err != nil {
			t.Fatalf("attaching %q: %v", p, err)
		}
	}
	if payloads, _ := attachment(t, repo); !slices.Equal(payloads, []string{"one", "two"}) {
		t.Errorf("attachment payloads %q; want one, two", payloads)
	}
	// Another signature of another image goes to another attachment.
	if err := AttachSigstoreSignature(ctx, registryRef(t, repo+":2"), v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("cd", 32)}, testSignature("three"), Registries{}); err != nil {
		t.Fatal(err)
	}
	if payloads, _ := attachment(t, repo); len(payloads) != 2 {
		t.Errorf("attachment payloads %q after another image's signature", payloads)
	}
}

// The attachment is read from the registry it is written to, not from a registries.conf mirror
// that serves the tag too (with other signatures): a mirror's stale attachment does not replace
// the registry's.
func TestAttachSigstoreSignatureIgnoresMirrors(t *testing.T) {
	ctx := t.Context()
	primary, mirror := testutil.NewCountingRegistry(t), testutil.NewCountingRegistry(t)
	for _, c := range []struct {
		addr, payload string
	}{{primary.Addr, "in the registry"}, {mirror.Addr, "in the mirror only"}} {
		if err := AttachSigstoreSignature(ctx, registryRef(t, c.addr+"/os:1"), someDigest, testSignature(c.payload), Registries{}); err != nil {
			t.Fatal(err)
		}
	}
	conf := testutil.RegistriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\n[[registry.mirror]]\nlocation = %q\n", primary.Addr, mirror.Addr))
	mirrored := Registries{ConfPath: conf, RegistriesDir: t.TempDir()}
	if err := AttachSigstoreSignature(ctx, registryRef(t, primary.Addr+"/os:1"), someDigest, testSignature("new"), mirrored); err != nil {
		t.Fatal(err)
	}
	if payloads, _ := attachment(t, primary.Addr+"/os"); !slices.Equal(payloads, []string{"in the registry", "new"}) {
		t.Errorf("registry's attachment payloads %q; want the registry's and the new one", payloads)
	}
}

// registries.d decides whether sigstore attachments are used, as containers/image reads it: off,
// nothing is written (ErrSigstoreAttachmentsOff, no request).
func TestAttachSigstoreSignatureOff(t *testing.T) {
	r := testutil.NewCountingRegistry(t)
	regd := t.TempDir()
	if err := os.WriteFile(filepath.Join(regd, "off.yaml"), []byte(fmt.Sprintf("docker:\n  %s/os:\n    use-sigstore-attachments: false\n", r.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	err := AttachSigstoreSignature(t.Context(), registryRef(t, r.Addr+"/os:1"), someDigest, testSignature("x"), Registries{RegistriesDir: regd})
	if !errors.Is(err, ErrSigstoreAttachmentsOff) {
		t.Errorf("attachments off: %v; want ErrSigstoreAttachmentsOff", err)
	}
	if got := r.Requests(); len(got) != 0 {
		t.Errorf("requests with attachments off: %q", got)
	}
}

func TestSigstoreAttachmentsSetting(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string // registries.d
		ref   string
		want  bool
		err   string
	}{
		{"bootc's default", nil, "quay.io/os:1", true, ""},
		{"default off", map[string]string{"a.yaml": "default-docker:\n  use-sigstore-attachments: false\n"}, "quay.io/os:1", false, ""},
		{"default says nothing", map[string]string{"a.yaml": "default-docker:\n  lookaside: file:///sigs\n"}, "quay.io/os:1", false, ""},
		{"repository off, default on", map[string]string{"a.yaml": "docker:\n  quay.io/os:\n    use-sigstore-attachments: false\n"}, "quay.io/os:1", false, ""},
		{"another repository off", map[string]string{"a.yaml": "docker:\n  quay.io/other:\n    use-sigstore-attachments: false\n"}, "quay.io/os:1", true, ""},
		{"registry off, repository on", map[string]string{"a.yaml": "docker:\n  quay.io:\n    use-sigstore-attachments: false\n  quay.io/os:\n    use-sigstore-attachments: true\n"}, "quay.io/os:1", true, ""},
		{"registry off, repository says nothing", map[string]string{"a.yaml": "docker:\n  quay.io:\n    use-sigstore-attachments: false\n  quay.io/os:\n    lookaside: file:///sigs\n"}, "quay.io/os:1", false, ""},
		{"this tag off", map[string]string{"a.yaml": "docker:\n  quay.io/os:1:\n    use-sigstore-attachments: false\n"}, "quay.io/os:1", false, ""},
		{"another tag off", map[string]string{"a.yaml": "docker:\n  quay.io/os:1:\n    use-sigstore-attachments: false\n"}, "quay.io/os:2", true, ""},
		{"docker.io normalized", map[string]string{"a.yaml": "docker:\n  docker.io/library/os:\n    use-sigstore-attachments: false\n"}, "os", false, ""},
		{"namespace twice", map[string]string{"a.yaml": "docker:\n  quay.io:\n    lookaside: file:///a\n", "b.yaml": "docker:\n  quay.io:\n    lookaside: file:///b\n"}, "quay.io/os:1", false, "defined both in"},
		{"default twice", map[string]string{"a.yaml": "default-docker:\n  lookaside: file:///a\n", "b.yaml": "default-docker:\n  lookaside: file:///b\n"}, "quay.io/os:1", false, "defined both in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for n, c := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			sys, cleanup, err := Registries{RegistriesDir: dir}.SystemContext(tc.ref, DefaultPlatform())
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			named, err := reference.ParseNormalizedNamed(tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := docker.NewReference(reference.TagNameOnly(named))
			if err != nil {
				t.Fatal(err)
			}
			got, err := sigstoreAttachments(sys, ref)
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("error %v; want one saying %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Errorf("error %v", err)
			case got != tc.want:
				t.Errorf("sigstore attachments %v; want %v", got, tc.want)
			}
		})
	}
}
