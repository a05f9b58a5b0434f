package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
)

// The lifecycle itself is tested in pkg/host; these tests check the CLI's flags, rendering,
// exit codes and help.

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// hostStatusJSON runs `bootc --sysroot S status ARGS...` (JSON output) and decodes it.
func hostStatusJSON(t *testing.T, sys string, args ...string) *host.BootcHost {
	t.Helper()
	var st host.BootcHost
	if args == nil {
		args = []string{"--format", "json"}
	}
	must(t, json.Unmarshal([]byte(mustRun(t, append([]string{"--sysroot", sys, "status"}, args...)...)), &st))
	return &st
}

func entryVersion(e *host.BootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return "<none>"
	}
	return *e.Image.Version
}

// TestHostCLIRendering runs install, upgrade (check, download-only, from-downloaded), rollback
// and switch through the CLI and checks what each prints, and the three status formats.
func TestHostCLIRendering(t *testing.T) {
	testutil.Root(t)
	layout := filepath.Join(t.TempDir(), "layout")
	stable := "oci:" + layout + ":stable"
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), stable)
	sys := testutil.SysrootDir(t)

	out := mustRun(t, "install", "to-filesystem", "--source-imgref", stable, "--karg", "console=ttyS0", sys)
	if !regexp.MustCompile(`(?s)^Pulled \S+: fetched \d+ layers \(.*\), reused 0\nSeeded /var from the image\nInstalled \S+ version 1\.0 \([0-9a-f]{12}\.0\) into ` + regexp.QuoteMeta(sys) + ` \(stateroot default\)\n$`).MatchString(out) {
		t.Errorf("install printed %q", out)
	}
	st := hostStatusJSON(t, sys)
	if entryVersion(st.Status.Booted) != "1.0" || st.APIVersion != "org.containers.bootc/v1" || st.Kind != "BootcHost" {
		t.Fatalf("status --format json: %+v", st)
	}
	// greenboot's call: the hidden --json is --format json.
	if b := hostStatusJSON(t, sys, "--booted", "--json"); entryVersion(b.Status.Booted) != "1.0" {
		t.Errorf("status --booted --json: %+v", b.Status)
	}
	if out := mustRun(t, "--sysroot", sys, "upgrade", "--check"); !strings.HasPrefix(out, "No changes in oci:"+layout+":stable (sha256:") {
		t.Errorf("upgrade --check with no new image: %q", out)
	}
	if out := mustRun(t, "--sysroot", sys, "upgrade"); !strings.Contains(out, "all ") || !strings.Contains(out, "No update available: oci:"+layout+":stable is at version 1.0 (") {
		t.Errorf("upgrade with no new image: %q", out)
	}
	// --quiet leaves the final result only.
	if out := mustRun(t, "--sysroot", sys, "upgrade", "--quiet"); !strings.HasPrefix(out, "No update available") || strings.Count(out, "\n") != 1 {
		t.Errorf("upgrade --quiet printed %q", out)
	}

	dep := filepath.Join(sys, "ostree/deploy/default/deploy", st.Status.Booted.Ostree.Checksum+".0")
	must(t, os.WriteFile(filepath.Join(dep, "etc/motd"), []byte("changed\n"), 0o644))
	testimage.Compose(t, testimage.TinyOS(t, "2.0", map[string]string{"usr/bin/newtool": "new\n"}), stable)
	out = mustRun(t, "--sysroot", sys, "upgrade", "--check")
	if !strings.Contains(out, "Update available for oci:") || !strings.Contains(out, "Version:  1.0 -> 2.0") || !regexp.MustCompile(`Download: \d+ of \d+ layers`).MatchString(out) {
		t.Errorf("upgrade --check: %q", out)
	}
	var uc host.UpdateCheck
	must(t, json.Unmarshal([]byte(mustRun(t, "--sysroot", sys, "upgrade", "--check", "--format", "json")), &uc))
	if !uc.UpdateAvailable || uc.Available.Version != "2.0" || uc.Current.Version != "1.0" || uc.Image.Transport != "oci" {
		t.Errorf("upgrade --check --format json: %+v", uc)
	}
	out = mustRun(t, "--sysroot", sys, "upgrade")
	if !regexp.MustCompile(`reused [1-9]`).MatchString(out) || !strings.Contains(out, "Carried over local /etc changes: 1 modified, 0 added, 0 removed\n") ||
		!regexp.MustCompile(`Upgraded \S+ from version 1\.0 \(\w{12}\.0\) to version 2\.0 \(\w{12}\.0\); it boots next\n$`).MatchString(out) {
		t.Errorf("upgrade printed %q", out)
	}

	if _, errs, code := run(t, "--sysroot", sys, "upgrade", "--from-downloaded"); code != 1 || !strings.Contains(errs, "no downloaded update for oci:") {
		t.Errorf("upgrade --from-downloaded with nothing downloaded: exit %d, %q", code, errs)
	}
	testimage.Compose(t, testimage.TinyOS(t, "3.0", nil), stable)
	if out := mustRun(t, "--sysroot", sys, "upgrade", "--download-only"); !regexp.MustCompile(`Downloaded version 3\.0 \(sha256:\w+\); deploy it with 'bootc upgrade --from-downloaded'\n$`).MatchString(out) {
		t.Errorf("upgrade --download-only: %q", out)
	}
	if human := mustRun(t, "--sysroot", sys, "status", "--format", "humanreadable"); !strings.Contains(human, "Downloaded update:") || !strings.Contains(human, "version 3.0 (deploy it with 'bootc upgrade --from-downloaded')") {
		t.Errorf("humanreadable status after --download-only:\n%s", human)
	}
	if out := mustRun(t, "--sysroot", sys, "upgrade", "--from-downloaded"); strings.Contains(out, "Pulled") || !strings.Contains(out, "to version 3.0") {
		t.Errorf("upgrade --from-downloaded: %q", out)
	}
	if out := mustRun(t, "--sysroot", sys, "rollback"); !strings.HasPrefix(out, "Next boot: oci:"+layout+":stable version 2.0 (") || !strings.Contains(out, "(the rollback deployment is now the default)") {
		t.Errorf("rollback: %q", out)
	}
	// The shutdown's call, with nothing staged (a sysroot directory has no runtime state).
	if out := mustRun(t, "--sysroot", sys, "internals", "finalize-staged"); out != "" {
		t.Errorf("internals finalize-staged with nothing staged printed %q", out)
	}

	other := filepath.Join(t.TempDir(), "other")
	testimage.Compose(t, testimage.TinyOS(t, "9.0", nil), "oci:"+other)
	if out := mustRun(t, "--sysroot", sys, "switch", "--transport", "oci", "--retain", other); !strings.Contains(out, "Deployed oci:"+other+" version 9.0 (") {
		t.Errorf("switch: %q", out)
	}
	if out := mustRun(t, "--sysroot", sys, "switch", "--transport", "oci", other); !strings.Contains(out, "Image specification is unchanged: already on oci:"+other) {
		t.Errorf("switch to the same image: %q", out)
	}
	human := mustRun(t, "--sysroot", sys, "status", "--format", "humanreadable")
	if !strings.Contains(human, "● Booted image: oci:"+other+" (signature not verified)") || !strings.Contains(human, "Version:") || !strings.Contains(human, "  Other deployment:") {
		t.Errorf("humanreadable status:\n%s", human)
	}
	if y := mustRun(t, "--sysroot", sys, "status"); !strings.Contains(y, "apiVersion: org.containers.bootc/v1") || !strings.Contains(y, "kind: BootcHost") {
		t.Errorf("default (yaml) status:\n%s", y)
	}
}

