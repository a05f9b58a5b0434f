package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// writePolicy writes a containers-policy.json: default reject, and the given docker scopes.
func writePolicy(t *testing.T, docker map[string][]map[string]any) string {
	t.Helper()
	data, err := json.Marshal(map[string]any{
		"default":    []map[string]any{{"type": "reject"}},
		"transports": map[string]any{"docker": docker},
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.json")
	must(t, os.WriteFile(path, data, 0o644))
	return path
}

func sigstoreKey(pub string) []map[string]any {
	return []map[string]any{{"type": "sigstoreSigned", "keyPath": pub, "signedIdentity": map[string]any{"type": "matchRepository"}}}
}

// repoObjects lists the repository's object files.
func repoObjects(t *testing.T, sys string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(sys, "ostree/repo/objects/*/*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		m[filepath.Base(filepath.Dir(f))+filepath.Base(f)] = true
	}
	return m
}

// checkNoNewObjects fails if the repository holds objects it did not hold before.
func checkNoNewObjects(t *testing.T, sys string, before map[string]bool) {
	t.Helper()
	var added []string
	for o := range repoObjects(t, sys) {
		if !before[o] {
			added = append(added, o)
		}
	}
	sort.Strings(added)
	if len(added) > 0 {
		t.Errorf("a refused image left %d objects in the repository, e.g. %s", len(added), added[0])
	}
}

// TestHostSignedImages: images signed by `compose image --sign-key` and by the real cosign CLI
// install, switch and upgrade under a policy that requires sigstoreSigned; unsigned images,
// images signed with another key, a reject policy and a policy that accepts anything are
// refused before any of the image reaches the repository, and no deployment is added.
func TestHostSignedImages(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	testutil.Cosign(t, "")
	key, pub := testutil.CosignKeyPair(t)
	otherKey, _ := testutil.CosignKeyPair(t)
	reg := testutil.Registry(t)
	compose := func(version, ref string, extra ...string) string {
		t.Helper()
		out := mustRun(t, append([]string{"compose", "image", "--rootfs", tinyOS(t, version, map[string]string{"usr/share/v": version}), "--output", "docker://" + reg + "/" + ref, "-q"}, extra...)...)
		return lastLine(out)
	}
	compose("1.0", "os:stable", "--sign-key", key)
	policy := writePolicy(t, map[string][]map[string]any{reg + "/os": sigstoreKey(pub), reg + "/cos": sigstoreKey(pub)})
	sys := testutil.SysrootDir(t)
	g := []string{"--signature-policy", policy, "--sysroot", sys}

	out := mustRun(t, "--signature-policy", policy, "install", "to-filesystem", "--enforce-container-sigpolicy", "--source-imgref", "docker://"+reg+"/os:stable", sys)
	st := hostStatusJSON(t, sys)
	if entryVersion(st.Status.Booted) != "1.0" || st.Status.Booted.Image.Image.Signature != "containerPolicy" {
		t.Fatalf("after a verified install (%q): %+v", out, st.Status.Booted.Image)
	}
	ids, _ := adminStatus(t, sys)
	origin, _ := os.ReadFile(filepath.Join(sys, "ostree/deploy/default/deploy", ids[0]+".origin"))
	if !strings.Contains(string(origin), "container-image-reference=ostree-image-signed:docker://"+reg+"/os:stable\n") {
		t.Errorf("origin: %q", origin)
	}

	// Upgrades keep checking: a signed v2 goes in.
	compose("2.0", "os:stable", "--sign-key", key)
	mustRun(t, append(g, "upgrade")...)
	if st = hostStatusJSON(t, sys); entryVersion(st.Status.Booted) != "2.0" {
		t.Fatalf("signed upgrade: booted %s", entryVersion(st.Status.Booted))
	}

	// An image signed by the real cosign CLI.
	digest := compose("5.0", "cos:1")
	testutil.Run(t, "cosign", "sign", "--key", key, "--tlog-upload=false", "--yes", reg+"/cos@"+digest)
	mustRun(t, append(g, "switch", "--enforce-container-sigpolicy", reg+"/cos:1")...)
	if st = hostStatusJSON(t, sys); entryVersion(st.Status.Booted) != "5.0" || st.Spec.Image.Signature != "containerPolicy" {
		t.Fatalf("switch to the cosign-signed image: booted %s, spec %+v", entryVersion(st.Status.Booted), st.Spec.Image)
	}

	// ... and its update, signed by cosign too.
	digest = compose("5.1", "cos:1")
	testutil.Run(t, "cosign", "sign", "--key", key, "--tlog-upload=false", "--yes", reg+"/cos@"+digest)
	mustRun(t, append(g, "upgrade")...)
	if st = hostStatusJSON(t, sys); entryVersion(st.Status.Booted) != "5.1" || st.Status.Booted.Image.ImageDigest != digest {
		t.Fatalf("upgrade to the cosign-signed 5.1: booted %s %s, want %s", entryVersion(st.Status.Booted), st.Status.Booted.Image.ImageDigest, digest)
	}

	compose("6.0", "os:unsigned")
	compose("7.0", "os:otherkey", "--sign-key", otherKey)
	reject := writePolicy(t, map[string][]map[string]any{reg + "/os": {{"type": "reject"}}})
	anything := writePolicy(t, map[string][]map[string]any{reg + "/os": {{"type": "insecureAcceptAnything"}}})
	for _, tc := range []struct {
		name   string
		args   []string
		policy string
		want   string
	}{
		{"unsigned", []string{"switch", "--enforce-container-sigpolicy", reg + "/os:unsigned"}, policy, "rejected by the trust policy"},
		{"another key", []string{"switch", "--enforce-container-sigpolicy", reg + "/os:otherkey"}, policy, "rejected by the trust policy"},
		{"reject policy", []string{"switch", "--enforce-container-sigpolicy", reg + "/os:stable"}, reject, "rejected by the trust policy"},
		{"accepts anything", []string{"switch", "--enforce-container-sigpolicy", reg + "/os:stable"}, anything, "insecureAcceptAnything"},
		{"signed ref, accepts anything", []string{"switch", "ostree-image-signed:docker://" + reg + "/os:stable"}, anything, "insecureAcceptAnything"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, objects := sysrootState(t, sys), repoObjects(t, sys)
			_, errs, code := run(t, append([]string{"--signature-policy", tc.policy, "--sysroot", sys}, tc.args...)...)
			t.Logf("refused: %s", strings.TrimSpace(errs))
			if code != 1 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, reg+"/os") {
				t.Errorf("exit %d, stderr %q; want exit 1 naming the image and %q", code, errs, tc.want)
			}
			if after := sysrootState(t, sys); after != before {
				t.Errorf("a refused image changed the sysroot:\n%s", testutil.FirstDiff("before", before, "after", after))
			}
			checkNoNewObjects(t, sys, objects)
		})
	}

	// An unsigned image under the followed tag: the upgrade is refused.
	compose("3.0", "cos:1")
	_, errs, code := run(t, append(g, "upgrade")...)
	if code != 1 || !strings.Contains(errs, "rejected by the trust policy") {
		t.Errorf("upgrade to an unsigned image: exit %d, %q", code, errs)
	}
	if st = hostStatusJSON(t, sys); entryVersion(st.Status.Booted) != "5.1" {
		t.Errorf("a refused upgrade changed the booted image to %s", entryVersion(st.Status.Booted))
	}
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
}
