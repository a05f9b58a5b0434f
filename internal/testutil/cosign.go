package testutil

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"go.podman.io/image/v5/signature/sigstore"
)

// Cosign prepares the test to run the cosign CLI offline: it requires the tool (a Go tool that
// scripts/install-deps.sh builds), gives cosign a TUF cache in a temporary directory and sets
// COSIGN_PASSWORD to passphrase. Tests that call it must not run in parallel (it sets the
// environment).
func Cosign(t *testing.T, passphrase string) {
	t.Helper()
	RequireTool(t, "cosign")
	t.Setenv("COSIGN_PASSWORD", passphrase)
	t.Setenv("TUF_ROOT", t.TempDir())
}

// CosignKeyPair runs `cosign generate-key-pair` (after Cosign; the key is encrypted with
// COSIGN_PASSWORD) and returns the private and public key paths.
func CosignKeyPair(t *testing.T) (string, string) {
	t.Helper()
	prefix := filepath.Join(t.TempDir(), "cosign")
	Run(t, "cosign", "generate-key-pair", "--output-key-prefix", prefix)
	return prefix + ".key", prefix + ".pub"
}

// SigstoreKeyPair writes a cosign key pair encrypted with passphrase, made in-process by
// containers/image (the format `cosign generate-key-pair` writes; no cosign CLI needed), and
// returns the private and public key paths.
func SigstoreKeyPair(t testing.TB, passphrase string) (string, string) {
	t.Helper()
	kp, err := sigstore.GenerateKeyPair([]byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "cosign.key"), filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(priv, kp.PrivateKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, kp.PublicKey, 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

// WritePolicy writes a containers-policy.json that rejects by default and has the given docker
// scopes, and returns its path.
func WritePolicy(t testing.TB, docker map[string][]map[string]any) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"default":    []map[string]any{{"type": "reject"}},
		"transports": map[string]any{"docker": docker},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// SigstoreKey is a policy requirement: sigstore signatures by the public key pub, for the
// image's own repository.
func SigstoreKey(pub string) []map[string]any {
	return []map[string]any{{"type": "sigstoreSigned", "keyPath": pub, "signedIdentity": map[string]any{"type": "matchRepository"}}}
}
