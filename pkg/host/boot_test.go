package host_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/health"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// grubEnvPath is where GRUB's environment block is in a sysroot.
func grubEnvPath(sys string) string { return filepath.Join(sys, "boot/grub/grubenv") }

// setGrubEnv writes the sysroot's GRUB environment block with vars, as GRUB leaves it.
func setGrubEnv(t *testing.T, sys string, vars ...string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(grubEnvPath(sys)), 0o755))
	e := grub.NewEnv()
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	must(t, grub.WriteEnv(grubEnvPath(sys), e))
}

// grubVars lists the block's variables as NAME=VALUE.
func grubVars(t *testing.T, sys string) string {
	t.Helper()
	e, err := grub.ReadEnv(grubEnvPath(sys))
	must(t, err)
	var out []string
	for _, n := range e.Names() {
		v, _ := e.Get(n)
		out = append(out, n+"="+v)
	}
	return strings.Join(out, " ")
}

// deploymentID names a status entry as host.WithBooted does.
func deploymentID(e *host.BootEntry) string {
	return e.Ostree.Stateroot + "/" + e.Ostree.Checksum + "." + strconv.Itoa(e.Ostree.DeploySerial)
}

// tinyOSWithChecks is TinyOS with executable health check scripts (path -> body) and more files.
func tinyOSWithChecks(t *testing.T, version string, checks, extra map[string]string) string {
	t.Helper()
	files := map[string]string{}
	for p, body := range checks {
		files[p] = "#!/bin/sh\n" + body + "\n"
	}
	for p, c := range extra {
		files[p] = c
	}
	dir := testimage.TinyOS(t, version, files)
	for p := range checks {
		must(t, os.Chmod(filepath.Join(dir, p), 0o755))
	}
	return dir
}

