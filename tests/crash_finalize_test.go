package tests

// This file kills the finalization of staged deployments (host.FinalizeStaged, run by the hostop
// driver with --runtime-dir, as the shutdown runs `bootc internals finalize-staged`) with
// SIGKILL at random moments, after staging a switch (hostop --runtime-dir switch: it stages, as
// on the running system) and editing the booted deployment's /etc. After each kill the boot
// configuration is the list of before or the new one (the staged deployment first, then the
// booted one), never a mix, with a clean `ostree fsck` and `ostree admin status`, boot entries
// whose kernels exist, and host.Status agreeing; with the old list the deployment is still
// staged, with the new one its /etc has every edit, the late one too. Finalize then runs again
// to the end and must complete the finalization.
//
//	CGO_ENABLED=0 go test -tags containers_image_openpgp -run TestKill9DuringFinalizeStaged -v ./tests
//
// BOOTC_CRASH_FINALIZE_KILLS sets the number of kills (default 16), BOOTC_CRASH_SEED the seed.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/host"
)

const crashFinalizeKillsDefault = 16

// lateEdit is the /etc file edited in the booted deployment after each staging.
const lateEdit = "etc/demo/late.conf"

func TestKill9DuringFinalizeStaged(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "busybox", "chattr")
	start := time.Now()
	kills := envCount(t, "BOOTC_CRASH_FINALIZE_KILLS", crashFinalizeKillsDefault)
	seed := crashSeed(t)
	t.Logf("kills %d, seed %d (BOOTC_CRASH_SEED=%d reproduces the kill delays)", kills, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x66696e61))

	work := t.TempDir()
	bin := buildBootc(t, work)
	driver := buildHostop(t, work)
	layout, images := composeCrashImages(t, work, bin, "v1", "v2")
	h := newCrashHarness(t, driver, images, &ociSource{t: t, layout: layout})
	h.runtimeDir = filepath.Join(t.TempDir(), "run", "ostree")
	h.stableTag = "v1"

	finalize := crashStep{name: "finalize", finalize: true}
	var tm stepTiming
	// Kills before the boot configuration switched, after it, and tries that came too late.
	var killedBefore, killedAfter, tooLate int
	// Try 0 runs uninterrupted, to measure; then kills until kills landed, at most twice as many
	// tries.
	for i := 0; i == 0 || killedBefore+killedAfter < kills; i++ {
		if i > 2*kills {
			t.Fatalf("only %d of %d tries killed the finalization", killedBefore+killedAfter, i)
		}
		before, staged, late := h.stageAndEdit(i)
		var res *runResult
		if i == 0 {
			res = h.start(finalize).wait()
			tm.total = res.elapsed
			t.Logf("finalize takes %v uninterrupted", res.elapsed.Round(time.Millisecond))
		} else {
			res = h.start(finalize).kill(tm.pick(rng, i))
		}
		after, err := h.checkAfterFinalizeKill(before, staged, late, res)
		if err != nil {
			t.Fatalf("try %d: %v\noutput:\n%s", i, err, res.output())
		}
		// committed: the killed finalization had switched the boot configuration.
		committed := res.killed && !slices.Equal(before, after)
		switch {
		case i == 0:
		case !res.killed:
			tooLate++
			tm.total = res.elapsed
		case committed:
			killedAfter++
		default:
			killedBefore++
		}
		if i > 0 {
			h.logf("try %d: killed %v at %v, after the switch of the boot configuration %v; deployments %v", i, res.killed, res.elapsed.Round(time.Millisecond), committed, after)
		}
		rerun := res
		if res.killed {
			rerun = h.start(finalize).wait()
		}
		if err := h.afterFinalize(before, staged, late, committed, rerun); err != nil {
			t.Fatalf("try %d: after finalizing to the end: %v\noutput:\n%s", i, err, rerun.output())
		}
	}
	t.Logf("kills: %d before the boot configuration switched, %d after it; %d tries came after the finalization ended", killedBefore, killedAfter, tooLate)

	// A last uninterrupted round cleans up whatever the kills left.
	before, staged, late := h.stageAndEdit(-1)
	res := h.start(finalize).wait()
	if err := h.afterFinalize(before, staged, late, false, res); err != nil {
		t.Fatalf("the last finalization: %v\n%s", err, res.output())
	}
	final, err := adminDeployments(h.sys)
	if err != nil {
		t.Fatal(err)
	}
	if left := leftovers(h.sys, final); len(left) > 0 {
		t.Errorf("left after a finalization to the end: %v", left)
	}
	// The checks must be able to fail: a lost late edit, and a deployment still staged.
	p := filepath.Join(h.sys, final[0].dir(), lateEdit)
	must(t, os.Rename(p, p+".away"))
	if err := h.checkLateEdit(final[0], late); err == nil {
		t.Error("the checks missed a lost late /etc edit")
	}
	must(t, os.Rename(p+".away", p))
	if err := h.checkStaged(nil); err != nil {
		t.Fatal(err)
	}
	if err := h.checkStaged(&final[0]); err == nil {
		t.Error("the checks missed that nothing is staged")
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))
}

