package host_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
)

// TestStagedUpgrade runs the running system's flow on a sysroot directory with a runtime
// directory (WithRuntimeDir), as on a booted machine: upgrade stages (the boot entries stay),
// Status shows the staged entry, /etc is edited after staging, FinalizeStaged writes the new
// default with that edit; staging again replaces the staged deployment; rollback discards it.
func TestStagedUpgrade(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	stable, sys, in := installStable(t)
	installed := in.Deployed.Deployment
	etc := filepath.Join(sys, installed.Dir(), "etc")
	must(t, os.WriteFile(filepath.Join(etc, "demo/theme.conf"), []byte("colour=green\n"), 0o644))
	rt := filepath.Join(t.TempDir(), "ostree")
	live := host.WithRuntimeDir(rt)

	testimage.Compose(t, testimage.TinyOS(t, "2.0", nil), stable)
	before, _ := adminStatus(t, sys)
	h := open(t, sys, live)
	up, err := h.Upgrade(ctx, host.UpgradeDeploy)
	must(t, err)
	h.Close()
	if d := up.Deployed; d == nil || !d.Staged || d.Deployment.Index != -1 || d.Image.Version != "2.0" || d.EtcModified+d.EtcAdded+d.EtcRemoved != 0 {
		t.Fatalf("staged upgrade: %+v", up.Deployed)
	}
	staged := up.Deployed.Deployment
	if after, _ := adminStatus(t, sys); len(after) != 1 || after[0] != before[0] {
		t.Fatalf("staging changed the boot entries: %v, before %v", after, before)
	}
	st, err := host.Status(ctx, sys, live)
	must(t, err)
	if st.Status.Staged == nil || !st.Status.Staged.Deployment().Equal(staged) || entryVersion(st.Status.Staged) != "2.0" ||
		entryVersion(st.Status.Booted) != "1.0" || st.Status.Rollback != nil || st.Status.RollbackQueued {
		t.Fatalf("status while staged: %+v", st.Status)
	}
	if roles := st.Entries(); len(roles) != 2 || roles[0].Role != host.RoleStaged || roles[1].Role != host.RoleBooted {
		t.Errorf("status entries: %+v", roles)
	}
	if plain := status(t, sys); plain.Status.Staged != nil || len(plain.Entries()) != 1 {
		t.Errorf("Status without the runtime directory shows %+v", plain.Status)
	}
	// The staged deployment counts as what the host runs.
	h = open(t, sys, live)
	if again, err := h.Upgrade(ctx, host.UpgradeDeploy); err != nil || !again.NoUpdate || !again.From.Equal(staged) {
		t.Errorf("upgrade while 2.0 is staged: %+v, %v", again, err)
	}
	h.Close()

	// Edits until the shutdown are carried over.
	must(t, os.WriteFile(filepath.Join(etc, "demo/late.conf"), []byte("late\n"), 0o644))
	must(t, os.Remove(filepath.Join(etc, "motd")))
	fin, err := host.FinalizeStaged(ctx, sys, live, host.WithBootAttempts(0))
	must(t, err)
	if fin.Deployment == nil || !fin.Deployment.Equal(staged) || fin.Deployment.Index != 0 || fin.Locked || fin.EtcModified != 1 || fin.EtcAdded != 1 || fin.EtcRemoved != 1 {
		t.Fatalf("FinalizeStaged: %+v", fin)
	}
	for p, want := range map[string]string{"etc/demo/theme.conf": "colour=green\n", "etc/demo/late.conf": "late\n", "etc/demo/defaults.conf": "level=2.0\n"} {
		if data, err := os.ReadFile(filepath.Join(sys, staged.Dir(), p)); err != nil || string(data) != want {
			t.Errorf("finalized %s = %q, %v; want %q", p, data, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(sys, staged.Dir(), "etc/motd")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etc/motd, removed after staging, is in the finalized deployment: %v", err)
	}
	st, err = host.Status(ctx, sys, live)
	must(t, err)
	if st.Status.Staged != nil || entryVersion(st.Status.Booted) != "2.0" || entryVersion(st.Status.Rollback) != "1.0" {
		t.Errorf("status after finalization: %+v", st.Status)
	}
	if ids := checkAdminStatus(t, sys); len(ids) != 2 {
		t.Errorf("ostree admin status after finalization: %v", ids)
	}
	checkBootEntries(t, sys)
	fsck(t, sys)
	if _, err := os.Stat(filepath.Join(rt, "staged-deployment")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the staged state is left: %v", err)
	}
	if fin, err := host.FinalizeStaged(ctx, sys, live); err != nil || fin.Deployment != nil {
		t.Errorf("FinalizeStaged with nothing staged: %+v, %v", fin, err)
	}

	// Staging twice: the second replaces the first.
	testimage.Compose(t, testimage.TinyOS(t, "3.0", nil), stable)
	h = open(t, sys, live)
	first, err := h.Upgrade(ctx, host.UpgradeDeploy)
	must(t, err)
	h.Close()
	other := filepath.Join(t.TempDir(), "other")
	testimage.Compose(t, testimage.TinyOS(t, "9.0", nil), "oci:"+other)
	h = open(t, sys, live)
	sw, err := h.Switch(ctx, image(t, "oci:"+other, false))
	must(t, err)
	if again, err := h.Switch(ctx, image(t, "oci:"+other, false)); err != nil || !again.Unchanged {
		t.Errorf("switch to the staged image again: %+v, %v", again, err)
	}
	h.Close()
	if !sw.Deployed.Staged {
		t.Fatalf("switch on the running system did not stage: %+v", sw.Deployed)
	}
	if _, err := os.Stat(filepath.Join(sys, first.Deployed.Deployment.Dir())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the deployment staged first is still there: %v", err)
	}
	st, err = host.Status(ctx, sys, live)
	must(t, err)
	if entryVersion(st.Status.Staged) != "9.0" || st.Spec.Image == nil || st.Spec.Image.Image != other {
		t.Errorf("status after staging twice: staged %s, spec %+v", entryVersion(st.Status.Staged), st.Spec.Image)
	}

	// Finalization locked: nothing happens.
	must(t, os.WriteFile(filepath.Join(rt, "staged-deployment-locked"), nil, 0o644))
	if fin, err := host.FinalizeStaged(ctx, sys, live); err != nil || !fin.Locked {
		t.Errorf("FinalizeStaged when locked: %+v, %v", fin, err)
	}
	must(t, os.Remove(filepath.Join(rt, "staged-deployment-locked")))

	// Rollback discards the staged deployment.
	h = open(t, sys, live)
	rb, err := h.Rollback(ctx)
	must(t, err)
	h.Close()
	if rb.Discarded == nil || !rb.Discarded.Equal(sw.Deployed.Deployment) || rb.Image == nil || rb.Image.Version != "1.0" || rb.UndoPending {
		t.Errorf("rollback while 9.0 is staged: %+v", rb)
	}
	st, err = host.Status(ctx, sys, live)
	must(t, err)
	if st.Status.Staged != nil || entryVersion(st.Status.Booted) != "1.0" {
		t.Errorf("status after the rollback: %+v", st.Status)
	}
	if _, err := os.Stat(filepath.Join(sys, sw.Deployed.Deployment.Dir())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the discarded staged deployment is still there: %v", err)
	}
	checkAdminStatus(t, sys)
	fsck(t, sys)
}

// TestRollbackUndoesStaged: with nothing but the booted deployment and a staged one, rollback
// discards the staged one and the booted stays the default.
func TestRollbackUndoesStaged(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	stable, sys, in := installStable(t)
	live := host.WithRuntimeDir(filepath.Join(t.TempDir(), "ostree"))
	h := open(t, sys, live)
	if _, err := h.Rollback(ctx); !errors.Is(err, host.ErrNothingToRollBack) {
		t.Errorf("rollback with one deployment: %v", err)
	}
	testimage.Compose(t, testimage.TinyOS(t, "2.0", nil), stable)
	up, err := h.Upgrade(ctx, host.UpgradeDeploy)
	must(t, err)
	rb, err := h.Rollback(ctx)
	must(t, err)
	h.Close()
	if !rb.UndoPending || rb.Discarded == nil || !rb.Discarded.Equal(up.Deployed.Deployment) || !rb.Deployment.Equal(in.Deployed.Deployment) {
		t.Errorf("rollback of the staged deployment: %+v", rb)
	}
	if st, err := host.Status(ctx, sys, live); err != nil || st.Status.Staged != nil || len(st.Entries()) != 1 {
		t.Errorf("status after the rollback: %+v, %v", st, err)
	}
	fsck(t, sys)
}

// TestLockFinalization: a deployment staged with LockFinalization survives a shutdown
// unfinalized (SimulateReboot drops it) until UnlockFinalization; staging again without the
// option unlocks.
func TestLockFinalization(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	stable, sys, _ := installStable(t)
	rt := filepath.Join(t.TempDir(), "ostree")
	live := host.WithRuntimeDir(rt)
	testimage.Compose(t, testimage.TinyOS(t, "2.0", nil), stable)
	stage := func(opts ...host.SwitchOption) {
		h := open(t, sys, live)
		defer h.Close()
		res, err := h.Switch(ctx, image(t, stable, false), opts...)
		must(t, err)
		if res.Deployed == nil || !res.Deployed.Staged {
			t.Fatalf("not staged: %+v", res)
		}
		if got, want := h.FinalizationLocked(), len(opts) > 0; got != want {
			t.Fatalf("FinalizationLocked = %v after staging with %d options", got, len(opts))
		}
	}
	stage(host.LockFinalization())
	fin, err := host.FinalizeStaged(ctx, sys, live)
	if err != nil || !fin.Locked {
		t.Fatalf("FinalizeStaged with finalization locked: %+v, %v", fin, err)
	}
	fin, err = host.SimulateReboot(ctx, sys, rt)
	if err != nil || !fin.Locked {
		t.Fatalf("SimulateReboot with finalization locked: %+v, %v", fin, err)
	}
	if v := entryVersion(status(t, sys).Status.Booted); v != "1.0" {
		t.Fatalf("a reboot applied the locked update: booted %s", v)
	}

	stage(host.LockFinalization())
	h := open(t, sys, live)
	must(t, h.UnlockFinalization())
	if h.FinalizationLocked() {
		t.Error("still locked after UnlockFinalization")
	}
	h.Close()
	if _, err := os.Stat(filepath.Join(rt, "staged-deployment-locked")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the lock file is left: %v", err)
	}
	fin, err = host.SimulateReboot(ctx, sys, rt)
	if err != nil || fin.Locked || fin.Deployment == nil {
		t.Fatalf("SimulateReboot after unlocking: %+v, %v", fin, err)
	}
	if v := entryVersion(status(t, sys).Status.Booted); v != "2.0" {
		t.Fatalf("booted %s after the reboot, want 2.0", v)
	}

	// Staging without the option replaces a locked staged deployment and unlocks.
	testimage.Compose(t, testimage.TinyOS(t, "3.0", nil), stable)
	stage(host.LockFinalization())
	testimage.Compose(t, testimage.TinyOS(t, "4.0", nil), stable)
	stage()
}
