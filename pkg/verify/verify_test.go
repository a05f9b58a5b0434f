package verify

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/signature/signer"
	"go.podman.io/image/v5/signature/sigstore"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
)

// keyPair is a sigstore key pair in files.
type keyPair struct{ priv, pub string }

func newKeyPair(t *testing.T, dir, name string) keyPair {
	t.Helper()
	kp, err := sigstore.GenerateKeyPair([]byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	k := keyPair{priv: filepath.Join(dir, name+".key"), pub: filepath.Join(dir, name+".pub")}
	if err := os.WriteFile(k.priv, kp.PrivateKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.pub, kp.PublicKey, 0o644); err != nil {
		t.Fatal(err)
	}
	return k
}

// pushRandom pushes a small random image to ref ("HOST/REPO:TAG") and returns its digest.
func pushRandom(t *testing.T, ref string) v1.Hash {
	t.Helper()
	img, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	return pushImage(t, img, ref)
}

func pushImage(t *testing.T, img v1.Image, ref string) v1.Hash {
	t.Helper()
	r, err := imgref.Parse("docker://" + ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := transport.Write(context.Background(), img, r)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// sign adds a sigstore attachment signature made with k to the image at ref (in place), with
// containers/image's copy and signer, as `skopeo copy --sign-by-sigstore-private-key` does.
func sign(t *testing.T, k keyPair, ref string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sigstore.yaml"), []byte("default-docker:\n  use-sigstore-attachments: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{RegistriesDirPath: dir, DockerInsecureSkipTLSVerify: types.OptionalBoolTrue}
	s, err := sigstore.NewSigner(sigstore.WithPrivateKeyFile(k.priv, []byte("pass")))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: signature.PolicyRequirements{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	if _, err := copy.Image(context.Background(), pc, r, r, &copy.Options{Signers: []*signer.Signer{s}, SourceCtx: sys, DestinationCtx: sys}); err != nil {
		t.Fatalf("signing %s: %v", ref, err)
	}
}

// copySignature copies the sigstore attachment of digest d from one repository to another
// (where it is published for digest to).
func copySignature(t *testing.T, fromRepo string, d v1.Hash, toRepo string, to v1.Hash) {
	t.Helper()
	src, err := name.ParseReference(fmt.Sprintf("%s:%s-%s.sig", fromRepo, d.Algorithm, d.Hex))
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(src)
	if err != nil {
		t.Fatalf("reading the signature of %s@%s: %v", fromRepo, d, err)
	}
	dst, err := name.ParseReference(fmt.Sprintf("%s:%s-%s.sig", toRepo, to.Algorithm, to.Hex))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(dst, img); err != nil {
		t.Fatal(err)
	}
}

func writePolicy(t *testing.T, policy string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(p, []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sigstoreReq(key, identity string) string {
	return fmt.Sprintf(`{"type": "sigstoreSigned", "keyPath": %q, "signedIdentity": %s}`, key, identity)
}

const matchRepository = `{"type": "matchRepository"}`

func signedRef(t *testing.T, s string) imgref.OstreeRef {
	t.Helper()
	r, err := imgref.ParseOstree("ostree-image-signed:" + s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestVerifyRegistry signs images in a real registry with containers/image's sigstore signer
// and checks that Verify accepts exactly what the policy trusts, and that every refusal is a
// RejectedError naming the image, the digest, the scope and the reason.
func TestVerifyRegistry(t *testing.T) {
	reg := testutil.Registry(t)
	keys := t.TempDir()
	k1, k2 := newKeyPair(t, keys, "k1"), newKeyPair(t, keys, "k2")
	// Registries.d of the host: empty (Verify adds the sigstore attachments default).
	regDir := t.TempDir()

	osDigest := pushRandom(t, reg+"/os:latest")
	sign(t, k1, reg+"/os:latest")
	unsignedDigest := pushRandom(t, reg+"/unsigned:latest")
	otherKeyDigest := pushRandom(t, reg+"/otherkey:latest")
	sign(t, k2, reg+"/otherkey:latest")
	// The same image in another repository, with os's valid signature copied over.
	osRef, err := name.ParseReference(reg + "/os:latest")
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(osRef)
	if err != nil {
		t.Fatal(err)
	}
	if d := pushImage(t, img, reg+"/copied:latest"); d != osDigest {
		t.Fatalf("copied image has digest %s, want %s", d, osDigest)
	}
	copySignature(t, reg+"/os", osDigest, reg+"/copied", osDigest)
	// Another image carrying os's signature (for os's digest) as its own.
	swapDigest := pushRandom(t, reg+"/swapped:latest")
	copySignature(t, reg+"/os", osDigest, reg+"/swapped", swapDigest)

	hostScoped := fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {%q: [%s]}}}`, reg, sigstoreReq(k1.pub, matchRepository))
	tests := []struct {
		name, image, policy string
		wantDigest          v1.Hash
		wantScope           string
		wantErr             error  // nil: accepted
		wantReason          string // in the message
	}{
		{name: "signed, repository scope", image: reg + "/os:latest", wantDigest: osDigest, wantScope: "docker: " + reg + "/os",
			policy: fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {"%s/os": [%s]}}}`, reg, sigstoreReq(k1.pub, matchRepository))},
		{name: "signed, host scope", image: reg + "/os:latest", policy: hostScoped, wantDigest: osDigest, wantScope: "docker: " + reg},
		{name: "signed, by digest", image: reg + "/os@" + osDigest.String(), policy: hostScoped, wantDigest: osDigest, wantScope: "docker: " + reg},
		{name: "signed, default scope", image: reg + "/os:latest", wantDigest: osDigest, wantScope: "default",
			policy: fmt.Sprintf(`{"default": [%s]}`, sigstoreReq(k1.pub, matchRepository))},
		{name: "unsigned", image: reg + "/unsigned:latest", policy: hostScoped, wantDigest: unsignedDigest, wantScope: "docker: " + reg,
			wantErr: ErrRejected, wantReason: "A signature was required, but no signature exists"},
		{name: "signed with another key", image: reg + "/otherkey:latest", policy: hostScoped, wantDigest: otherKeyDigest, wantScope: "docker: " + reg,
			wantErr: ErrRejected, wantReason: "cryptographic signature verification failed"},
		{name: "signature copied to another repository", image: reg + "/copied:latest", policy: hostScoped, wantDigest: osDigest, wantScope: "docker: " + reg,
			wantErr: ErrRejected, wantReason: "not accepted"},
		{name: "signature of another digest", image: reg + "/swapped:latest", wantDigest: swapDigest, wantScope: "docker: " + reg,
			policy:  fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {%q: [%s]}}}`, reg, sigstoreReq(k1.pub, fmt.Sprintf(`{"type": "exactRepository", "dockerRepository": "%s/os"}`, reg))),
			wantErr: ErrRejected, wantReason: "does not match"},
		{name: "reject", image: reg + "/os:latest", policy: `{"default": [{"type": "reject"}]}`, wantDigest: osDigest, wantScope: "default",
			wantErr: ErrRejected, wantReason: "rejected by policy"},
		{name: "accepts anything in the repository scope", image: reg + "/os:latest", wantScope: "docker: " + reg + "/os",
			policy:  fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {"%s/os": [{"type": "insecureAcceptAnything"}]}}}`, reg),
			wantErr: ErrAcceptsAnything, wantReason: "insecureAcceptAnything"},
		{name: "accepts anything by default", image: reg + "/os:latest", wantScope: "default",
			policy:  `{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"quay.io": [{"type": "reject"}]}}}`,
			wantErr: ErrAcceptsAnything, wantReason: "insecureAcceptAnything"},
		{name: "repository scope beats host scope", image: reg + "/os:latest", wantDigest: osDigest, wantScope: "docker: " + reg + "/os",
			policy: fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {%q: [{"type": "reject"}], "%s/os": [%s], "": [{"type": "reject"}]}}}`, reg, reg, sigstoreReq(k1.pub, matchRepository))},
		{name: "host scope beats transport default", image: reg + "/os:latest", wantDigest: osDigest, wantScope: "docker: " + reg,
			policy: fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {"": [{"type": "reject"}], "%s/other": [{"type": "reject"}], %q: [%s]}}}`, reg, reg, sigstoreReq(k1.pub, matchRepository))},
		{name: "transport default beats default", image: reg + "/os:latest", wantDigest: osDigest, wantScope: `docker: ""`,
			wantErr: ErrRejected, wantReason: "rejected by policy",
			policy: fmt.Sprintf(`{"default": [%s], "transports": {"docker": {"": [{"type": "reject"}]}}}`, sigstoreReq(k1.pub, matchRepository))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := signedRef(t, "docker://"+tt.image)
			v, err := Verify(context.Background(), ref, Options{PolicyPath: writePolicy(t, tt.policy), Registries: transport.Registries{RegistriesDir: regDir}})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if v.Digest != tt.wantDigest || v.Scope != tt.wantScope || v.Ref != ref || v.IndexDigest != (v1.Hash{}) {
					t.Errorf("Verify = %+v; want digest %s, scope %s", v, tt.wantDigest, tt.wantScope)
				}
				return
			}
			var re *RejectedError
			if !errors.As(err, &re) || !errors.Is(err, tt.wantErr) || !errors.Is(err, ErrRejected) {
				t.Fatalf("Verify = %v, %v; want a RejectedError matching %v", v, err, tt.wantErr)
			}
			t.Logf("message: %v", err)
			msg := err.Error()
			if re.Scope != tt.wantScope || !strings.Contains(msg, "scope "+tt.wantScope+":") {
				t.Errorf("scope %q; want %q", re.Scope, tt.wantScope)
			}
			if !strings.Contains(msg, ref.String()) || !strings.Contains(msg, tt.wantReason) || !strings.Contains(re.Reason, tt.wantReason) {
				t.Errorf("message %q should name %s and say %q", msg, ref, tt.wantReason)
			}
			if tt.wantErr == ErrAcceptsAnything {
				if re.Digest != "" || !strings.Contains(msg, "ostree-unverified-registry:"+tt.image) {
					t.Errorf("message %q should offer the unverified form, and no digest (the image is not contacted)", msg)
				}
			} else if re.Digest != tt.wantDigest.String() || !strings.Contains(msg, tt.wantDigest.String()) {
				t.Errorf("digest %q; want %s in the message", re.Digest, tt.wantDigest)
			}
		})
	}

	t.Run("registries.d without sigstore attachments keeps the host's choice", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "default.yaml"), []byte("default-docker:\n  lookaside: file:///nonexistent\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Verify(context.Background(), signedRef(t, "docker://"+reg+"/os:latest"), Options{PolicyPath: writePolicy(t, hostScoped), Registries: transport.Registries{RegistriesDir: dir}})
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("Verify = %v; want a rejection (no signature looked up)", err)
		}
		if err := os.WriteFile(filepath.Join(dir, "os.yaml"), []byte(fmt.Sprintf("docker:\n  %s/os:\n    use-sigstore-attachments: true\n", reg)), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Verify(context.Background(), signedRef(t, "docker://"+reg+"/os:latest"), Options{PolicyPath: writePolicy(t, hostScoped), Registries: transport.Registries{RegistriesDir: dir}}); err != nil {
			t.Fatalf("with attachments enabled for the repository: %v", err)
		}
	})
}