// TestBootCounting walks the boot-counting protocol on a sysroot directory with images in a
// registry: without a GRUB environment block nothing happens; an update whose required health
// check fails fails its counted boot and records why; after GRUB's fallback CheckFallback makes
// the previous deployment the default again, records the failed update (image, digest, version,
// attempts, time, the health check's name, exit status and output) and ends the count, once;
// status shows it; upgrades hold that digest back with a warning that says how to deploy it
// anyway, which works; a later counted boot that succeeds clears the record; a newer digest is
// an update again.
func TestBootCounting(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	reg := testutil.Registry(t)
	ref := "docker://" + reg + "/os:stable"
	v1Digest := testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), ref)
	sys, _ := install(t, ref, host.Install{})
	st := status(t, sys)
	good := deploymentID(st.Status.Booted)

	// No GRUB environment block: nothing to do, nothing written.
	h := open(t, sys)
	if fu, err := h.CheckFallback(ctx); fu != nil || err != nil {
		t.Errorf("CheckFallback without grubenv: %+v, %v", fu, err)
	}
	if ok, err := h.MarkBootGood(ctx); ok || err != nil {
		t.Errorf("MarkBootGood without grubenv: %v, %v", ok, err)
	}
	h.Close()
	if _, err := os.Stat(grubEnvPath(sys)); !os.IsNotExist(err) {
		t.Fatalf("a grubenv appeared: %v", err)
	}
	if res, err := host.HealthCheck(ctx, sys); err != nil || res.Failure != nil || res.Counted {
		t.Errorf("HealthCheck of an image without checks: %+v, %v", res, err)
	}

	// v2 ships a required check that fails, and two boot attempts.
	v2 := tinyOSWithChecks(t, "2.0", map[string]string{
		"usr/lib/bootc/health.d/required.d/10-disk": "echo checking /data\necho '/data is not mounted' >&2\nexit 4",
		"usr/lib/bootc/health.d/wanted.d/10-ok":     "true",
	}, map[string]string{"usr/lib/bootc/config.toml": "[boot]\nattempts = 2\n"})
	v2Digest := testimage.Compose(t, v2, ref)
	h = open(t, sys)
	up, err := h.Upgrade(ctx, host.UpgradeDeploy)
	must(t, err)
	if n, err := h.BootAttempts(up.Deployed.Deployment); n != 2 || err != nil {
		t.Errorf("BootAttempts of v2: %d, %v", n, err)
	}
	h.Close()
	failed := deploymentID(status(t, sys).Status.Booted)

	// Its first boot is counted (GRUB has counted 2 down to 1): the check fails the boot.
	setGrubEnv(t, sys, "boot_counter=1", "boot_success=0")
	res, err := host.HealthCheck(ctx, sys)
	var fe *health.FailedError
	if !errors.As(err, &fe) || !res.Counted || fe.Failed[0].Name != "required.d/10-disk" || fe.Failed[0].ExitCode != 4 {
		t.Fatalf("HealthCheck of a counted boot: %+v, %v", res, err)
	}
	// Nor does marking the boot good happen while an update waits or before the fallback.
	setGrubEnv(t, sys, "boot_counter=-1", "boot_success=0")
	h = open(t, sys, host.WithBooted(good))
	if ok, err := h.MarkBootGood(ctx); ok || err != nil || grubVars(t, sys) != "boot_counter=-1 boot_success=0" {
		t.Errorf("MarkBootGood on the fallback boot: %v, %v, grubenv %s", ok, err, grubVars(t, sys))
	}

	// GRUB fell back to v1: the fallback becomes permanent.
	before := time.Now().Add(-time.Second)
	fu, err := h.CheckFallback(ctx)
	h.Close()
	must(t, err)
	if fu == nil || fu.Image == nil || fu.Image.Image != reg+"/os:stable" || fu.ImageDigest != v2Digest.String() || fu.Version == nil || *fu.Version != "2.0" || fu.Attempts != 2 {
		t.Fatalf("CheckFallback: %+v", fu)
	}
	if ts, err := time.Parse(time.RFC3339, fu.Timestamp); err != nil || ts.Before(before) {
		t.Errorf("timestamp %q: %v", fu.Timestamp, err)
	}
	if fu.Reason != "required health check required.d/10-disk failed with exit status 4 (on the last of 2 attempts)" ||
		fu.HealthCheck == nil || fu.HealthCheck.ExitCode != 4 || fu.HealthCheck.Output != "checking /data\n/data is not mounted" {
		t.Errorf("reason %q, check %+v", fu.Reason, fu.HealthCheck)
	}
	st = status(t, sys)
	if deploymentID(st.Status.Booted) != good || st.Status.Rollback == nil || deploymentID(st.Status.Rollback) != failed {
		t.Errorf("after the fallback: booted %s, rollback %+v; want %s then %s", deploymentID(st.Status.Booted), st.Status.Rollback, good, failed)
	}
	if got := grubVars(t, sys); got != "boot_success=1" {
		t.Errorf("grubenv after the fallback: %s", got)
	}
	checkAdminStatus(t, sys)
	if doc, _ := json.Marshal(st); st.Status.FailedUpdate == nil || st.Status.FailedUpdate.ImageDigest != v2Digest.String() ||
		!strings.Contains(string(doc), `"failedUpdate":{"image":{"image":"`+reg+`/os:stable","transport":"registry"},"imageDigest":"`+v2Digest.String()+`","version":"2.0","reason":"required health check`) {
		t.Errorf("status: %s", doc)
	}

	// Again (a second run, or a run after one that was killed after writing the boot order):
	// nothing changes.
	state := sysrootState(t, sys)
	setGrubEnv(t, sys, "boot_counter=-1", "boot_success=0")
	h = open(t, sys)
	if fu, err := h.CheckFallback(ctx); fu != nil || err != nil || grubVars(t, sys) != "boot_success=1" {
		t.Errorf("CheckFallback once more: %+v, %v, grubenv %s", fu, err, grubVars(t, sys))
	}
	if fu, err := h.CheckFallback(ctx); fu != nil || err != nil {
		t.Errorf("CheckFallback a third time: %+v, %v", fu, err)
	}
	h.Close()
	if after := sysrootState(t, sys); after != state {
		t.Errorf("a second CheckFallback changed the sysroot:\n%s", testutil.FirstDiff("before", state, "after", after))
	}

	// The fallback boot is not counted: a failing check there would only warn (checked below).
	// Upgrades hold v2 back, with a warning that says how to deploy it anyway.
	var ev events
	h = open(t, sys, host.WithProgress(ev.add))
	uc, err := h.CheckUpgrade(ctx)
	if err != nil || uc.UpdateAvailable || uc.HeldBack == nil || uc.HeldBack.ImageDigest != v2Digest.String() || uc.Download.Layers != 0 {
		t.Errorf("CheckUpgrade of the failed digest: %+v, %v", uc, err)
	}
	up, err = h.Upgrade(ctx, host.UpgradeDeploy)
	if err != nil || !up.NoUpdate || up.HeldBack == nil || up.Deployed != nil {
		t.Errorf("Upgrade to the failed digest: %+v, %v", up, err)
	}
	h.Close()
	var warnings []string
	for _, e := range ev.all {
		if w, ok := e.(host.Warning); ok && errors.Is(w.Err, host.ErrUpdateFailedBefore) {
			warnings = append(warnings, w.Err.Error())
		}
	}
	want := "version 2.0 (" + v2Digest.String() + ") of docker://" + reg + "/os:stable fell back to the previous deployment at " + fu.Timestamp
	if len(warnings) != 2 || !strings.Contains(warnings[0], want) || !strings.Contains(warnings[1], "to deploy it anyway, run 'bootc switch ostree-unverified-registry:"+reg+"/os:stable'") {
		t.Errorf("warnings %q; want two with %q", warnings, want)
	}
	if st := status(t, sys); deploymentID(st.Status.Booted) != good {
		t.Errorf("the held-back upgrade deployed %s", deploymentID(st.Status.Booted))
	}

	// Deploying it anyway: switch to the same image.
	h = open(t, sys)
	sw, err := h.Switch(ctx, image(t, "ostree-unverified-registry:"+reg+"/os:stable", false))
	h.Close()
	if err != nil || sw.Unchanged || sw.Deployed.Image.Digest != v2Digest {
		t.Fatalf("switch to the held-back image: %+v, %v", sw, err)
	}
	// An uncounted boot with a failing check only warns.
	setGrubEnv(t, sys, "boot_success=0")
	ev = events{}
	res, err = host.HealthCheck(ctx, sys, host.WithProgress(ev.add))
	if err != nil || res.Counted || !errors.Is(res.Failure, health.ErrFailed) || len(ev.all) != 1 {
		t.Errorf("HealthCheck of an uncounted boot: %+v, %v, events %+v", res, err, ev.all)
	}
	// A counted boot that succeeds ends the count and clears the failure.
	setGrubEnv(t, sys, "boot_counter=2", "boot_success=0")
	h = open(t, sys)
	if ok, err := h.MarkBootGood(ctx); !ok || err != nil || grubVars(t, sys) != "boot_success=1" {
		t.Errorf("MarkBootGood: %v, %v, grubenv %s", ok, err, grubVars(t, sys))
	}
	if ok, err := h.MarkBootGood(ctx); ok || err != nil {
		t.Errorf("MarkBootGood again: %v, %v", ok, err)
	}
	h.Close()
	if st := status(t, sys); st.Status.FailedUpdate != nil {
		t.Errorf("the failure stays after a good boot: %+v", st.Status.FailedUpdate)
	}

	// A new digest is an update.
	v3Digest := testimage.Compose(t, testimage.TinyOS(t, "3.0", nil), ref)
	h = open(t, sys)
	if uc, err := h.CheckUpgrade(ctx); err != nil || !uc.UpdateAvailable || uc.Available.Digest != v3Digest.String() || uc.HeldBack != nil {
		t.Errorf("CheckUpgrade of a new digest: %+v, %v", uc, err)
	}
	h.Close()
	if v1Digest == v2Digest || v2Digest == v3Digest {
		t.Fatal("the test images are not distinct")
	}
}