// stageAndEdit stages a switch to v2 or back to stable (v1), alternately by try, checks that the
// boot configuration did not change and the deployment is staged, then writes a late edit into
// the booted deployment's /etc. It returns the deployments before, the staged one and the edit.
func (h *crashHarness) stageAndEdit(try int) (before []deployment, staged deployment, late string) {
	t := h.t
	t.Helper()
	before, err := adminDeployments(h.sys)
	if err != nil {
		t.Fatal(err)
	}
	st := crashStep{name: "stage switch v2", follows: "v2"}
	if h.followsTag == "v2" {
		st = crashStep{name: "stage switch stable", follows: "stable"}
	}
	res := h.start(st).wait()
	if res.err != nil || res.typed() != nil || res.result.Deployed == nil || !res.result.Deployed.Staged || res.result.Deployed.Deployment.Index != -1 {
		t.Fatalf("try %d: %s: %v, %v: want a staged deployment\n%s", try, st.name, res.err, res.typed(), res.output())
	}
	staged = fromResult(res.result.Deployed.Deployment)
	if after, err := adminDeployments(h.sys); err != nil || !slices.Equal(after, before) {
		t.Fatalf("try %d: staging changed the boot configuration from %v to %v (%v)", try, before, after, err)
	}
	if err := h.checkStaged(&staged); err != nil {
		t.Fatalf("try %d: %v", try, err)
	}
	h.followsTag = st.follows
	late = fmt.Sprintf("edited after staging, try %d\n", try)
	must(t, os.WriteFile(filepath.Join(h.sys, before[0].dir(), lateEdit), []byte(late), 0o644))
	delete(h.trees, before[0].String()) // its /etc changed: record it again
	must(t, h.recordTrees(before))
	return before, staged, late
}

// stagedImage is the image the staged deployment has.
func (h *crashHarness) stagedImage() string {
	if h.followsTag == "v2" {
		return "v2"
	}
	return h.stableTag
}

// checkAfterFinalizeKill checks the sysroot after a finalization was killed (or ended): the
// list of before, with the deployment still staged, or the new list, whose first deployment is
// the staged one with the image's /usr and every /etc edit.
func (h *crashHarness) checkAfterFinalizeKill(before []deployment, staged deployment, late string, res *runResult) ([]deployment, error) {
	if !res.killed && (res.err != nil || res.typed() != nil) {
		return nil, fmt.Errorf("the finalization failed by itself: %v, %v (it %s)", res.err, res.typed(), res.describe())
	}
	after, err := adminDeployments(h.sys)
	if err != nil {
		return nil, err
	}
	switch {
	case slices.Equal(before, after):
		if err := h.checkStaged(&staged); err != nil {
			return after, fmt.Errorf("the boot configuration is the old one, but: %w", err)
		}
	case isNewList(before, after) && after[0] == staged:
		if err := h.checkNewDeployment(after[0], h.stagedImage()); err != nil {
			return after, fmt.Errorf("the boot configuration lists the staged deployment, but: %w", err)
		}
		if err := h.checkLateEdit(after[0], late); err != nil {
			return after, err
		}
	default:
		return after, fmt.Errorf("ostree admin status lists %v; before it listed %v: want that, or %v followed by %v", after, before, staged, before[0])
	}
	return after, h.checkSysroot(after)
}

// afterFinalize checks a finalization that ran to the end: its result (the staged deployment
// finalized; or, when the killed one before it had switched the boot configuration (committed),
// only the state file removed, or nothing left to do), the new list, the /etc edits, no staged
// deployment any more, and a sound sysroot.
func (h *crashHarness) afterFinalize(before []deployment, staged deployment, late string, committed bool, res *runResult) error {
	if res.err != nil || res.typed() != nil {
		return fmt.Errorf("%v, %v", res.err, res.typed())
	}
	f := res.result.Finalized
	switch {
	case res.result.Op != "finalize" || f == nil:
		return fmt.Errorf("result %+v, want a finalization", res.result)
	case f.Locked:
		return errors.New("the result says finalization is locked")
	case f.Deployment == nil && !committed:
		return errors.New("the result says nothing was staged, yet the deployment was")
	case f.Deployment != nil && (fromResult(*f.Deployment) != staged || f.Deployment.Index != 0):
		return fmt.Errorf("finalized %+v, want %v first", *f.Deployment, staged)
	case f.AlreadyWritten && !committed, !f.AlreadyWritten && f.Deployment != nil && committed:
		return fmt.Errorf("already written %v, but the killed finalization switched the boot configuration: %v", f.AlreadyWritten, committed)
	}
	after, err := adminDeployments(h.sys)
	if err != nil {
		return err
	}
	if !isNewList(before, after) || after[0] != staged {
		return fmt.Errorf("ostree admin status lists %v; want %v followed by %v", after, staged, before[0])
	}
	if err := h.checkNewDeployment(after[0], h.stagedImage()); err != nil {
		return err
	}
	if err := h.checkLateEdit(after[0], late); err != nil {
		return err
	}
	if err := h.checkStaged(nil); err != nil {
		return err
	}
	if err := h.recordTrees(after); err != nil {
		return err
	}
	h.following = h.stagedImage()
	return h.checkSysroot(after)
}

// checkLateEdit checks that the edit made after staging is in d's /etc.
func (h *crashHarness) checkLateEdit(d deployment, late string) error {
	if b, err := os.ReadFile(filepath.Join(h.sys, d.dir(), lateEdit)); err != nil || string(b) != late {
		return fmt.Errorf("deployment %v: the /etc edit made after staging is lost: /%s is %q (%v), want %q", d, lateEdit, b, err, late)
	}
	return nil
}

// checkStaged checks what host.Status, with the runtime directory, says is staged: d, or nothing.
func (h *crashHarness) checkStaged(d *deployment) error {
	st, err := host.Status(context.Background(), h.sys, host.WithRuntimeDir(h.runtimeDir))
	if err != nil {
		return fmt.Errorf("host.Status: %w", err)
	}
	var got *deployment
	if e := st.Status.Staged; e != nil {
		g := fromOstreeStatus(e.Ostree)
		got = &g
	}
	switch {
	case d == nil && got != nil:
		return fmt.Errorf("%v is still staged", *got)
	case d != nil && (got == nil || *got != *d):
		return fmt.Errorf("host.Status shows %v staged, want %v", got, *d)
	}
	return nil
}