// TestHostRefusedImageCLI: a refused image exits 1 with the library's error.
func TestHostRefusedImageCLI(t *testing.T) {
	testutil.Root(t)
	good := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), "oci:"+good)
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+good, sys)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "usr/bin/tool", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	must(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	must(t, err)
	img, err := mutate.AppendLayers(empty.Image, l)
	must(t, err)
	bad := filepath.Join(t.TempDir(), "bad")
	p, err := layout.Write(bad, empty.Index)
	must(t, err)
	must(t, p.AppendImage(img))
	if _, errs, code := run(t, "--sysroot", sys, "switch", "--transport", "oci", bad); code != 1 || !strings.Contains(errs, "error: pulling ostree-unverified-image:oci:"+bad+": image is not bootable") {
		t.Errorf("switch to an image without a kernel: exit %d, %q", code, errs)
	}
}

func TestHostUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--sysroot", dir, "upgrade"}, "not installed by bootc", 1},
		{[]string{"--sysroot", dir, "status", "--format", "xml"}, "unknown --format", 2},
		{[]string{"--sysroot", dir, "status", "--json", "--format", "yaml"}, "contradict", 2},
		{[]string{"--sysroot", dir, "upgrade", "--check", "--apply"}, "--check only looks", 2},
		{[]string{"--sysroot", dir, "upgrade", "--download-only", "--from-downloaded"}, "two steps", 2},
		{[]string{"--sysroot", dir, "switch"}, "expected one IMAGE", 2},
		{[]string{"--sysroot", dir, "upgrade", "--format", "json"}, "--check only", 2},
		{[]string{"--sysroot", dir, "switch", "--transport", "ftp", "x"}, "--transport", 2},
		{[]string{"--sysroot", dir, "switch", "--transport", "oci", "ostree-unverified-registry:x"}, "already names its transport", 2},
		{[]string{"--sysroot", dir, "rollback", "extra"}, "no arguments", 2},
		{[]string{"install", "to-filesystem", "--source-imgref", "nowhere", dir}, "no transport", 2},
		{[]string{"install", "to-filesystem", "--source-imgref", "oci:/x", "--stateroot", "a/b", dir}, "--stateroot", 2},
		{[]string{"install", "to-filesystem", "--source-imgref", "oci:/x", filepath.Join(dir, "missing")}, "not a directory", 2},
	} {
		_, errs, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}

func TestHostApplyRefusedOnSysrootDir(t *testing.T) {
	testutil.Root(t)
	sys := testutil.SysrootDir(t)
	layout := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), "oci:"+layout)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, sys)
	for _, args := range [][]string{{"upgrade", "--apply"}, {"rollback", "--apply"}, {"switch", "--apply", "--transport", "oci", layout}} {
		_, errs, code := run(t, append([]string{"--sysroot", sys}, args...)...)
		if code != 2 || !strings.Contains(errs, "sysroot directory") {
			t.Errorf("%v: exit %d, %q; want a refusal naming the sysroot directory", args, code, errs)
		}
	}
	if _, errs, code := run(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, sys); code != 1 || !strings.Contains(errs, "already holds an installation") {
		t.Errorf("second install: exit %d, %q", code, errs)
	}
}
