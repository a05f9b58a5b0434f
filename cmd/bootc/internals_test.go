package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
)

// TestBootInternalsCLI: the hidden commands the boot-counting units run: health-check logs each
// check's output (the journal) and passes with a failing wanted check; check-fallback and
// mark-boot-good do nothing without a GRUB environment block; status shows a recorded failed
// update in JSON and as one human-readable line; mark-boot-good after a counted boot ends the
// count and clears it. The fallback itself is tested in pkg/host.
func TestBootInternalsCLI(t *testing.T) {
	testutil.Root(t)
	rootfs := testimage.TinyOS(t, "1.0", map[string]string{
		"usr/lib/bootc/health.d/required.d/10-ok": "#!/bin/sh\necho all good\n",
		"usr/lib/bootc/health.d/wanted.d/20-warn": "#!/bin/sh\necho degraded >&2\nexit 1\n",
	})
	for _, p := range []string{"required.d/10-ok", "wanted.d/20-warn"} {
		must(t, os.Chmod(filepath.Join(rootfs, "usr/lib/bootc/health.d", p), 0o755))
	}
	layout := "oci:" + filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, rootfs, layout)
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", layout, sys)

	_, errs, code := run(t, "--sysroot", sys, "internals", "health-check")
	if code != 0 || !strings.Contains(errs, "required.d/10-ok: all good\n") || !strings.Contains(errs, "wanted.d/20-warn: degraded\n") || !strings.Contains(errs, "wanted health check failed with exit status 1") {
		t.Errorf("internals health-check: exit %d\n%s", code, errs)
	}
	for _, cmd := range []string{"check-fallback", "mark-boot-good"} {
		if out := mustRun(t, "--sysroot", sys, "internals", cmd); out != "" {
			t.Errorf("internals %s printed %q", cmd, out)
		}
	}
	if _, err := os.Stat(filepath.Join(sys, "boot/grub/grubenv")); !os.IsNotExist(err) {
		t.Errorf("a grubenv appeared: %v", err)
	}
	if out := mustRun(t, "--help"); strings.Contains(out, "internals") {
		t.Errorf("bootc --help lists the hidden internals:\n%s", out)
	}

	// A failure CheckFallback recorded (format 1), as status reads it.
	record := `{"format": 1, "deployment": "default/x.0", "failedUpdate": {"image": {"image": "example.com/org/os:stable", "transport": "registry", "signature": "insecure"},
	  "imageDigest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "version": "2.0",
	  "reason": "required health check required.d/10-disk failed with exit status 4 (on the last of 3 attempts)", "attempts": 3, "timestamp": "2026-01-02T03:04:05Z",
	  "healthCheck": {"name": "required.d/10-disk", "exitCode": 4, "output": "/data is not mounted"}}}`
	dir := filepath.Join(sys, "ostree/deploy/default/var/lib/bootc")
	must(t, os.MkdirAll(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "failed-update.json"), []byte(record), 0o644))
	st := hostStatusJSON(t, sys)
	if f := st.Status.FailedUpdate; f == nil || f.Image.Image != "example.com/org/os:stable" || f.Attempts != 3 || f.HealthCheck == nil || f.HealthCheck.ExitCode != 4 {
		t.Fatalf("status --format json: failedUpdate %+v", f)
	}
	if out := mustRun(t, "--sysroot", sys, "status", "--format", "json"); !strings.Contains(out, `"failedUpdate": {`) || !strings.Contains(out, `"imageDigest": "sha256:2222`) {
		t.Errorf("status JSON:\n%s", out)
	}
	human := mustRun(t, "--sysroot", sys, "status", "--format", "humanreadable")
	if want := "\nFailed update: version 2.0 (sha256:2222222222222222222222222222222222222222222222222222222222222222), fell back at 2026-01-02T03:04:05Z: required health check required.d/10-disk failed with exit status 4 (on the last of 3 attempts) (upgrades skip it)\n"; !strings.HasSuffix(human, want) {
		t.Errorf("humanreadable status lacks %q:\n%s", want, human)
	}

	// A counted boot that reaches boot-complete.target.
	env := grub.NewEnv()
	env.Set("boot_counter", "2")
	env.Set("boot_success", "0")
	must(t, os.MkdirAll(filepath.Join(sys, "boot/grub"), 0o755))
	must(t, grub.WriteEnv(filepath.Join(sys, "boot/grub/grubenv"), env))
	mustRun(t, "--sysroot", sys, "internals", "mark-boot-good")
	env, err := grub.ReadEnv(filepath.Join(sys, "boot/grub/grubenv"))
	must(t, err)
	if _, counted := env.Get("boot_counter"); counted || strings.Join(env.Names(), " ") != "boot_success" {
		t.Errorf("grubenv after mark-boot-good: %v", env.Names())
	}
	if st := hostStatusJSON(t, sys); st.Status.FailedUpdate != nil {
		t.Errorf("failedUpdate after a good counted boot: %+v", st.Status.FailedUpdate)
	}
}

// TestIgnitionFirstBootCLI: the hidden commands of bootc-ignition-firstboot.service and its
// health check, in a temporary root with modprobe and systemctl faked in $PATH. Without a config:
// "No Ignition config", then "Already provisioned". With a config that does not parse: the
// error, the failure record, and a failing health check in this boot. Applying a real config is
// tested in pkg/firstboot (TestFirstBootAppliesConfig).
func TestIgnitionFirstBootCLI(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"modprobe", "systemctl"} {
		must(t, os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho \"$*\" >> $0.log\nexit 1\n"), 0o755))
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	root, config := t.TempDir(), filepath.Join(t.TempDir(), "raw")
	args := []string{"internals", "ignition-firstboot", "--root", root, "--config", config}
	if out := mustRun(t, args...); out != "No Ignition config: nothing to apply\n" {
		t.Errorf("first boot without a config printed %q", out)
	}
	if out := mustRun(t, args...); !strings.HasPrefix(out, "Already provisioned at ") || !strings.HasSuffix(out, " (no-config)\n") {
		t.Errorf("second boot printed %q", out)
	}
	mustRun(t, "internals", "ignition-firstboot-check", "--root", root)

	root = t.TempDir()
	must(t, os.WriteFile(config, []byte("not a config"), 0o644))
	args[3] = root
	if _, errs, code := run(t, args...); code == 0 || !strings.Contains(errs, "Ignition first-boot provisioning failed") {
		t.Errorf("a config that does not parse: exit %d\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/bootc/ignition-firstboot-failed.json")); err != nil {
		t.Errorf("no failure record: %v", err)
	}
	if _, errs, code := run(t, "internals", "ignition-firstboot-check", "--root", root); code == 0 || !strings.Contains(errs, "in this boot") {
		t.Errorf("health check after the failure: exit %d\n%s", code, errs)
	}
	if _, err := os.ReadFile(filepath.Join(bin, "systemctl.log")); err == nil {
		t.Errorf("systemctl ran")
	}
}
