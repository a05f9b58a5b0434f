package testutil

import (
	"path/filepath"
	"testing"
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
