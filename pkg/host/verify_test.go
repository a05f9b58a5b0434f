package host_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/verify"
)

// TestSignedImages: images signed by testimage (package sign) and by the real cosign CLI
// install, switch and upgrade under a policy that requires sigstoreSigned, each reporting a
// Verified event and pinning the pull to the verified digest; unsigned images, images signed
// with another key, a reject policy and a policy that accepts anything are refused before any
// of the image reaches the repository, and no deployment is added.
func TestSignedImages(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	testutil.Cosign(t, "")
	key, pub := testutil.CosignKeyPair(t)
	otherKey, _ := testutil.CosignKeyPair(t)
	reg := testutil.Registry(t)
	ctx := t.Context()
	compose := func(version, ref string, opts ...testimage.Option) string {
		t.Helper()
		return testimage.Compose(t, testimage.TinyOS(t, version, map[string]string{"usr/share/v": version}), "docker://"+reg+"/"+ref, opts...).String()
	}
	compose("1.0", "os:stable", testimage.WithSignKey(key))
	policy := testutil.WritePolicy(t, map[string][]map[string]any{reg + "/os": testutil.SigstoreKey(pub), reg + "/cos": testutil.SigstoreKey(pub)})
	withPolicy := host.WithPolicy(policy)

	sys := testutil.SysrootDir(t)
	var ev events
	in, err := host.InstallToFilesystem(ctx, sys, host.Install{Source: image(t, "docker://"+reg+"/os:stable", true)}, withPolicy, host.WithProgress(ev.add))
	must(t, err)
	st := status(t, sys)
	if entryVersion(st.Status.Booted) != "1.0" || st.Status.Booted.Image.Image.Signature != "containerPolicy" {
		t.Fatalf("after a verified install: %+v", st.Status.Booted.Image)
	}
	if in.Pulled.Verified == nil || in.Pulled.Verified.Digest != in.Pulled.State.Digest || !strings.Contains(in.Pulled.Verified.Scope, reg+"/os") {
		t.Errorf("install's verification: %+v, pulled %s", in.Pulled.Verified, in.Pulled.State.Digest)
	}
	if len(ev.all) == 0 {
		t.Fatal("no events")
	}
	if v, ok := ev.all[0].(host.Verified); !ok || v.Digest != in.Pulled.State.Digest {
		t.Errorf("first event %#v, want Verified of %s", ev.all[0], in.Pulled.State.Digest)
	}
	ids, _ := adminStatus(t, sys)
	origin, _ := os.ReadFile(filepath.Join(sys, "ostree/deploy/default/deploy", ids[0]+".origin"))
	if !strings.Contains(string(origin), "container-image-reference=ostree-image-signed:docker://"+reg+"/os:stable\n") {
		t.Errorf("origin: %q", origin)
	}

	upgrade := func() (*host.UpgradeResult, error) {
		t.Helper()
		h := open(t, sys, withPolicy)
		defer h.Close()
		return h.Upgrade(ctx, host.UpgradeDeploy)
	}
	switchTo := func(ref imgref.OstreeRef, opts ...host.Option) (*host.SwitchResult, error) {
		t.Helper()
		h := open(t, sys, opts...)
		defer h.Close()
		return h.Switch(ctx, ref)
	}

	// Upgrades keep checking: a signed v2 goes in.
	compose("2.0", "os:stable", testimage.WithSignKey(key))
	if up, err := upgrade(); err != nil || up.Pulled.Verified == nil || up.Next.Version != "2.0" {
		t.Fatalf("signed upgrade: %+v, %v", up, err)
	}
	if st = status(t, sys); entryVersion(st.Status.Booted) != "2.0" {
		t.Fatalf("signed upgrade: booted %s", entryVersion(st.Status.Booted))
	}

	// An image signed by the real cosign CLI.
	digest := compose("5.0", "cos:1")
	testutil.Run(t, "cosign", "sign", "--key", key, "--tlog-upload=false", "--yes", reg+"/cos@"+digest)
	if _, err := switchTo(image(t, "docker://"+reg+"/cos:1", true), withPolicy); err != nil {
		t.Fatal(err)
	}
	if st = status(t, sys); entryVersion(st.Status.Booted) != "5.0" || st.Spec.Image.Signature != "containerPolicy" {
		t.Fatalf("switch to the cosign-signed image: booted %s, spec %+v", entryVersion(st.Status.Booted), st.Spec.Image)
	}

	// ... and its update, signed by cosign too.
	digest = compose("5.1", "cos:1")
	testutil.Run(t, "cosign", "sign", "--key", key, "--tlog-upload=false", "--yes", reg+"/cos@"+digest)
	if up, err := upgrade(); err != nil || up.Pulled.Verified.Digest.String() != digest {
		t.Fatalf("upgrade to the cosign-signed 5.1: %+v, %v", up, err)
	}
	if st = status(t, sys); entryVersion(st.Status.Booted) != "5.1" || st.Status.Booted.Image.ImageDigest != digest {
		t.Fatalf("upgrade to the cosign-signed 5.1: booted %s %s, want %s", entryVersion(st.Status.Booted), st.Status.Booted.Image.ImageDigest, digest)
	}

	compose("6.0", "os:unsigned")
	compose("7.0", "os:otherkey", testimage.WithSignKey(otherKey))
	reject := testutil.WritePolicy(t, map[string][]map[string]any{reg + "/os": {{"type": "reject"}}})
	anything := testutil.WritePolicy(t, map[string][]map[string]any{reg + "/os": {{"type": "insecureAcceptAnything"}}})
	signed := func(s string) imgref.OstreeRef { return image(t, "docker://"+reg+"/"+s, true) }
	ostreeSigned, err := imgref.ParseOstree("ostree-image-signed:docker://" + reg + "/os:stable")
	must(t, err)
	for _, tc := range []struct {
		name   string
		ref    imgref.OstreeRef
		policy string
		is     error
	}{
		{"unsigned", signed("os:unsigned"), policy, verify.ErrRejected},
		{"another key", signed("os:otherkey"), policy, verify.ErrRejected},
		{"reject policy", signed("os:stable"), reject, verify.ErrRejected},
		{"accepts anything", signed("os:stable"), anything, verify.ErrAcceptsAnything},
		{"signed ref, accepts anything", ostreeSigned, anything, verify.ErrAcceptsAnything},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, objects := sysrootState(t, sys), repoObjects(t, sys)
			_, err := switchTo(tc.ref, host.WithPolicy(tc.policy))
			t.Logf("refused: %v", err)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), reg+"/os") {
				t.Errorf("%v; want %v naming the image", err, tc.is)
			}
			checkRefused(t, sys, before, objects)
		})
	}

	// An unsigned image under the followed tag: the upgrade is refused.
	compose("3.0", "cos:1")
	if _, err := upgrade(); !errors.Is(err, verify.ErrRejected) {
		t.Errorf("upgrade to an unsigned image: %v", err)
	}
	if st = status(t, sys); entryVersion(st.Status.Booted) != "5.1" {
		t.Errorf("a refused upgrade changed the booted image to %s", entryVersion(st.Status.Booted))
	}
	fsck(t, sys)
}
