package updateagent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.podman.io/storage/pkg/reexec"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
	"github.com/bootc-go/bootc/pkg/fleetlock"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/updateagent"
	"github.com/bootc-go/bootc/pkg/updategraph"
)

func TestMain(m *testing.M) {
	if reexec.Init() {
		return
	}
	os.Exit(m.Run())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// fakeSource serves the graph of an index, throttled for the asking host, as a registry or
// Cincinnati source does.
type fakeSource struct {
	mu      sync.Mutex
	idx     *updategraph.Index
	queries []updategraph.Query
}

func (s *fakeSource) Graph(_ context.Context, q updategraph.Query) (*updategraph.Graph, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queries = append(s.queries, q)
	g, err := updategraph.Build(s.idx, q.Basearch)
	if err != nil {
		return nil, err
	}
	return g.Throttle(q.EffectiveWariness(), q.Now), nil
}

// fakeLocker records the FleetLock calls; while full it refuses pre-reboot as a full group.
type fakeLocker struct {
	full  bool
	calls []string
}

func (l *fakeLocker) PreReboot(_ context.Context, id, group string) error {
	l.calls = append(l.calls, "pre-reboot "+group)
	if l.full {
		return &fleetlock.Error{Status: 409, Kind: fleetlock.KindFull, Value: "no free slot"}
	}
	return nil
}

func (l *fakeLocker) SteadyState(_ context.Context, id, group string) error {
	l.calls = append(l.calls, "steady-state "+group)
	return nil
}

// releases are three images of stream "stable" in a registry; the host installs v1 by the tag
// stable.
type releases struct {
	reg      string
	payloads map[string]string // version -> REPO@sha256:...
}

func pushReleases(t *testing.T) *releases {
	t.Helper()
	r := &releases{reg: testutil.Registry(t), payloads: map[string]string{}}
	for _, v := range []string{"1", "2", "3"} {
		tag := "v" + v
		if v == "1" {
			tag = "stable"
		}
		ref, err := imgref.Parse("docker://" + r.reg + "/os:" + tag)
		must(t, err)
		res, err := compose.Image(t.Context(), compose.Source{Rootfs: testimage.TinyOS(t, v, nil)}, ref,
			compose.WithTimestamp(testimage.Timestamp), compose.WithImage(encapsulate.WithLabels(map[string]string{updateagent.StreamLabel: "stable"})))
		must(t, err)
		r.payloads[v] = r.reg + "/os@" + res.Digest.String()
	}
	return r
}

var open = func() *updategraph.Rollout { one := 1.0; return &updategraph.Rollout{StartPercentage: &one} }

// index lists the releases; mark adds barriers ("b"), dead-ends ("d") and rollouts open to
// all (every release).
func (r *releases) index(mark map[string]string) *updategraph.Index {
	idx := &updategraph.Index{Stream: "stable"}
	for _, v := range []string{"1", "2", "3"} {
		rel := updategraph.Release{Version: v, Payload: r.payloads[v], Metadata: updategraph.ReleaseMetadata{Rollout: open()}}
		if strings.Contains(mark[v], "b") {
			rel.Metadata.Barrier = &updategraph.Reason{Reason: "key rotation"}
		}
		if strings.Contains(mark[v], "d") {
			rel.Metadata.Deadend = &updategraph.Reason{Reason: "broken"}
		}
		if !strings.Contains(mark[v], "x") {
			idx.Releases = append(idx.Releases, rel)
		}
	}
	return idx
}

// host is one installed sysroot directory with a runtime directory ("" offline).
type testHost struct {
	sys, rt  string
	reboots  int
	source   *fakeSource
	locker   *fakeLocker
	now      time.Time
	lastRes  *updateagent.Result
	offline  bool
	agentLog strings.Builder
}

func install(t *testing.T, r *releases, config string) *testHost {
	t.Helper()
	h := &testHost{sys: testutil.SysrootDir(t), rt: filepath.Join(t.TempDir(), "run-ostree"), locker: &fakeLocker{}, now: time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC)}
	src, err := host.ParseImage("docker://"+r.reg+"/os:stable", imgref.Parse, false)
	must(t, err)
	res, err := host.InstallToFilesystem(t.Context(), h.sys, host.Install{Source: src})
	must(t, err)
	testutil.WriteFiles(t, filepath.Join(h.sys, res.Deployed.Deployment.Dir()), map[string]string{
		"etc/machine-id":                   "0123456789abcdef0123456789abcdef\n",
		"etc/bootc/update.d/50-agent.toml": config,
	})
	return h
}

