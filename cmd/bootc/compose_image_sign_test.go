package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// compose image --sign-key pushes and signs: the cosign CLI verifies the image by digest and by
// tag with the public key (passphrase from COSIGN_PASSWORD, then from --sign-passphrase-file,
// which wins over the environment), and refuses it with another key pair's.
func TestComposeImageSigned(t *testing.T) {
	testutil.Cosign(t, "pw")
	addr := testutil.Registry(t)
	rootfs := busyboxRootfs(t)
	priv, pub := testutil.CosignKeyPair(t)
	_, otherPub := testutil.CosignKeyPair(t)
	passFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(passFile, []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env string
		args      []string
	}{
		{"COSIGN_PASSWORD", "pw", nil},
		{"passphrase file", "wrong", []string{"--sign-passphrase-file", passFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("COSIGN_PASSWORD", tc.env)
			repo := addr + "/tiny"
			tag := repo + ":" + strings.ReplaceAll(tc.name, " ", "-")
			args := append([]string{"compose", "image", "--rootfs", rootfs, "--output", "docker://" + tag, "--sign-key", priv}, tc.args...)
			out, errs, code := run(t, args...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			digest := lastLine(out)
			if !strings.Contains(errs, "signed "+digest) {
				t.Errorf("stderr does not report the signature:\n%s", errs)
			}
			for _, ref := range []string{tag, repo + "@" + digest} {
				got := testutil.Run(t, "cosign", "verify", "--key", pub, "--insecure-ignore-tlog", ref)
				if !strings.Contains(got, `"docker-manifest-digest":"`+digest+`"`) {
					t.Errorf("cosign verify %s: %s", ref, got)
				}
				if out, err := exec.CommandContext(t.Context(), "cosign", "verify", "--key", otherPub, "--insecure-ignore-tlog", ref).CombinedOutput(); err == nil {
					t.Errorf("cosign verify %s accepted another key:\n%s", ref, out)
				}
			}
		})
	}
}

// A wrong passphrase or an unusable key stops compose image before anything is built or pushed:
// the repository does not exist in the registry afterwards.
func TestComposeImageSignKeyErrorsPushNothing(t *testing.T) {
	testutil.Cosign(t, "pw")
	addr := testutil.Registry(t)
	rootfs := busyboxRootfs(t)
	priv, pub := testutil.CosignKeyPair(t)
	wrongFile := filepath.Join(t.TempDir(), "pass")
	if err := os.WriteFile(wrongFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, env, want string
		args            []string
	}{
		{"wrong COSIGN_PASSWORD", "wrong", "wrong passphrase", []string{"--sign-key", priv}},
		{"wrong passphrase file", "pw", "wrong passphrase", []string{"--sign-key", priv, "--sign-passphrase-file", wrongFile}},
		{"public key", "pw", "unsupported pem type", []string{"--sign-key", pub}},
		{"missing key", "pw", "no such file", []string{"--sign-key", priv + ".missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("COSIGN_PASSWORD", tc.env)
			repo := strings.ToLower(strings.ReplaceAll(tc.name, " ", "-"))
			args := append([]string{"compose", "image", "--rootfs", rootfs, "--output", "docker://" + addr + "/" + repo + ":1"}, tc.args...)
			_, errs, code := run(t, args...)
			if code != 1 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "nothing was built or pushed") {
				t.Errorf("exit %d, stderr %q; want exit 1 saying %q and that nothing was pushed", code, errs, tc.want)
			}
			resp, err := http.Get(fmt.Sprintf("http://%s/v2/%s/tags/list", addr, repo))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("registry has repository %s after a failed signing build (tags/list: %s)", repo, resp.Status)
			}
		})
	}
}

// --sign-key with an output that cannot hold sigstore attachments, and --sign-passphrase-file
// alone, are usage errors.
func TestComposeImageSignUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		output, want string
		args         []string
	}{
		{"oci:" + dir + "/out:1", "OCI layouts, archives and containers-storage cannot hold", []string{"--sign-key", "k"}},
		{"oci-archive:" + dir + "/out.tar", "sigstore attachments in a registry", []string{"--sign-key", "k"}},
		{"docker://127.0.0.1:1/x:1", "--sign-passphrase-file needs --sign-key", []string{"--sign-passphrase-file", "p"}},
	} {
		_, errs, code := run(t, append([]string{"compose", "image", "--rootfs", dir, "--output", tc.output}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%s %v: exit %d, %q; want exit 2 saying %q", tc.output, tc.args, code, errs, tc.want)
		}
	}
}
