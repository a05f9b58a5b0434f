package sign_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sign"
	"github.com/bootc-go/bootc/pkg/transport"
)

// keyPair writes a cosign key pair (encrypted with passphrase) made by containers/image, the same
// format `cosign generate-key-pair` writes, and returns the private and public key paths.
func keyPair(t *testing.T, passphrase string) (string, string) {
	t.Helper()
	return testutil.SigstoreKeyPair(t, passphrase)
}

// push writes a random image of layers layers of size bytes to registry ref (HOST/REPO:TAG) and
// returns its digest.
func push(t *testing.T, ref string, layers int, size int64) v1.Hash {
	t.Helper()
	img, err := random.Image(size, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	d, err := transport.Write(t.Context(), img, imgref.Ref{Transport: imgref.Registry, Name: ref})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// setup starts a registry, pushes a small image to REPO:1 and makes two key pairs with keys: the
// signer's and another.
func setup(t *testing.T, keys func(*testing.T) (string, string)) (repo string, digest v1.Hash, priv, pub, otherPub string) {
	t.Helper()
	repo = testutil.Registry(t) + "/os"
	digest = push(t, repo+":1", 2, 1024)
	priv, pub = keys(t)
	_, otherPub = keys(t)
	return repo, digest, priv, pub, otherPub
}

func signImage(t *testing.T, key, ref string, digest v1.Hash) {
	t.Helper()
	s, err := sign.LoadKey(key, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Sign(t.Context(), imgref.Ref{Transport: imgref.Registry, Name: ref}, digest, transport.Registries{}); err != nil {
		t.Fatal(err)
	}
}

// policyAllows evaluates policyJSON (a containers-policy.json(5) document) for the image at ref
// (HOST/REPO:TAG or HOST/REPO@DIGEST), reading sigstore attachments as a verifier must be told to.
func policyAllows(t *testing.T, policyJSON, ref string) (bool, error) {
	t.Helper()
	policy, err := signature.NewPolicyFromBytes([]byte(policyJSON))
	if err != nil {
		t.Fatalf("policy %s: %v", policyJSON, err)
	}
	pc, err := signature.NewPolicyContext(policy)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	regd := t.TempDir()
	if err := os.WriteFile(filepath.Join(regd, "sigstore.yaml"), transport.RegistriesDConfig, 0o644); err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{RegistriesDirPath: regd, DockerInsecureSkipTLSVerify: types.OptionalBoolTrue}
	r, err := docker.ParseReference("//" + ref)
	if err != nil {
		t.Fatal(err)
	}
	src, err := r.NewImageSource(t.Context(), sys)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	return pc.IsRunningImageAllowed(t.Context(), image.UnparsedInstance(src, nil))
}

// sigstorePolicy accepts images in repo signed with pubKey; identity is a signedIdentity JSON
// object, or "" for the default (matchRepoDigestOrExact).
func sigstorePolicy(repo, pubKey, identity string) string {
	req := fmt.Sprintf(`{"type": "sigstoreSigned", "keyPath": %q`, pubKey)
	if identity != "" {
		req += `, "signedIdentity": ` + identity
	}
	return fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {%q: [%s}]}}}`, repo, req)
}

// Our signature, written by Sign, is what containers/image's sigstoreSigned requirement accepts:
// with the default identity rule and matchRepository, by tag and by digest; and it is refused
// under another key and with no signature at all.
func TestSignAcceptedByContainersPolicy(t *testing.T) {
	repo, digest, priv, pub, otherPub := setup(t, func(t *testing.T) (string, string) { return keyPair(t, "") })
	unsigned := push(t, repo+":unsigned", 2, 1024)
	signImage(t, priv, repo+":1", digest)

	checkPolicies(t, repo, []policyCase{
		{"default identity by tag", pub, "", repo + ":1", ""},
		{"default identity by digest", pub, "", repo + "@" + digest.String(), ""},
		{"matchRepository by tag", pub, `{"type": "matchRepository"}`, repo + ":1", ""},
		{"matchRepository by digest", pub, `{"type": "matchRepository"}`, repo + "@" + digest.String(), ""},
		{"exact identity of another tag", pub, fmt.Sprintf(`{"type": "exactReference", "dockerReference": %q}`, repo+":2"), repo + ":1", "is not accepted"},
		{"another key", otherPub, "", repo + ":1", "cryptographic signature verification failed"},
		{"another key, matchRepository", otherPub, `{"type": "matchRepository"}`, repo + ":1", "cryptographic signature verification failed"},
		{"unsigned image", pub, `{"type": "matchRepository"}`, repo + "@" + unsigned.String(), "no signature exists"},
	})
}

type policyCase struct {
	name, key, identity, ref string
	refusal                  string // "": accepted; else part of the error refusing it
}

// checkPolicies evaluates, for each case, a policy accepting repo's images signed with key under
// identity (sigstorePolicy) on the image at ref.
func checkPolicies(t *testing.T, repo string, cases []policyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := policyAllows(t, sigstorePolicy(repo, tc.key, tc.identity), tc.ref)
			switch {
			case tc.refusal == "" && !ok:
				t.Errorf("refused: %v", err)
			case tc.refusal != "" && ok:
				t.Errorf("accepted, want refused with %q", tc.refusal)
			case tc.refusal != "" && !strings.Contains(fmt.Sprint(err), tc.refusal):
				t.Errorf("refused with %v, want %q", err, tc.refusal)
			}
		})
	}
}

// The cosign CLI verifies our signature with the matching public key, naming the image by digest
// or by tag, and refuses it with another key.
func TestSignVerifiedByCosign(t *testing.T) {
	testutil.Cosign(t, "")
	repo, digest, priv, pub, otherPub := setup(t, testutil.CosignKeyPair)
	signImage(t, priv, repo+":1", digest)

	for _, ref := range []string{repo + "@" + digest.String(), repo + ":1"} {
		out := testutil.Run(t, "cosign", "verify", "--key", pub, "--insecure-ignore-tlog", ref)
		if !strings.Contains(out, digest.String()) || !strings.Contains(out, `"docker-reference":"`+repo+`:1"`) {
			t.Errorf("cosign verify %s printed %s", ref, out)
		}
		cmd := exec.CommandContext(t.Context(), "cosign", "verify", "--key", otherPub, "--insecure-ignore-tlog", ref)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("cosign verify %s accepted another key's signature:\n%s", ref, out)
		} else if !strings.Contains(string(out), "no matching signatures") {
			t.Errorf("cosign verify %s with another key failed for another reason: %v\n%s", ref, err, out)
		}
	}
}

// A signature made by `cosign sign` is accepted by containers/image under sigstoreSigned with
// matchRepository. cosign's identity is the repository without the tag, which the default rule
// (matchRepoDigestOrExact) never accepts, by tag or by digest: it refuses name-only identities.
func TestCosignSignatureAcceptedByContainersPolicy(t *testing.T) {
	testutil.Cosign(t, "")
	repo, digest, priv, pub, otherPub := setup(t, testutil.CosignKeyPair)
	testutil.Run(t, "cosign", "sign", "--key", priv, "--tlog-upload=false", "--yes", repo+"@"+digest.String())

	cosignIdentity := `identity "` + repo + `" is not accepted`
	checkPolicies(t, repo, []policyCase{
		{"matchRepository by tag", pub, `{"type": "matchRepository"}`, repo + ":1", ""},
		{"matchRepository by digest", pub, `{"type": "matchRepository"}`, repo + "@" + digest.String(), ""},
		{"default identity by digest", pub, "", repo + "@" + digest.String(), cosignIdentity},
		{"default identity by tag", pub, "", repo + ":1", cosignIdentity},
		{"another key", otherPub, `{"type": "matchRepository"}`, repo + ":1", "cryptographic signature verification failed"},
	})
}

// A wrong passphrase, a missing file and a file that is no cosign key are ErrKey, and the
// passphrase case says so.
func TestLoadKeyErrors(t *testing.T) {
	priv, pub := keyPair(t, "secret")
	if s, err := sign.LoadKey(priv, []byte("secret")); err != nil {
		t.Fatalf("right passphrase: %v", err)
	} else {
		s.Close()
	}
	for _, tc := range []struct {
		name, file, passphrase, want string
	}{
		{"wrong passphrase", priv, "wrong", "wrong passphrase"},
		{"empty passphrase", priv, "", "wrong passphrase"},
		{"missing file", filepath.Join(t.TempDir(), "none.key"), "", "no such file"},
		{"public key", pub, "", "unsupported pem type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sign.LoadKey(tc.file, []byte(tc.passphrase))
			if !errors.Is(err, sign.ErrKey) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.file) {
				t.Errorf("LoadKey: %v; want ErrKey naming %s and %q", err, tc.file, tc.want)
			}
		})
	}
}

// Only registry references by tag can be signed; nothing is attempted otherwise.
func TestSignRefusesOtherTargets(t *testing.T) {
	priv, _ := keyPair(t, "")
	s, err := sign.LoadKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	for _, ref := range []imgref.Ref{
		{Transport: imgref.OCI, Name: t.TempDir(), Tag: "1"},
		{Transport: imgref.OCIArchive, Name: "x.ociarchive"},
		{Transport: imgref.ContainersStorage, Name: "localhost/x:1"},
	} {
		if err := s.Sign(t.Context(), ref, d, transport.Registries{}); !errors.Is(err, sign.ErrNotRegistry) {
			t.Errorf("Sign(%s) = %v, want ErrNotRegistry", ref, err)
		}
	}
	err = s.Sign(t.Context(), imgref.Ref{Transport: imgref.Registry, Name: "127.0.0.1:1/x@" + d.String()}, d, transport.Registries{})
	if err == nil || !strings.Contains(err.Error(), "by tag") {
		t.Errorf("Sign by digest = %v, want a request for a tag", err)
	}
}

// What signing adds to a push: the push of a 64-layer image of 64 MiB, then Sign. The signature
// must be there afterwards. Figures are logged (go test -v).
func TestSignCost(t *testing.T) {
	if testing.Short() {
		t.Skip("pushes 64 MiB")
	}
	addr := testutil.Registry(t)
	priv, _ := keyPair(t, "")
	ref := addr + "/big:1"
	start := time.Now()
	digest := push(t, ref, 64, 1<<20)
	pushed := time.Since(start)
	start = time.Now()
	signImage(t, priv, ref, digest)
	signed := time.Since(start)
	t.Logf("push of 64 x 1 MiB layers: %v; signing afterwards: %v", pushed.Round(time.Millisecond), signed.Round(time.Millisecond))
	sigTag, err := name.ParseReference(fmt.Sprintf("%s/big:%s-%s.sig", addr, digest.Algorithm, digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	m, err := remote.Image(sigTag, remote.WithContext(context.Background()))
	if err != nil {
		t.Fatalf("no signature attachment %s: %v", sigTag, err)
	}
	mf, err := m.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(mf.Layers) != 1 || mf.Layers[0].MediaType != "application/vnd.dev.cosign.simplesigning.v1+json" || mf.Layers[0].Annotations["dev.cosignproject.cosign/signature"] == "" {
		t.Errorf("signature attachment %s: %+v", sigTag, mf.Layers)
	}
}

// Signatures accumulate: after `cosign sign` and two signings by Sign with other keys, the
// attachment holds the three, and each key's verifies, with the cosign CLI and with
// containers/image's policy.
func TestSignKeepsOtherSignatures(t *testing.T) {
	testutil.Cosign(t, "")
	repo, digest, cosignPriv, cosignPub, _ := setup(t, testutil.CosignKeyPair)
	testutil.Run(t, "cosign", "sign", "--key", cosignPriv, "--tlog-upload=false", "--yes", repo+"@"+digest.String())
	priv1, pub1 := testutil.CosignKeyPair(t)
	priv2, pub2 := keyPair(t, "")
	signImage(t, priv1, repo+":1", digest)
	signImage(t, priv2, repo+":1", digest)

	sigTag, err := name.ParseReference(fmt.Sprintf("%s:%s-%s.sig", repo, digest.Algorithm, digest.Hex))
	if err != nil {
		t.Fatal(err)
	}
	att, err := remote.Image(sigTag)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := att.Manifest(); err != nil || len(m.Layers) != 3 {
		t.Fatalf("attachment %s: %v, %+v; want 3 signatures", sigTag, err, m)
	}
	for _, pub := range []string{cosignPub, pub1, pub2} {
		out := testutil.Run(t, "cosign", "verify", "--key", pub, "--insecure-ignore-tlog", repo+"@"+digest.String())
		if !strings.Contains(out, digest.String()) {
			t.Errorf("cosign verify --key %s printed %s", pub, out)
		}
	}
	checkPolicies(t, repo, []policyCase{
		{"cosign's key", cosignPub, `{"type": "matchRepository"}`, repo + ":1", ""},
		{"first key", pub1, "", repo + ":1", ""},
		{"second key", pub2, "", repo + ":1", ""},
	})
}

// An image that is not in the repository is not signed: ErrNotFound, and no attachment.
func TestSignMissingImage(t *testing.T) {
	repo := testutil.Registry(t) + "/os"
	push(t, repo+":1", 1, 1024)
	priv, _ := keyPair(t, "")
	s, err := sign.LoadKey(priv, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	if err := s.Sign(t.Context(), imgref.Ref{Transport: imgref.Registry, Name: repo + ":1"}, missing, transport.Registries{}); !errors.Is(err, transport.ErrNotFound) {
		t.Errorf("signing a missing image: %v; want ErrNotFound", err)
	}
	sigTag, err := name.ParseReference(fmt.Sprintf("%s:sha256-%s.sig", repo, missing.Hex))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Head(sigTag); err == nil {
		t.Errorf("%s exists after a failed signing", sigTag)
	}
}