func (h *testHost) runOnce(t *testing.T) *updateagent.Result {
	t.Helper()
	opts := []updateagent.Option{
		updateagent.WithSource(h.source), updateagent.WithLocker(h.locker),
		updateagent.WithClock(func() time.Time { return h.now }),
		updateagent.WithRebooter(func(context.Context) error { h.reboots++; return nil }),
	}
	if !h.offline {
		opts = append(opts, updateagent.WithHostOptions(host.WithRuntimeDir(h.rt)))
	}
	res, err := updateagent.New(h.sys, opts...).RunOnce(t.Context())
	must(t, err)
	h.lastRes = res
	return res
}

func (h *testHost) reboot(t *testing.T) {
	t.Helper()
	_, err := host.SimulateReboot(t.Context(), h.sys, h.rt)
	must(t, err)
}

func (h *testHost) status(t *testing.T) *host.BootcHost {
	t.Helper()
	opts := []host.Option{}
	if !h.offline {
		opts = append(opts, host.WithRuntimeDir(h.rt))
	}
	st, err := host.Status(t.Context(), h.sys, opts...)
	must(t, err)
	return st
}

func version(e *host.BootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return "<none>"
	}
	return *e.Image.Version
}

func (h *testHost) locked() bool {
	_, err := os.Stat(filepath.Join(h.rt, "staged-deployment-locked"))
	return err == nil
}

func check(t *testing.T, what string, res *updateagent.Result, state, target string) {
	t.Helper()
	if res.State != state || res.TargetVersion != target {
		b, _ := json.Marshal(res)
		t.Fatalf("%s: state %q target %q, want %q %q: %s", what, res.State, res.TargetVersion, state, target, b)
	}
}

const base = "[updates]\nallow_downgrade = false\n"

func requireTools(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "docker-registry")
}

// TestImmediate: v1 -> v2 (the barrier) -> v3, each staged and rebooted into at once; the
// state is in bootc status.
func TestImmediate(t *testing.T) {
	requireTools(t)
	r := pushReleases(t)
	h := install(t, r, base)
	h.source = &fakeSource{idx: r.index(map[string]string{"2": "b"})}
	res := h.runOnce(t)
	check(t, "v1", res, updateagent.StateRebooting, "2")
	if h.reboots != 1 || !res.Staged || res.Stream != "stable" || res.BootedVersion != "1" || res.TargetPayload != r.payloads["2"] || h.locked() {
		t.Fatalf("v1: reboots %d, %+v, locked %v", h.reboots, res, h.locked())
	}
	q := h.source.queries[0]
	if q.Stream != "stable" || q.NodeUUID != "583627a932274834a8ebd99f4ed41c0d" || !q.Now.Equal(h.now) || q.Basearch == "" {
		t.Errorf("query %+v", q)
	}
	st := h.status(t)
	if version(st.Status.Staged) != "2" || st.Status.UpdateAgent == nil || st.Status.UpdateAgent.State != updateagent.StateRebooting || st.Status.UpdateAgent.TargetVersion != "2" {
		t.Fatalf("status after staging: %+v %+v", st.Status.Staged, st.Status.UpdateAgent)
	}
	if ref := st.Spec.Image; ref == nil || ref.Image != r.payloads["2"] || ref.Signature != nil {
		t.Errorf("the host follows %+v, want %s unverified", ref, r.payloads["2"])
	}
	// The rebooter was called but the machine did not go down yet: the staged update is reused.
	res = h.runOnce(t)
	check(t, "v1 again", res, updateagent.StateRebooting, "2")
	if res.Staged || h.reboots != 2 {
		t.Errorf("again: staged %v reboots %d", res.Staged, h.reboots)
	}
	h.reboot(t)
	check(t, "v2", h.runOnce(t), updateagent.StateRebooting, "3")
	h.reboot(t)
	res = h.runOnce(t)
	check(t, "v3", res, updateagent.StateUpToDate, "")
	if st := h.status(t); version(st.Status.Booted) != "3" || h.reboots != 3 {
		t.Errorf("booted %s after %d reboots", version(st.Status.Booted), h.reboots)
	}
	if len(h.locker.calls) != 0 {
		t.Errorf("strategy immediate called FleetLock: %v", h.locker.calls)
	}
}

