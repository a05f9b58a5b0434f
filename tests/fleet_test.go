// This file rolls a fleet from v1 to v2 the way a Fedora CoreOS fleet updates: a release index
// in a real registry, a FleetLock server with two slots whose semaphore is in a real etcd, and
// eight hosts (sysroot directories) each running the update agent (strategy fleet_lock) once
// in a loop; a host's reboot is simulated by finalizing its staged deployment. A watcher on
// the etcd key checks that never more than two hosts are between pre-reboot and steady-state.
// Then one more host dies holding its slot: the slot stays taken until an operator frees it
// with `bootc fleetlock unlock`.
//
//	CGO_ENABLED=0 go test -tags containers_image_openpgp -run TestFleetRollout -v ./tests
package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
	"github.com/bootc-go/bootc/pkg/fleetlock"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/updateagent"
	"github.com/bootc-go/bootc/pkg/updategraph"
)

const (
	fleetHosts = 8
	fleetSlots = 2
)

func TestFleetRollout(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "etcd", "docker-registry")
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	work := t.TempDir()
	bin := buildBootc(t, work)

	// etcd, and the FleetLock server on it with two slots.
	etcd := testutil.Etcd(t)
	backend, err := fleetlock.NewEtcdBackend(ctx, []string{etcd.Endpoint()}, fleetlock.Config{DefaultSlots: fleetSlots})
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	srv := httptest.NewServer(fleetlock.NewHandler(backend))
	defer srv.Close()
	watch := watchHolders(ctx, t, etcd.Endpoint())

	// v1 and v2 in a registry, and the stream's release index beside them.
	reg := testutil.Registry(t)
	repo := reg + "/fleet/os"
	idx := &updategraph.Index{Stream: "stable"}
	for _, v := range []string{"1", "2"} {
		ref, err := imgref.Parse("docker://" + repo + ":" + v)
		if err != nil {
			t.Fatal(err)
		}
		res, err := compose.Image(ctx, compose.Source{Rootfs: testimage.TinyOS(t, v, nil)}, ref, compose.WithTimestamp(testimage.Timestamp))
		if err != nil {
			t.Fatal(err)
		}
		all := 1.0
		idx.Releases = append(idx.Releases, updategraph.Release{Version: v, Payload: repo + "@" + res.Digest.String(),
			Metadata: updategraph.ReleaseMetadata{Rollout: &updategraph.Rollout{StartPercentage: &all}}})
	}
	repoRef, err := imgref.Parse("docker://" + repo)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := updategraph.WriteIndex(ctx, repoRef, idx); err != nil {
		t.Fatal(err)
	}

	config := fmt.Sprintf("[updates]\nstrategy = \"fleet_lock\"\nstream = \"stable\"\nreleases = %q\n\n[updates.fleet_lock]\nbase_url = %q\n", repo, srv.URL)
	hosts := make([]*fleetHost, fleetHosts+1)
	for i := range hosts {
		hosts[i] = installFleetHost(t, repo+":1", i, config)
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, fleetHosts)
	for _, h := range hosts[:fleetHosts] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- h.rollToEnd(ctx, t)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	maxHolders := watch.stop()
	t.Logf("%d hosts rolled v1 -> v2 in %s; at most %d slots held at once (etcd), %d changes of the key",
		fleetHosts, time.Since(start).Round(time.Millisecond), maxHolders, watch.changes)
	if maxHolders > fleetSlots {
		t.Errorf("%d hosts held a reboot slot at once; the group has %d slots", maxHolders, fleetSlots)
	}
	if maxHolders < fleetSlots {
		t.Errorf("never more than %d slot held at once: the hosts did not contend (the test proves nothing)", maxHolders)
	}
	waited := 0
	for _, h := range hosts[:fleetHosts] {
		waited += h.waits
	}
	if waited == 0 {
		t.Errorf("no host ever waited for a slot")
	}

	// The last host takes its slot, "reboots" and never comes back: the slot stays taken,
	// also after the server restarts, until the operator frees it.
	dead := hosts[fleetHosts]
	if res := dead.run(ctx, t); res.State != updateagent.StateRebooting || !res.LockHeld || res.NodeID != dead.id {
		t.Fatalf("the dying host: %+v, want it rebooting with a slot, as node %s", res, dead.id)
	}
	srv.Close()
	srv = httptest.NewServer(fleetlock.NewHandler(backend))
	defer srv.Close()
	sem, err := backend.Holders(ctx, fleetlock.DefaultGroup)
	if err != nil {
		t.Fatal(err)
	}
	if len(sem.Holders) != 1 || sem.Holders[0] != dead.id {
		t.Fatalf("the holders are %v; want only the dead host %s", sem.Holders, dead.id)
	}
	out := runBootc(t, bin, "fleetlock", "unlock", "--url", srv.URL, "--id", dead.id, "--group", fleetlock.DefaultGroup)
	t.Logf("bootc fleetlock unlock: %s", strings.TrimSpace(out))
	if sem, err = backend.Holders(ctx, fleetlock.DefaultGroup); err != nil || len(sem.Holders) != 0 {
		t.Fatalf("after the operator's unlock the holders are %v (%v)", sem.Holders, err)
	}
}