// TestVerifyOCILayout checks that a policy requiring signatures refuses OCI layouts and
// archives (which cannot hold them) with a message that says so, and that a policy whose
// requirements verify no signature is not enough for ostree-image-signed:.
func TestVerifyOCILayout(t *testing.T) {
	dir := t.TempDir()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	layoutDir := filepath.Join(dir, "layout")
	d, err := transport.Write(context.Background(), img, imgref.Ref{Transport: imgref.OCI, Name: layoutDir, Tag: "v1"})
	if err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "img.ociarchive")
	if _, err := transport.Write(context.Background(), img, imgref.Ref{Transport: imgref.OCIArchive, Name: archive, Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	keys := newKeyPair(t, dir, "k")
	policy := writePolicy(t, fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"oci": {"": [%[1]s]}, "oci-archive": {"": [%[1]s]}}}`, sigstoreReq(keys.pub, matchRepository)))
	for _, s := range []string{"oci:" + layoutDir + ":v1", "oci-archive:" + archive + ":v1"} {
		_, err := Verify(context.Background(), signedRef(t, s), Options{PolicyPath: policy})
		var re *RejectedError
		if !errors.As(err, &re) {
			t.Fatalf("Verify(%s) = %v; want a RejectedError", s, err)
		}
		t.Logf("message: %v", err)
		transportName, _, _ := strings.Cut(s, ":")
		if re.Digest != d.String() || re.Scope != transportName+`: ""` || !strings.Contains(err.Error(), "cannot hold signatures") || !strings.Contains(err.Error(), "ostree-unverified-image:"+s) {
			t.Errorf("Verify(%s): %v; want digest %s, the scope, and advice", s, err, d)
		}
	}
	// A policy that checks no signature for the layout (signedBaseLayer is not a signature
	// check) is not enough for ostree-image-signed:.
	_, err = Verify(context.Background(), signedRef(t, "oci:"+layoutDir+":v1"), Options{PolicyPath: writePolicy(t, `{"default": [{"type": "signedBaseLayer", "baseLayerIdentity": {"type": "matchRepository"}}]}`)})
	if !errors.Is(err, ErrRejected) {
		t.Errorf("signedBaseLayer only: %v; want a rejection", err)
	}
}

func TestVerifyOtherSchemes(t *testing.T) {
	ctx := context.Background()
	r, err := imgref.ParseOstree("ostree-unverified-image:oci:/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := Verify(ctx, r, Options{PolicyPath: "/nonexistent"}); v != nil || err != nil {
		t.Errorf("unverified: %v, %v; want nil, nil", v, err)
	}
	r, err = imgref.ParseOstree("ostree-remote-image:fedora:oci:/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(ctx, r, Options{}); !errors.Is(err, ErrOstreeRemoteUnsupported) || !strings.Contains(err.Error(), "ostree-unverified-image:oci:/nonexistent") {
		t.Errorf("ostree-remote: %v", err)
	}
	for name, policy := range map[string]string{
		"syntax":        `{"default": [`,
		"unknown key":   `{"default": [{"type": "reject"}], "defualt": []}`,
		"duplicate key": `{"default": [{"type": "reject"}], "default": [{"type": "reject"}]}`,
		"no default":    `{"transports": {}}`,
	} {
		p := writePolicy(t, policy)
		_, err := Verify(ctx, signedRef(t, "oci:/nonexistent"), Options{PolicyPath: p})
		if !errors.Is(err, ErrInvalidPolicy) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v; want ErrInvalidPolicy naming %s", name, err, p)
		}
	}
	if _, err := Verify(ctx, signedRef(t, "oci:/nonexistent"), Options{PolicyPath: "/nonexistent/policy.json"}); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("missing policy: %v", err)
	}
}

// TestVerifyIndex checks a multi-platform index: the instance for the platform is the one
// whose signatures are verified (as containers/image's copy does), and its digest is the one
// returned.
func TestVerifyIndex(t *testing.T) {
	reg := testutil.Registry(t)
	k := newKeyPair(t, t.TempDir(), "k")
	idx := mutate.IndexMediaType(empty.Index, ggcrtypes.OCIImageIndex)
	instances := map[string]v1.Hash{}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := random.Image(256, 1)
		if err != nil {
			t.Fatal(err)
		}
		if instances[arch], err = img.Digest(); err != nil {
			t.Fatal(err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	indexDigest, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(reg + "/multi:latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	// Sign the amd64 instance only (its signature is stored by digest, for the repository).
	sign(t, k, fmt.Sprintf("%s/multi@%s", reg, instances["amd64"]))
	policy := writePolicy(t, fmt.Sprintf(`{"default": [%s]}`, sigstoreReq(k.pub, matchRepository)))
	ref := signedRef(t, "docker://"+reg+"/multi:latest")
	v, err := Verify(context.Background(), ref, Options{PolicyPath: policy, Registries: transport.Registries{RegistriesDir: t.TempDir()}, Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Digest != instances["amd64"] || v.IndexDigest != indexDigest {
		t.Errorf("Verify = %+v; want digest %s, index %s", v, instances["amd64"], indexDigest)
	}
	_, err = Verify(context.Background(), ref, Options{PolicyPath: policy, Registries: transport.Registries{RegistriesDir: t.TempDir()}, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	var re *RejectedError
	if !errors.As(err, &re) || re.Digest != instances["arm64"].String() {
		t.Errorf("Verify for arm64 (unsigned) = %v; want a RejectedError for %s", err, instances["arm64"])
	}
}
