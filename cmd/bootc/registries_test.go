package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
)

// The registry configuration (--registries-conf, CONTAINERS_REGISTRIES_CONF) at the CLI: every
// command that reaches a registry (install, upgrade --check, upgrade, verification, compose's
// push and signing) follows the same registries.conf. The registries are
// testutil.CountingRegistry instances, so that a test sees which requests reached them.

// mirrorConf mirrors registry.invalid/os, a name that resolves nowhere, to addr/os.
func mirrorConf(t *testing.T, addr string, insecure bool) string {
	return testutil.RegistriesConf(t, fmt.Sprintf(`[[registry]]
prefix = "registry.invalid/os"
location = "registry.invalid/os"
[[registry.mirror]]
location = "%s/os"
insecure = %v
`, addr, insecure))
}

// signingKey makes a cosign key pair with an empty passphrase (COSIGN_PASSWORD, which compose
// reads, is set empty) and returns the private and public key paths.
func signingKey(t *testing.T) (string, string) {
	t.Helper()
	t.Setenv("COSIGN_PASSWORD", "")
	return testutil.SigstoreKeyPair(t, "")
}

// registryStatus is what these tests read of `status --format json`.
type registryStatus struct {
	Spec struct {
		Image *struct {
			Image, Transport string
			Signature        any
		} `json:"image"`
	} `json:"spec"`
	Status struct {
		Booted *struct {
			Image *struct {
				Image struct {
					Image     string `json:"image"`
					Signature any    `json:"signature"`
				} `json:"image"`
				Version     *string `json:"version"`
				ImageDigest string  `json:"imageDigest"`
			} `json:"image"`
		} `json:"booted"`
	} `json:"status"`
}