// fleetHost is one host of the fleet: a sysroot directory and its runtime directory.
type fleetHost struct {
	n       int
	sys, rt string
	id      string
	waits   int
	reboots int
}

func installFleetHost(t *testing.T, image string, n int, config string) *fleetHost {
	t.Helper()
	h := &fleetHost{n: n, sys: testutil.SysrootDir(t), rt: filepath.Join(t.TempDir(), "run-ostree")}
	src, err := host.ParseImage("docker://"+image, imgref.Parse, false)
	if err != nil {
		t.Fatal(err)
	}
	res, err := host.InstallToFilesystem(t.Context(), h.sys, host.Install{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	machineID := fmt.Sprintf("%032x", 0xf1ee7000+n)
	testutil.WriteFiles(t, filepath.Join(h.sys, res.Deployed.Deployment.Dir()), map[string]string{
		"etc/machine-id":                   machineID + "\n",
		"etc/bootc/update.d/50-fleet.toml": config,
	})
	if h.id, err = updateagent.AppSpecificID(machineID, updateagent.AppID); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *fleetHost) run(ctx context.Context, t *testing.T) *updateagent.Result {
	a := updateagent.New(h.sys, updateagent.WithHostOptions(host.WithRuntimeDir(h.rt)),
		updateagent.WithRebooter(func(context.Context) error { h.reboots++; return nil }))
	res, err := a.RunOnce(ctx)
	if err != nil {
		t.Errorf("host %d: %v", h.n, err)
		return &updateagent.Result{}
	}
	return res
}

// rollToEnd runs the agent until the host is on v2 with its slot released; each reboot takes
// a little while, as a machine's does.
func (h *fleetHost) rollToEnd(ctx context.Context, t *testing.T) error {
	for round := 0; ctx.Err() == nil; round++ {
		res := h.run(ctx, t)
		switch {
		case res.State == updateagent.StateWaitingForSlot:
			h.waits++
		case res.Rebooted:
			time.Sleep(time.Duration(50+rand.IntN(150)) * time.Millisecond)
			if _, err := host.SimulateReboot(ctx, h.sys, h.rt); err != nil {
				return fmt.Errorf("host %d: reboot: %w", h.n, err)
			}
		case res.State == updateagent.StateUpToDate && res.BootedVersion == "2" && !res.LockHeld:
			if h.reboots != 1 {
				return fmt.Errorf("host %d reached v2 after %d reboots, want 1", h.n, h.reboots)
			}
			return nil
		case res.State == "":
			return fmt.Errorf("host %d: the agent failed", h.n)
		}
		time.Sleep(time.Duration(20+rand.IntN(60)) * time.Millisecond)
	}
	return fmt.Errorf("host %d did not reach v2: %w", h.n, ctx.Err())
}

// holdersWatch follows the default group's semaphore in etcd and keeps the most holders seen.
type holdersWatch struct {
	mu      sync.Mutex
	max     int
	changes int
	cancel  context.CancelFunc
	done    chan struct{}
}

func watchHolders(ctx context.Context, t *testing.T, endpoint string) *holdersWatch {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &holdersWatch{cancel: cancel, done: make(chan struct{})}
	ch := cli.Watch(ctx, fleetlock.SemaphoreKey(fleetlock.DefaultGroup))
	go func() {
		defer close(w.done)
		defer cli.Close()
		for resp := range ch {
			for _, ev := range resp.Events {
				var sem fleetlock.Semaphore
				if ev.Kv == nil || json.Unmarshal(ev.Kv.Value, &sem) != nil {
					continue
				}
				w.mu.Lock()
				w.max, w.changes = max(w.max, len(sem.Holders)), w.changes+1
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *holdersWatch) stop() int {
	time.Sleep(200 * time.Millisecond) // the last events
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}