// fellBack makes a sysroot where GRUB fell back: v1 installed, v2 deployed as the default and
// used up its attempts (boot_counter=-1); it returns the sysroot and both deployments' names.
func fellBack(t *testing.T) (sys, good, failed string) {
	t.Helper()
	layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":stable"
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), layout)
	sys, _ = install(t, layout, host.Install{})
	good = deploymentID(status(t, sys).Status.Booted)
	testimage.Compose(t, testimage.TinyOS(t, "2.0", nil), layout)
	h := open(t, sys)
	_, err := h.Upgrade(t.Context(), host.UpgradeDeploy)
	must(t, err)
	h.Close()
	setGrubEnv(t, sys, "boot_counter=-1", "boot_success=0")
	return sys, good, deploymentID(status(t, sys).Status.Booted)
}

// TestFallbackWithoutHealthRecord: when the failed deployment recorded no failing health check
// (it never got that far), the reason is that it did not complete booting.
func TestFallbackWithoutHealthRecord(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	sys, good, _ := fellBack(t)
	h := open(t, sys, host.WithBooted(good))
	fu, err := h.CheckFallback(t.Context())
	h.Close()
	if err != nil || fu == nil || fu.Reason != "did not complete booting after 3 attempts" || fu.HealthCheck != nil || fu.Attempts != 3 {
		t.Fatalf("CheckFallback: %+v, %v", fu, err)
	}
	if st := status(t, sys); deploymentID(st.Status.Booted) != good || st.Status.FailedUpdate == nil {
		t.Errorf("status after the fallback: %+v", st.Status)
	}
}

// TestFallbackResumes: a run killed after it recorded the failure left its record; the next run
// keeps it as it is (reason, time) and finishes.
func TestFallbackResumes(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	sys, good, failed := fellBack(t)
	dir := filepath.Join(sys, "ostree/deploy/default/var/lib/bootc")
	must(t, os.MkdirAll(dir, 0o755))
	rec := `{"format": 1, "deployment": "` + failed + `", "failedUpdate": {"image": null, "imageDigest": "sha256:1", "version": null, "reason": "recorded before the kill", "attempts": 3, "timestamp": "2026-01-01T00:00:00Z"}}`
	must(t, os.WriteFile(filepath.Join(dir, "failed-update.json"), []byte(rec), 0o644))
	h := open(t, sys, host.WithBooted(good))
	fu, err := h.CheckFallback(t.Context())
	h.Close()
	if err != nil || fu == nil || fu.Reason != "recorded before the kill" || fu.Timestamp != "2026-01-01T00:00:00Z" {
		t.Fatalf("CheckFallback: %+v, %v", fu, err)
	}
	if st := status(t, sys); deploymentID(st.Status.Booted) != good || deploymentID(st.Status.Rollback) != failed || grubVars(t, sys) != "boot_success=1" {
		t.Errorf("after the resumed fallback: booted %s, grubenv %s", deploymentID(st.Status.Booted), grubVars(t, sys))
	}
}