// TestFleetLock: a full group leaves the update staged and locked, with no reboot; a granted
// slot unlocks and reboots; after the reboot the slot is released.
func TestFleetLock(t *testing.T) {
	requireTools(t)
	r := pushReleases(t)
	h := install(t, r, base+"strategy = \"fleet_lock\"\n[updates.fleet_lock]\nbase_url = \"http://127.0.0.1:9\"\n[identity]\ngroup = \"workers\"\n")
	h.source = &fakeSource{idx: r.index(map[string]string{"3": "x"})}
	h.locker.full = true
	res := h.runOnce(t)
	check(t, "full", res, updateagent.StateWaitingForSlot, "2")
	if h.reboots != 0 || !h.locked() || res.LockHeld || version(h.status(t).Status.Staged) != "2" {
		t.Fatalf("full: reboots %d, locked %v, %+v", h.reboots, h.locked(), res)
	}
	// An unrelated reboot does not apply the locked update.
	h.reboot(t)
	if v := version(h.status(t).Status.Booted); v != "1" {
		t.Fatalf("an unrelated reboot booted %s", v)
	}
	h.locker.full = false
	res = h.runOnce(t)
	check(t, "granted", res, updateagent.StateRebooting, "2")
	if h.reboots != 1 || h.locked() || !res.LockHeld {
		t.Fatalf("granted: reboots %d, locked %v, %+v", h.reboots, h.locked(), res)
	}
	h.reboot(t)
	res = h.runOnce(t)
	check(t, "after", res, updateagent.StateUpToDate, "")
	if res.LockHeld || h.status(t).Status.UpdateAgent.LockHeld {
		t.Errorf("the slot is still recorded as held: %+v", res)
	}
	want := []string{"steady-state workers", "pre-reboot workers", "steady-state workers", "pre-reboot workers", "steady-state workers"}
	if !slices.Equal(h.locker.calls, want) {
		t.Errorf("FleetLock calls %v, want %v", h.locker.calls, want)
	}
}

// TestPeriodic: outside the window the update waits staged and locked; inside it reboots.
func TestPeriodic(t *testing.T) {
	requireTools(t)
	r := pushReleases(t)
	h := install(t, r, base+"strategy = \"periodic\"\n[[updates.periodic.window]]\ndays = [\"Mon\"]\nstart_time = \"10:00\"\nlength_minutes = 60\n")
	h.source = &fakeSource{idx: r.index(map[string]string{"2": "b"})}
	h.now = time.Date(2026, 3, 8, 12, 0, 0, 0, time.UTC) // a Sunday
	res := h.runOnce(t)
	check(t, "sunday", res, updateagent.StateWaitingForWindow, "2")
	if h.reboots != 0 || !h.locked() || res.NextWindow != "2026-03-09T10:00:00Z" {
		t.Fatalf("sunday: reboots %d, locked %v, %+v", h.reboots, h.locked(), res)
	}
	h.now = time.Date(2026, 3, 9, 10, 30, 0, 0, time.UTC)
	res = h.runOnce(t)
	check(t, "monday", res, updateagent.StateRebooting, "2")
	if h.reboots != 1 || h.locked() || res.Staged {
		t.Fatalf("monday: reboots %d, locked %v, %+v", h.reboots, h.locked(), res)
	}
}

// TestGraphCases: disabled; a booted release the graph lacks; a target that failed to boot here
// before; a dead-end booted release moves on; offline (no runtime directory) deploys at once.
func TestGraphCases(t *testing.T) {
	requireTools(t)
	r := pushReleases(t)
	h := install(t, r, base+"enabled = false\n")
	h.source = &fakeSource{idx: r.index(nil)}
	check(t, "disabled", h.runOnce(t), updateagent.StateDisabled, "")
	if len(h.source.queries) != 0 {
		t.Error("a disabled agent asked for the graph")
	}
	booted := h.status(t).Status.Booted.Deployment()
	testutil.WriteFiles(t, filepath.Join(h.sys, booted.Dir()), map[string]string{"etc/bootc/update.d/50-agent.toml": base})

	h.source.idx = r.index(map[string]string{"1": "x"})
	check(t, "unknown", h.runOnce(t), updateagent.StateUnknownRelease, "")

	failed := fmt.Sprintf(`{"format": 1, "deployment": "x", "failedUpdate": {"image": null, "imageDigest": %q, "version": "3", "reason": "did not complete booting after 3 attempts", "attempts": 3, "timestamp": "2026-03-01T00:00:00Z"}}`,
		strings.TrimPrefix(r.payloads["3"], r.reg+"/os@"))
	testutil.WriteFiles(t, filepath.Join(h.sys, "ostree/deploy/default/var/lib/bootc"), map[string]string{"failed-update.json": failed})
	h.source.idx = r.index(nil)
	res := h.runOnce(t)
	check(t, "held back", res, updateagent.StateHeldBack, "3")
	if res.Staged || h.status(t).Status.Staged != nil || h.reboots != 0 {
		t.Fatalf("held back: %+v", res)
	}
	must(t, os.Remove(filepath.Join(h.sys, "ostree/deploy/default/var/lib/bootc/failed-update.json")))

	// v1 is a dead-end (no edges out): it moves on to the newest open release, v3.
	h.source.idx = r.index(map[string]string{"1": "d"})
	h.offline = true
	res = h.runOnce(t)
	check(t, "dead-end, offline", res, updateagent.StateRebootNeeded, "3")
	if h.reboots != 0 || !res.Staged || version(h.status(t).Status.Booted) != "3" {
		t.Fatalf("offline: reboots %d, %+v, booted %s", h.reboots, res, version(h.status(t).Status.Booted))
	}
}