func readStatus(t *testing.T, sys string) registryStatus {
	t.Helper()
	var st registryStatus
	if err := json.Unmarshal([]byte(mustRun(t, "--sysroot", sys, "status", "--format", "json")), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// booted returns the booted image's version and digest.
func booted(t *testing.T, sys string) (string, string) {
	t.Helper()
	st := readStatus(t, sys)
	if st.Status.Booted == nil || st.Status.Booted.Image == nil || st.Status.Booted.Image.Version == nil {
		return "<none>", ""
	}
	return *st.Status.Booted.Image.Version, st.Status.Booted.Image.ImageDigest
}

// requestsTo checks that the registry served requests, all of them for host.
func requestsTo(t *testing.T, r *testutil.CountingRegistry, host, what string) {
	t.Helper()
	got := r.Requests()
	if len(got) == 0 {
		t.Errorf("%s: the registry served no request", what)
	}
	for _, req := range got {
		if _, rest, _ := strings.Cut(req, " "); !strings.HasPrefix(rest, host+"/v2/") {
			t.Errorf("%s: request %q is not for %s", what, req, host)
		}
	}
}

// TestRegistriesMirror: with a registries.conf that mirrors registry.invalid/os (which resolves
// nowhere) to a loopback registry declared insecure, install to-filesystem, upgrade --check and
// upgrade work through the mirror, with and without --enforce-container-sigpolicy (the policy
// trusts the signatures compose made at the mirror's name), and the mirror serves every request.
// Without the configuration the name cannot be pulled; with the mirror not declared insecure,
// no plain-HTTP request reaches it.
func TestRegistriesMirror(t *testing.T) {
	testutil.Root(t)
	key, pub := signingKey(t)
	r := testutil.NewCountingRegistry(t)
	compose := func(version, tag string) string {
		t.Helper()
		out := mustRun(t, "compose", "image", "--rootfs", tinyOS(t, version, map[string]string{"usr/share/v": version}),
			"--output", "docker://"+r.Addr+"/os:"+tag, "--sign-key", key, "-q")
		return lastLine(out)
	}
	conf := mirrorConf(t, r.Addr, true)
	policy := testutil.WritePolicy(t, map[string][]map[string]any{"registry.invalid/os": {{
		"type": "sigstoreSigned", "keyPath": pub,
		"signedIdentity": map[string]any{"type": "remapIdentity", "prefix": "registry.invalid/os", "signedPrefix": r.Addr + "/os"},
	}}})

	for _, enforce := range []bool{false, true} {
		name, tag, signature := "unverified", "plain", any(nil)
		if enforce {
			name, tag, signature = "enforced", "signed", any("containerPolicy")
		}
		t.Run(name, func(t *testing.T) {
			compose("1.0", tag)
			image := "docker://registry.invalid/os:" + tag
			install := []string{"install", "to-filesystem", "--source-imgref", image}
			if enforce {
				install = append(install, "--enforce-container-sigpolicy")
			}

			// The name alone resolves nowhere; a mirror not declared insecure is not spoken to
			// over plain HTTP.
			for _, c := range []struct{ what, conf string }{{"no registries.conf", testutil.RegistriesConf(t, "")}, {"mirror not insecure", mirrorConf(t, r.Addr, false)}} {
				r.Reset()
				sys := testutil.SysrootDir(t)
				_, errs, code := run(t, append([]string{"--registries-conf", c.conf, "--signature-policy", policy}, append(install, sys)...)...)
				if code != 1 {
					t.Errorf("%s: install exit %d (%s); want 1", c.what, code, errs)
				}
				if got := r.Requests(); len(got) != 0 {
					t.Errorf("%s: plain HTTP requests reached the registry: %q", c.what, got)
				}
			}

			sys := testutil.SysrootDir(t)
			g := []string{"--registries-conf", conf, "--signature-policy", policy, "--sysroot", sys}
			r.Reset()
			mustRun(t, append(append(g, install...), sys)...)
			requestsTo(t, r, r.Addr, "install")
			st := readStatus(t, sys)
			if v, _ := booted(t, sys); v != "1.0" || st.Spec.Image == nil || st.Spec.Image.Image != "registry.invalid/os:"+tag ||
				st.Status.Booted.Image.Image.Signature != signature {
				t.Fatalf("after install: booted %s, spec %+v, booted image %+v", v, st.Spec.Image, st.Status.Booted.Image)
			}

			digest := compose("2.0", tag)
			r.Reset()
			// CONTAINERS_REGISTRIES_CONF gives the file as --registries-conf does.
			t.Setenv("CONTAINERS_REGISTRIES_CONF", conf)
			out := mustRun(t, "--signature-policy", policy, "--sysroot", sys, "upgrade", "--check")
			os.Unsetenv("CONTAINERS_REGISTRIES_CONF")
			if !strings.Contains(out, digest) {
				t.Errorf("upgrade --check printed %q; want the new digest %s", out, digest)
			}
			requestsTo(t, r, r.Addr, "upgrade --check")
			if v, _ := booted(t, sys); v != "1.0" {
				t.Errorf("upgrade --check changed the booted image to %s", v)
			}

			r.Reset()
			mustRun(t, append(g, "upgrade")...)
			requestsTo(t, r, r.Addr, "upgrade")
			if v, d := booted(t, sys); v != "2.0" || d != digest {
				t.Errorf("after upgrade: booted %s %s; want 2.0 %s", v, d, digest)
			}
		})
	}
}

// TestRegistriesBlocked: with the registry blocked in registries.conf, install (with and without
// verification), upgrade --check, upgrade and compose's push (with and without signing) fail
// naming the block, and not one request reaches the registry.
func TestRegistriesBlocked(t *testing.T) {
	testutil.Root(t)
	key, pub := signingKey(t)
	r := testutil.NewCountingRegistry(t)
	rootfs := tinyOS(t, "1.0", nil)
	mustRun(t, "compose", "image", "--rootfs", rootfs, "--output", "docker://"+r.Addr+"/os:1", "--sign-key", key, "-q")
	installed := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "docker://"+r.Addr+"/os:1", installed)
	before := sysrootState(t, installed)

	conf := testutil.RegistriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\nblocked = true\n", r.Addr))
	policy := testutil.WritePolicy(t, map[string][]map[string]any{r.Addr + "/os": testutil.SigstoreKey(pub)})
	g := []string{"--registries-conf", conf, "--signature-policy", policy}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"install", []string{"install", "to-filesystem", "--source-imgref", "docker://" + r.Addr + "/os:1", testutil.SysrootDir(t)}},
		{"install, verified", []string{"install", "to-filesystem", "--enforce-container-sigpolicy", "--source-imgref", "docker://" + r.Addr + "/os:1", testutil.SysrootDir(t)}},
		{"upgrade --check", []string{"--sysroot", installed, "upgrade", "--check"}},
		{"upgrade", []string{"--sysroot", installed, "upgrade"}},
		{"switch, verified", []string{"--sysroot", installed, "switch", "--enforce-container-sigpolicy", r.Addr + "/os:1"}},
		{"push", []string{"compose", "image", "--rootfs", rootfs, "--output", "docker://" + r.Addr + "/os:2", "-q"}},
		{"push and sign", []string{"compose", "image", "--rootfs", rootfs, "--output", "docker://" + r.Addr + "/os:2", "--sign-key", key, "-q"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Reset()
			_, errs, code := run(t, append(g, tc.args...)...)
			if code != 1 || !strings.Contains(errs, "blocked") {
				t.Errorf("exit %d, stderr %q; want 1 and the block named", code, errs)
			}
			if got := r.Requests(); len(got) != 0 || r.Connects() != 0 {
				t.Errorf("the blocked registry got requests: %q (%d CONNECT)", got, r.Connects())
			}
		})
	}
	if after := sysrootState(t, installed); after != before {
		t.Errorf("refused commands changed the sysroot:\n%s", testutil.FirstDiff("before", before, "after", after))
	}
}

// tinyOS writes a small bootable tree (testimage.WriteTinyOS) and returns its directory.
func tinyOS(t *testing.T, version string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	must(t, testimage.WriteTinyOS(dir, version, extra))
	return dir
}

// sysrootState is testutil.SysrootState with `bootc status --format json`.
func sysrootState(t *testing.T, sys string) string {
	t.Helper()
	return testutil.SysrootState(t, sys, []byte(mustRun(t, "--sysroot", sys, "status", "--format", "json")))
}