// TestRefusesUnrunnableHealthChecks: an image whose /usr/lib/bootc/health.d holds a check that
// is not executable is refused by switch, upgrade and install before anything is deployed, with
// an error naming the file; the sysroot stays as it was and nothing of the image stays.
func TestRefusesUnrunnableHealthChecks(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":stable"
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), layout)
	sys, _ := install(t, layout, host.Install{})

	bad := tinyOSWithChecks(t, "2.0", map[string]string{"usr/lib/bootc/health.d/required.d/10-ok": "true"}, map[string]string{"usr/lib/bootc/health.d/required.d/20-net": "#!/bin/sh\ntrue\n"})
	other := "oci:" + filepath.Join(t.TempDir(), "other")
	testimage.Compose(t, bad, other)
	wantErr := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, health.ErrNotExecutable) || !strings.Contains(err.Error(), "/usr/lib/bootc/health.d/required.d/20-net is not executable (mode 0644)") {
			t.Errorf("%s: %v; want the refusal of required.d/20-net", what, err)
		}
	}

	before, objects := sysrootState(t, sys), repoObjects(t, sys)
	h := open(t, sys)
	_, err := h.Switch(ctx, image(t, other, false))
	h.Close()
	wantErr("switch", err)
	checkRefused(t, sys, before, objects)

	testimage.Compose(t, bad, layout)
	h = open(t, sys)
	_, err = h.Upgrade(ctx, host.UpgradeDeploy)
	h.Close()
	wantErr("upgrade", err)
	if st := status(t, sys); len(st.Entries()) != 1 || entryVersion(st.Status.Booted) != "1.0" {
		t.Errorf("after the refused upgrade: %+v", st.Status)
	}

	_, err = host.InstallToFilesystem(ctx, testutil.SysrootDir(t), host.Install{Source: image(t, other, false)})
	wantErr("install", err)
	fsck(t, sys)
}

// TestHealthCheckWithoutSysroot: checks that cannot even be found fail a counted boot, and only
// warn on one that is not counted (where a reboot would loop).
func TestHealthCheckWithoutSysroot(t *testing.T) {
	dir := t.TempDir()
	var ev events
	res, err := host.HealthCheck(t.Context(), dir, host.WithProgress(ev.add))
	if err != nil || res.Counted || !errors.Is(res.Failure, sysroot.ErrNotSysroot) || len(ev.all) != 1 {
		t.Errorf("uncounted: %+v, %v, events %+v", res, err, ev.all)
	}
	setGrubEnv(t, dir, "boot_counter=2", "boot_success=0")
	if res, err := host.HealthCheck(t.Context(), dir); !errors.Is(err, sysroot.ErrNotSysroot) || !res.Counted {
		t.Errorf("counted: %+v, %v", res, err)
	}
}

// TestBootCountingState: BootCounting is true while GRUB counts the booted default deployment
// (or fell back and CheckFallback has not run), false without GRUB, after MarkBootGood, and
// when the counter belongs to the next boot (the booted deployment is not the default).
func TestBootCountingState(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	stable, sys, _ := installStable(t)
	old := deploymentID(status(t, sys).Status.Booted)
	testimage.Compose(t, testimage.TinyOS(t, "2.0", nil), stable)
	h := open(t, sys)
	_, err := h.Upgrade(t.Context(), host.UpgradeDeploy)
	must(t, err)
	h.Close()
	for _, tc := range []struct {
		name   string
		vars   []string
		booted string
		want   bool
	}{
		{"no grubenv", nil, "", false},
		{"counting", []string{"boot_counter=2", "boot_success=0"}, "", true},
		{"good", []string{"boot_success=1"}, "", false},
		{"next boot's counter", []string{"boot_counter=3", "boot_success=0"}, old, false},
		{"fell back", []string{"boot_counter=-1", "boot_success=0"}, old, true},
	} {
		if tc.vars != nil {
			setGrubEnv(t, sys, tc.vars...)
		}
		h := open(t, sys, host.WithBooted(tc.booted))
		if got, err := h.BootCounting(); err != nil || got != tc.want {
			t.Errorf("%s: BootCounting = %v, %v; want %v", tc.name, got, err, tc.want)
		}
		h.Close()
	}
}
