// This file kills switch and upgrade (package host's Host.Switch and Host.Upgrade, run in a
// process of their own by the hostop driver, internal/testutil/cmd/hostop) with SIGKILL at random
// moments of their pull and deploy, and checks after each kill that the sysroot is still what the
// real ostree accepts: the deployments listed before the command (or, past the commit point, the
// new list) with their trees untouched, a clean `ostree fsck`, boot entries whose kernels exist,
// and a host.Status that agrees with `ostree admin status`. Then the same command, run again,
// must succeed, leave the image deployed with the local /etc edits carried over, and say so in
// its typed result: the deployment it names is the one ostree lists first, with the image's
// digest, or it found nothing to do and the list is unchanged. crash_finalize_test.go does the
// same to the finalization of staged deployments.
//
//	CGO_ENABLED=0 go test -tags containers_image_openpgp -run TestKill9DuringSwitchAndUpgrade -v ./tests
//
// BOOTC_CRASH_KILLS sets the number of kills (default 24), BOOTC_CRASH_SEED the random seed
// (default: the time; the seed is logged).
package tests

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/hostop"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

const (
	crashKillsDefault         = 24
	crashRegistryKillsDefault = 6
	crashKver                 = "6.1.0-crash"
	crashStateroot            = "default"
	// The image content: crashFiles files spread over crashDirs directories under
	// usr/share/crash, most small, one in crashBigEvery large.
	crashFiles    = 2400
	crashDirs     = 48
	crashBigEvery = 50
)

// The local /etc edits made in the installed deployment, which every later deployment must carry.
var crashEtcEdits = map[string]string{
	"etc/demo/theme.conf": "colour=green\n",
	"etc/demo/local.conf": "mine\n",
}

func TestKill9DuringSwitchAndUpgrade(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "busybox", "chattr")
	start := time.Now()
	kills := envCount(t, "BOOTC_CRASH_KILLS", crashKillsDefault)
	seed := crashSeed(t)
	registryKills := envCount(t, "BOOTC_CRASH_REGISTRY_KILLS", crashRegistryKillsDefault)
	t.Logf("kills %d (and %d through a registry), seed %d (BOOTC_CRASH_SEED=%d reproduces the kill delays)", kills, registryKills, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6c))

	work := t.TempDir()
	bin := buildBootc(t, work) // composes the images
	driver := buildHostop(t, work)
	layout, images := composeCrashImages(t, work, bin, "v1", "v2", "v3")
	t.Logf("composed 3 images (%s of content each) in %v", humanSize(images["v1"].usr.bytes), time.Since(start).Round(time.Millisecond))

	t.Run("oci", func(t *testing.T) {
		stats := runCrash(t, driver, images, &ociSource{t: t, layout: layout}, kills, rng)
		t.Logf("kill points (oci): %s", stats.summary())
	})
	if registryKills > 0 {
		t.Run("registry", func(t *testing.T) {
			testutil.RequireTool(t, "skopeo")
			src := &registrySource{t: t, repo: testutil.Registry(t) + "/crash/os"}
			for _, v := range []string{"v1", "v2", "v3"} {
				src.copy("oci:"+layout+":"+v, v)
			}
			src.retag("stable", "v1")
			stats := runCrash(t, driver, images, src, registryKills, rng)
			t.Logf("kill points (registry): %s", stats.summary())
		})
	}
	t.Logf("total time %v", time.Since(start).Round(time.Millisecond))
}

// crashSeed is BOOTC_CRASH_SEED, else the time.
func crashSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("BOOTC_CRASH_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("BOOTC_CRASH_SEED=%q: want a number", v)
		}
		seed = n
	}
	return seed
}

// composeCrashImages composes the versions (makeCrashRootfs) into one OCI layout under work,
// tagged by version, and tags the first "stable" too: the tag the host follows. With v1, v2
// and v3: v1 and v3 share a kernel, v2 has its own; each changes some files of the others.
func composeCrashImages(t *testing.T, work, bin string, versions ...string) (string, map[string]*crashImage) {
	layout := filepath.Join(work, "layout")
	images := map[string]*crashImage{}
	for i, v := range versions {
		img := &crashImage{tag: v, rootfs: filepath.Join(work, "rootfs-"+v)}
		makeCrashRootfs(t, img.rootfs, v)
		var err error
		if img.usr, err = hashTree(img.rootfs, "usr", skipUsrEtc); err != nil {
			t.Fatal(err)
		}
		// The later versions are zstd:chunked: their pulls over v1 fetch only the files the
		// repository lacks (partial pulls), and are killed as such.
		comp := "gzip"
		if i > 0 {
			comp = "zstd:chunked"
		}
		cmd := exec.Command(bin, "compose", "image", "--rootfs", img.rootfs, "--output", "oci:"+layout+":"+v, "--compression", comp, "-q")
		cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", 1700000000+86400*i))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("compose %s: %v\n%s", v, err, out)
		}
		images[v] = img
	}
	retagOCI(t, layout, "stable", versions[0])
	return layout, images
}

// runCrash installs stable (v1) from src into a new sysroot, edits its /etc, measures each step
// uninterrupted, then kills steps (run by the driver hostop) until kills kills landed, checking
// after each kill and after each rerun.
func runCrash(t *testing.T, driver string, images map[string]*crashImage, src imageSource, kills int, rng *rand.Rand) *killStats {
	start := time.Now()
	h := newCrashHarness(t, driver, images, src)
	sys := h.sys

	// One uninterrupted round of each command, to measure how long it takes and when its pull
	// ends.
	steps := crashSteps()
	timing := map[string]*stepTiming{}
	partialLayers := 0
	for _, st := range steps {
		before, _ := adminDeployments(sys)
		h.prepare(st)
		run := h.start(st)
		res := run.wait()
		if res.err != nil {
			t.Fatalf("%s (uninterrupted): %v\n%s", st.name, res.err, res.output())
		}
		if err := h.afterSuccess(st, before, res); err != nil {
			t.Fatalf("%s (uninterrupted): %v\n%s", st.name, err, res.output())
		}
		timing[st.name] = &stepTiming{total: res.elapsed, pulled: res.pulledAt}
		if res.result != nil && res.result.Pulled != nil {
			partialLayers += res.result.Pulled.LayersPartial
		}
		t.Logf("%s takes %v uninterrupted (pull done at %v)", st.name, res.elapsed.Round(time.Millisecond), res.pulledAt.Round(time.Millisecond))
	}

	if partialLayers == 0 {
		t.Fatalf("no uninterrupted step pulled a zstd:chunked layer in part: the kills would not hit partial pulls")
	}
	t.Logf("uninterrupted steps pulled %d layers in part", partialLayers)

	// The kills: each is followed by the checks and a rerun. Commands that finish before their
	// kill do not count (T shrinks to their run time); at most twice as many tries.
	var stats killStats
	var checking time.Duration
	next := 0
	for i := 0; stats.landed() < kills; i++ {
		next = i + 1
		if i >= 2*kills {
			t.Fatalf("only %d of %d tries killed the command: %s", stats.landed(), i, stats.summary())
		}
		st := steps[i%len(steps)]
		tm := timing[st.name]
		k := tm.pick(rng, i)
		before, err := adminDeployments(sys)
		if err != nil {
			t.Fatal(err)
		}
		h.prepare(st)
		res := h.start(st).kill(k)
		checkStart := time.Now()
		after, err := h.checkAfterKill(st, before, res)
		checking += time.Since(checkStart)
		phase := stats.record(st, res, tm, !slices.Equal(before, after))
		if !res.killed && res.err == nil {
			tm.total = res.elapsed
		}
		left := leftovers(sys, after)
		if len(left) > 0 {
			stats.leftBehind++
		}
		h.logf("try %d (kill %d/%d): %s, kill %v: %s; deployments %v; left for a cleanup: %d %.200v", i+1, stats.landed(), kills, st.name, k, phase, after, len(left), left)
		if err != nil {
			t.Fatalf("try %d (%s, kill %v, %s): %v\noutput before the kill:\n%s", i+1, st.name, k, phase, err, res.output())
		}
		// The same command again, to the end.
		rerun := h.start(st).wait()
		if rerun.err != nil {
			t.Fatalf("try %d: rerunning %s: %v\n%s", i+1, st.name, rerun.err, rerun.output())
		}
		checkStart = time.Now()
		if err := h.afterSuccess(st, after, rerun); err != nil {
			t.Fatalf("try %d: after rerunning %s: %v\n%s", i+1, st.name, err, rerun.output())
		}
		checking += time.Since(checkStart)
		if rerun.noop() {
			stats.noopReruns++
		}
		h.logf("try %d: the rerun %s in %v", i+1, rerun.describe(), rerun.elapsed.Round(time.Millisecond))
		if !slices.Equal(before, after) && !rerun.noop() {
			t.Errorf("try %d: the killed %s had already switched the boot configuration, yet the rerun deployed again:\n%s", i+1, st.name, rerun.output())
		}
	}

	// Leftovers of the killed commands are gone once a command has run its cleanup to the end:
	// the last rerun may have been a no-op, so one more step (one that deploys) runs.
	final, err := adminDeployments(sys)
	if err != nil {
		t.Fatal(err)
	}
	left := leftovers(sys, final)
	st := steps[next%len(steps)]
	h.prepare(st)
	res := h.start(st).wait()
	if res.err != nil || res.noop() {
		t.Fatalf("final %s: %v (want a deployment)\n%s", st.name, res.err, res.output())
	}
	prev := h.following
	if err := h.afterSuccess(st, final, res); err != nil {
		t.Fatalf("final %s: %v\n%s", st.name, err, res.output())
	}
	t.Logf("left after the last rerun: %v; a final %s %s, cleaned up, and left nothing", left, st.name, res.describe())

	// The checks themselves must be able to fail: damage the sysroot, and the final result, in
	// ways they must notice.
	h.checkTheCheckers(func(r *hostop.Result) error {
		after, err := adminDeployments(sys)
		if err != nil {
			return err
		}
		return h.checkResult(st, final, after, prev, r)
	}, res.result)

	t.Logf("took %v, of which %v checking after kills and reruns", time.Since(start).Round(time.Millisecond), checking.Round(time.Millisecond))
	return &stats
}

// newCrashHarness installs stable (v1) from src into a new sysroot, edits its /etc
// (crashEtcEdits, and etc/motd removed) and checks the result.
func newCrashHarness(t *testing.T, driver string, images map[string]*crashImage, src imageSource) *crashHarness {
	work := t.TempDir()
	// Install stable (v1), then edit /etc locally.
	sys := filepath.Join(work, "sysroot")
	if err := os.Mkdir(sys, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unimmutable(sys) })
	h := &crashHarness{t: t, driver: driver, sys: sys, src: src, images: images, trees: map[string]*treeSum{}, digests: map[string]string{}}
	for v := range images {
		h.digests[v] = src.digest(v)
	}
	source, err := host.ParseImage(src.ref("stable"), imgref.Parse, false)
	if err != nil {
		t.Fatal(err)
	}
	in, err := host.InstallToFilesystem(t.Context(), sys, host.Install{Source: source})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	deps, err := adminDeployments(sys)
	if err != nil || len(deps) != 1 {
		t.Fatalf("after install: ostree admin status lists %v (%v), want one deployment", deps, err)
	}
	if got := fromHost(in.Deployed.Deployment); got != deps[0] || in.Deployed.Image.Digest.String() != h.digests["v1"] {
		t.Fatalf("install reports deployment %v of image %s; ostree admin status lists %v, and stable is %s", got, in.Deployed.Image.Digest, deps[0], h.digests["v1"])
	}
	d0 := filepath.Join(sys, deps[0].dir())
	for rel, content := range crashEtcEdits {
		if err := os.WriteFile(filepath.Join(d0, rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(d0, "etc/motd")); err != nil {
		t.Fatal(err)
	}
	h.following, h.followsTag = "v1", "stable"
	if err := h.checkNewDeployment(deps[0], "v1"); err != nil {
		t.Fatalf("after install: %v", err)
	}
	if err := h.recordTrees(deps); err != nil {
		t.Fatal(err)
	}
	if err := h.checkSysroot(deps); err != nil {
		t.Fatalf("after install: %v", err)
	}
	h.logf("baseline: ostree admin status:\n%s", mustAdminStatus(t, sys))
	return h
}

// crashStep is one of the commands the test kills: switch to v2, switch back to stable, and
// upgrade along stable after it was retagged to the other of v1 and v3.
type crashStep struct {
	name string
	// follows is the tag the host follows after the step ("" for upgrade: the same).
	follows string
	upgrade bool
	// finalize: the step finalizes the staged deployment (crash_finalize_test.go).
	finalize bool
}

func crashSteps() []crashStep {
	return []crashStep{
		{name: "switch v2", follows: "v2"},
		{name: "switch stable", follows: "stable"},
		{name: "upgrade", upgrade: true},
	}
}

type crashImage struct {
	tag    string
	rootfs string
	usr    *treeSum
}

type crashHarness struct {
	t *testing.T
	// driver is the hostop binary that runs the steps.
	driver string
	sys    string
	src    imageSource
	images map[string]*crashImage
	// digests holds the manifest digest of each image (v1, v2, v3) in src.
	digests map[string]string
	// following is the image (v1, v2 or v3) the stable-or-v2 tag the host follows names;
	// followsTag is that tag; stableTag is what "stable" names now.
	following  string
	followsTag string
	stableTag  string
	// trees holds the digest of every deployment made so far (its directory and origin).
	trees map[string]*treeSum
	// runtimeDir, when set, is the driver's --runtime-dir: switch and upgrade stage.
	runtimeDir string
}

func (h *crashHarness) logf(format string, args ...any) {
	h.t.Helper()
	h.t.Logf(format, args...)
}

// prepare retags stable before an upgrade, to the other of v1 and v3, so that there is an update.
func (h *crashHarness) prepare(st crashStep) {
	if h.stableTag == "" {
		h.stableTag = "v1"
	}
	if !st.upgrade {
		return
	}
	// Only retag when the host is up to date: after a kill the rerun must find the same update.
	if h.following == h.stableTag {
		next := "v3"
		if h.stableTag == "v3" {
			next = "v1"
		}
		h.src.retag("stable", next)
		h.stableTag = next
	}
}

// target is the image a step deploys.
func (h *crashHarness) target(st crashStep) string {
	if st.follows == "v2" {
		return "v2"
	}
	return h.stableTag
}

// argv is the driver's command line for a step.
func (h *crashHarness) argv(st crashStep) []string {
	args := []string{"--sysroot", h.sys}
	if h.runtimeDir != "" {
		args = append(args, "--runtime-dir", h.runtimeDir)
	}
	switch {
	case st.finalize:
		return append(args, "finalize")
	case st.upgrade:
		return append(args, "upgrade")
	}
	return append(args, "switch", h.src.ref(st.follows))
}

// refString is the image reference of tag as package host writes it (ostree-unverified-...).
func (h *crashHarness) refString(tag string) string {
	h.t.Helper()
	ref, err := host.ParseImage(h.src.ref(tag), imgref.Parse, false)
	if err != nil {
		h.t.Fatal(err)
	}
	return ref.String()
}

// crashRun is a running step (the driver) whose output lines are timestamped.
type crashRun struct {
	cmd   *exec.Cmd
	start time.Time
	done  chan error
	// pulled is closed at the event "pulled" (host.PullDone): the pull is over, the deploy
	// begins.
	pulled chan struct{}
	mu     sync.Mutex
	lines  []outLine
}

// outLine is a line of output: on stdout a JSON line of the driver (line, nil if it is none).
type outLine struct {
	at     time.Duration
	stderr bool
	text   string
	line   *hostop.Line
}

type runResult struct {
	err      error
	elapsed  time.Duration
	killed   bool
	pulledAt time.Duration // when the event "pulled" came, 0 if it did not
	lines    []outLine
	// result is the operation's typed result, errLine its error (nil if there was none, or if
	// it was killed first).
	result  *hostop.Result
	errLine *hostop.Line
}

func (r *runResult) output() string {
	var b strings.Builder
	for _, l := range r.lines {
		stream := "out"
		if l.stderr {
			stream = "err"
		}
		fmt.Fprintf(&b, "  [%8v %s] %s\n", l.at.Round(time.Millisecond), stream, l.text)
	}
	return b.String()
}

// noop reports whether the operation's result says it found nothing to do.
func (r *runResult) noop() bool { return r.result != nil && r.result.Noop() }

// describe says what the result reports.
func (r *runResult) describe() string {
	switch {
	case r.result == nil && r.errLine != nil:
		return fmt.Sprintf("failed: %s %v", r.errLine.Error, r.errLine.Is)
	case r.result == nil:
		return "reported no result"
	case r.result.Unchanged:
		return "found the image unchanged"
	case r.result.NoUpdate:
		return "found no update"
	case r.result.Deployed != nil:
		d := r.result.Deployed
		return fmt.Sprintf("deployed %s.%d (image %.19s)", d.Deployment.Commit[:min(12, len(d.Deployment.Commit))], d.Deployment.Serial, d.Image.Digest)
	}
	return "deployed nothing"
}

// typed checks the output of a run that ended by itself: JSON lines only, ending with the
// result (exit status 0) or the error (otherwise), and no other result or error line.
func (r *runResult) typed() error {
	var results, errs int
	for i, l := range r.lines {
		if l.stderr {
			continue
		}
		if l.line == nil {
			return fmt.Errorf("stdout line %d is no JSON line of the driver: %q", i+1, l.text)
		}
		if l.line.Result != nil {
			results++
		}
		if l.line.Error != "" {
			errs++
		}
	}
	switch {
	case r.err == nil && (results != 1 || errs != 0 || r.result == nil):
		return fmt.Errorf("exit status 0 with %d results and %d errors, want one result", results, errs)
	case r.err != nil && (results != 0 || errs != 1):
		return fmt.Errorf("%v with %d results and %d errors, want one error", r.err, results, errs)
	}
	return nil
}

func (h *crashHarness) start(st crashStep) *crashRun {
	h.t.Helper()
	r := &crashRun{done: make(chan error, 1), pulled: make(chan struct{})}
	r.cmd = exec.Command(h.driver, h.argv(st)...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		h.t.Fatal(err)
	}
	r.start = time.Now()
	if err := r.cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range []struct {
		r      io.Reader
		stderr bool
	}{{stdout, false}, {stderr, true}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(p.r)
			sc.Buffer(nil, 1<<20)
			seenPulled := false
			for sc.Scan() {
				ol := outLine{at: time.Since(r.start), stderr: p.stderr, text: sc.Text()}
				if !p.stderr {
					ol.line, _ = hostop.Decode(sc.Bytes())
				}
				r.mu.Lock()
				r.lines = append(r.lines, ol)
				r.mu.Unlock()
				if ol.line != nil && ol.line.Event == hostop.EventPulled && !seenPulled {
					seenPulled = true
					close(r.pulled)
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		r.done <- r.cmd.Wait()
	}()
	return r
}

func (r *crashRun) wait() *runResult {
	return r.result(<-r.done, false)
}

// kill sends SIGKILL to the command's process group at k, unless it ended first.
func (r *crashRun) kill(k killPoint) *runResult {
	if k.afterPull {
		select {
		case err := <-r.done:
			return r.result(err, false)
		case <-r.pulled:
		}
	}
	d := k.delay
	if !k.afterPull {
		d = time.Until(r.start.Add(k.delay))
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-r.done:
		return r.result(err, false)
	case <-timer.C:
	}
	_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
	return r.result(<-r.done, true)
}

func (r *crashRun) result(err error, killed bool) *runResult {
	res := &runResult{err: err, elapsed: time.Since(r.start), killed: killed}
	r.mu.Lock()
	res.lines = slices.Clone(r.lines)
	r.mu.Unlock()
	if killed {
		// A command that was done (exit status 0) before the signal landed is not killed.
		var ee *exec.ExitError
		res.killed = errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled()
		if !res.killed {
			res.err = err
		}
	}
	for _, l := range res.lines {
		switch {
		case l.line == nil:
		case l.line.Event == hostop.EventPulled && res.pulledAt == 0:
			res.pulledAt = l.at
		case l.line.Result != nil:
			res.result = l.line.Result
		case l.line.Error != "":
			res.errLine = l.line
		}
	}
	return res
}

type stepTiming struct {
	total, pulled time.Duration
}

// killPoint is when to kill: delay after the start, or after the event "pulled".
type killPoint struct {
	delay     time.Duration
	afterPull bool
}

func (k killPoint) String() string {
	if k.afterPull {
		return fmt.Sprintf("%v after the pull", k.delay.Round(time.Millisecond))
	}
	return fmt.Sprintf("at %v", k.delay.Round(time.Millisecond))
}

// pick draws a kill point: every other kill uniformly over the whole run (as long as it took
// uninterrupted), the rest alternately within the pull and within what follows it.
func (tm *stepTiming) pick(rng *rand.Rand, i int) killPoint {
	uniform := func(d time.Duration) time.Duration { return time.Duration(rng.Int64N(int64(max(d, time.Millisecond)))) }
	if tm.pulled > 0 && tm.pulled < tm.total {
		switch i % 4 {
		case 1:
			return killPoint{delay: uniform(tm.pulled)}
		case 3:
			return killPoint{delay: uniform(tm.total - tm.pulled), afterPull: true}
		}
	}
	return killPoint{delay: uniform(tm.total)}
}

// killStats counts where the kills landed (n counts the tries).
type killStats struct {
	n                                 int
	pull, deploy, committed, finished int
	perStep                           map[string]int
	// fifths counts the kill delays by fifth of the measured run time.
	fifths [5]int
	// leftBehind counts the kills after which something was left for a later cleanup.
	leftBehind int
	// noopReruns counts the reruns whose result said there was nothing to do.
	noopReruns int
}

// record classifies a kill: during the pull (no event "pulled" yet), during the deploy
// before the boot configuration switched, after it switched (writing it or cleaning up), or too
// late (the command had finished).
func (s *killStats) record(st crashStep, res *runResult, tm *stepTiming, switched bool) string {
	s.n++
	if s.perStep == nil {
		s.perStep = map[string]int{}
	}
	if res.killed {
		s.perStep[st.name]++
		f := int(5 * float64(res.elapsed) / float64(tm.total))
		s.fifths[min(max(f, 0), 4)]++
	}
	switch {
	case !res.killed:
		s.finished++
		return fmt.Sprintf("finished before the kill, in %v", res.elapsed.Round(time.Millisecond))
	case switched:
		s.committed++
		return "after the boot configuration switched"
	case res.pulledAt == 0:
		s.pull++
		return "during the pull"
	default:
		s.deploy++
		return "during the deploy, before the boot configuration switched"
	}
}

func (s *killStats) landed() int { return s.pull + s.deploy + s.committed }

func (s *killStats) summary() string {
	return fmt.Sprintf("%d kills in %d tries: %d during the pull, %d during the deploy before the switch of the boot configuration, %d after it (writing it or cleaning up), %d tries too late (command done); kills by step %v; by fifth of the measured run time: %v; %d kills left something for a later cleanup; %d reruns found nothing to do",
		s.landed(), s.n, s.pull, s.deploy, s.committed, s.finished, s.perStep, s.fifths, s.leftBehind, s.noopReruns)
}

// checkAfterKill checks the sysroot after a kill and returns the deployments it lists: those of
// before, or the new list (see acceptableAfterKill), whose new deployment must then be complete.
func (h *crashHarness) checkAfterKill(st crashStep, before []deployment, res *runResult) ([]deployment, error) {
	if !res.killed && res.err != nil {
		return nil, fmt.Errorf("the command failed by itself: %w (it %s)", res.err, res.describe())
	}
	if !res.killed {
		if err := res.typed(); err != nil {
			return nil, err
		}
	}
	after, err := adminDeployments(h.sys)
	if err != nil {
		return nil, err
	}
	if err := acceptableAfterKill(before, after); err != nil {
		return after, err
	}
	if !slices.Equal(before, after) {
		if err := h.checkNewDeployment(after[0], h.target(st)); err != nil {
			return after, fmt.Errorf("the boot configuration lists the new deployment, but: %w", err)
		}
	}
	return after, h.checkSysroot(after)
}

// acceptableAfterKill says whether after may follow before when a command was killed: the same
// list, or the new one (see isNewList).
func acceptableAfterKill(before, after []deployment) error {
	if slices.Equal(before, after) || isNewList(before, after) {
		return nil
	}
	return fmt.Errorf("ostree admin status lists %v; before the command it listed %v: want that, or a new deployment followed by %v", after, before, before[:1])
}

// isNewList says whether after is what a command that deployed makes of before: the new
// deployment first, then the one that was first (the booted one, in a sysroot directory); the
// others are dropped.
func isNewList(before, after []deployment) bool {
	return len(after) == 2 && !slices.Contains(before, after[0]) && after[1] == before[0]
}

// afterSuccess checks the sysroot after a command that completed: the image is deployed first
// (unless there was nothing to do: then the list is the one before), the earlier first deployment
// is kept, the new one's content is the image's and its /etc carries the local edits, no
// leftovers remain if the command deployed (it cleaned up), and the typed result says what
// happened (checkResult).
func (h *crashHarness) afterSuccess(st crashStep, before []deployment, res *runResult) error {
	if err := res.typed(); err != nil {
		return err
	}
	after, err := adminDeployments(h.sys)
	if err != nil {
		return err
	}
	if err := h.checkResult(st, before, after, h.following, res.result); err != nil {
		return fmt.Errorf("the result: %w", err)
	}
	want := h.target(st)
	if res.noop() {
		if !slices.Equal(after, before) {
			return fmt.Errorf("the command said there was nothing to do, but the deployments changed from %v to %v", before, after)
		}
		if err := h.checkNewDeployment(after[0], want); err != nil {
			return fmt.Errorf("the command said there was nothing to do: %w", err)
		}
	} else {
		if !isNewList(before, after) {
			return fmt.Errorf("ostree admin status lists %v; before it listed %v: want a new deployment followed by %v", after, before, before[:1])
		}
		if err := h.checkNewDeployment(after[0], want); err != nil {
			return err
		}
		if left := leftovers(h.sys, after); len(left) > 0 {
			return fmt.Errorf("the command deployed and cleaned up, yet these are left: %v", left)
		}
	}
	if err := h.recordTrees(after); err != nil {
		return err
	}
	if err := h.checkSysroot(after); err != nil {
		return err
	}
	h.following = want
	if st.follows != "" {
		h.followsTag = st.follows
	}
	return nil
}

// checkResult checks the typed result of a step that completed, given the deployments ostree
// listed before and after it and the image the host was on (prev): it names the image asked
// for (switch) or followed (upgrade), pulled the target image; when it deployed, the new
// deployment is the one ostree lists first (boot order 0) with the target's image digest and
// commit, and an upgrade names the deployment it left and that one's image; when it found
// nothing to do, it names the deployment that stays first.
func (h *crashHarness) checkResult(st crashStep, before, after []deployment, prev string, r *hostop.Result) error {
	op, refTag := "switch", st.follows
	if st.upgrade {
		op, refTag = "upgrade", h.followsTag
	}
	tag := h.target(st)
	wantRef, wantDigest := h.refString(refTag), h.digests[tag]
	switch {
	case r.Op != op:
		return fmt.Errorf("op %q, want %q", r.Op, op)
	case r.Image != wantRef:
		return fmt.Errorf("image %q, want %q", r.Image, wantRef)
	case r.Pulled == nil:
		return errors.New("no pull reported")
	case r.Pulled.Image != wantRef || r.Pulled.State.Digest != wantDigest:
		return fmt.Errorf("pulled %s (image %s), want %s (%s, image %s)", r.Pulled.Image, r.Pulled.State.Digest, wantRef, tag, wantDigest)
	case len(after) == 0:
		return errors.New("no deployments")
	}
	first := after[0]
	if st.upgrade {
		switch {
		case r.Next == nil || r.Next.Digest != wantDigest:
			return fmt.Errorf("next image %+v, want %s (%s)", r.Next, wantDigest, tag)
		case r.From == nil || fromResult(*r.From) != before[0]:
			return fmt.Errorf("upgraded from %+v, want %v (first before)", r.From, before[0])
		case r.FromImage == nil:
			return fmt.Errorf("upgraded from %v, of no image", before[0])
		}
	}
	if r.Noop() {
		switch {
		case st.upgrade && !r.NoUpdate, !st.upgrade && !r.Unchanged, r.Unchanged && r.NoUpdate:
			return fmt.Errorf("unchanged %v, no update %v: want only the one of %s", r.Unchanged, r.NoUpdate, op)
		case r.Deployed != nil:
			return fmt.Errorf("nothing to do, yet it names the deployment %+v", r.Deployed.Deployment)
		case r.Pulled.State.Commit != first.commit:
			return fmt.Errorf("nothing to do, but the image pulled is commit %s, and %v boots", r.Pulled.State.Commit, first)
		case st.upgrade && r.FromImage.Digest != wantDigest:
			return fmt.Errorf("no update, but it is on image %s, and %s is %s", r.FromImage.Digest, tag, wantDigest)
		}
		return nil
	}
	switch d := r.Deployed; {
	case d == nil:
		return errors.New("neither deployed nor nothing to do")
	case fromResult(d.Deployment) != first || d.Deployment.Index != 0:
		return fmt.Errorf("deployed %+v, but ostree admin status lists %v first", d.Deployment, first)
	case d.Image.Digest != wantDigest || d.Image.Commit != first.commit:
		return fmt.Errorf("deployed image %s (commit %s), want %s (%s, commit %s)", d.Image.Digest, d.Image.Commit, wantDigest, tag, first.commit)
	case st.upgrade && r.FromImage.Digest != h.digests[prev]:
		return fmt.Errorf("upgraded from image %s, want %s (%s)", r.FromImage.Digest, h.digests[prev], prev)
	}
	return nil
}

// fromResult and fromHost are the deployment a result or package host names.
func fromResult(d hostop.Deployment) deployment {
	return deployment{stateroot: d.Stateroot, commit: d.Commit, serial: d.Serial}
}

func fromHost(d *sysroot.Deployment) deployment {
	return deployment{stateroot: d.Stateroot, commit: d.Commit.String(), serial: d.Serial}
}

// checkNewDeployment checks that d's /usr is the image's and its /etc has the local edits and the
// image's untouched defaults.
func (h *crashHarness) checkNewDeployment(d deployment, tag string) error {
	img := h.images[tag]
	dir := filepath.Join(h.sys, d.dir())
	usr, err := hashTree(dir, "usr", skipUsrEtc)
	if err != nil {
		return fmt.Errorf("deployment %v: %w", d, err)
	}
	if usr.sum != img.usr.sum {
		return fmt.Errorf("deployment %v: /usr differs from image %s: %s", d, tag, usr.diff(img.usr))
	}
	if err := h.checkImageDigest(d, tag); err != nil {
		return err
	}
	if tag == "v1" && len(h.trees) == 0 {
		return nil // the installed deployment, before the local edits
	}
	for rel, content := range crashEtcEdits {
		if b, err := os.ReadFile(filepath.Join(dir, rel)); err != nil || string(b) != content {
			return fmt.Errorf("deployment %v: local edit of /%s lost: %q, %v", d, rel, b, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/motd")); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deployment %v: the locally deleted /etc/motd is back (%v)", d, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "etc/demo/defaults.conf"))
	if want := "level=" + tag + "\n"; err != nil || string(b) != want {
		return fmt.Errorf("deployment %v: /etc/demo/defaults.conf is %q (%v), want the image's %q", d, b, err, want)
	}
	return nil
}

// checkImageDigest checks that host.Status says d runs image tag (its manifest digest).
func (h *crashHarness) checkImageDigest(d deployment, tag string) error {
	st, err := host.Status(context.Background(), h.sys)
	if err != nil {
		return fmt.Errorf("host.Status: %w", err)
	}
	for _, e := range st.Entries() {
		if e.Ostree == nil || fromOstreeStatus(e.Ostree) != d {
			continue
		}
		if e.Image == nil || e.Image.ImageDigest != h.digests[tag] {
			return fmt.Errorf("deployment %v: host.Status gives its image as %+v, want %s (%s)", d, e.Image, h.digests[tag], tag)
		}
		return nil
	}
	return fmt.Errorf("deployment %v: host.Status does not list it", d)
}

// recordTrees records the digest of deployments not seen before.
func (h *crashHarness) recordTrees(deps []deployment) error {
	for _, d := range deps {
		if _, ok := h.trees[d.String()]; ok {
			continue
		}
		sum, err := deploymentTree(h.sys, d)
		if err != nil {
			return err
		}
		h.trees[d.String()] = sum
	}
	return nil
}

// checkSysroot checks what must hold whenever no command runs: ostree admin status lists deps,
// ostree fsck is clean, every listed deployment's tree is as recorded, the boot entries are the
// deployments' with their kernels, and host.Status agrees.
func (h *crashHarness) checkSysroot(deps []deployment) error {
	if out, err := exec.Command("ostree", "fsck", "--repo="+filepath.Join(h.sys, "ostree/repo")).CombinedOutput(); err != nil {
		return fmt.Errorf("ostree fsck: %v\n%s", err, out)
	}
	for _, d := range deps {
		want, ok := h.trees[d.String()]
		if !ok {
			continue // new since the last check: compared with its image by checkNewDeployment
		}
		got, err := deploymentTree(h.sys, d)
		if err != nil {
			return err
		}
		if got.sum != want.sum {
			return fmt.Errorf("deployment %v changed: %s", d, got.diff(want))
		}
	}
	if err := checkBootEntries(h.sys, deps); err != nil {
		return err
	}
	return checkBootcStatus(h.sys, deps)
}

// checkTheCheckers damages the final sysroot, and the final step's result (which check checks),
// in ways each check must notice.
func (h *crashHarness) checkTheCheckers(check func(*hostop.Result) error, final *hostop.Result) {
	t := h.t
	deps, err := adminDeployments(h.sys)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.checkSysroot(deps); err != nil {
		t.Fatalf("final state: %v", err)
	}
	old := filepath.Join(h.sys, deps[1].dir())
	expect := func(what string, check func() error) {
		t.Helper()
		if err := check(); err == nil {
			t.Errorf("the checks missed %s", what)
		} else {
			t.Logf("damage noticed: %s: %.150s", what, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	// A file of the rollback deployment changes (a hardlink into the repository: fsck sees it too).
	victim := filepath.Join(old, "usr/share/crash/d07/f0007")
	orig, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(victim, append([]byte{orig[0] ^ 1}, orig[1:]...), 0o644))
	expect("a changed file in a deployment", func() error { return h.checkSysroot(deps) })
	expect("a changed file in the repository", func() error {
		out, err := exec.Command("ostree", "fsck", "--repo="+filepath.Join(h.sys, "ostree/repo")).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	expect("a changed file in a deployment (tree only)", func() error {
		got, err := deploymentTree(h.sys, deps[1])
		if err == nil && got.sum != h.trees[deps[1].String()].sum {
			err = errors.New(got.diff(h.trees[deps[1].String()]))
		}
		return err
	})
	must(t, os.WriteFile(victim, orig, 0o644))
	// A local /etc edit lost.
	etc := filepath.Join(filepath.Join(h.sys, deps[0].dir()), "etc/demo/local.conf")
	must(t, os.Rename(etc, etc+".away"))
	expect("a lost /etc edit", func() error { return h.checkNewDeployment(deps[0], h.following) })
	must(t, os.Rename(etc+".away", etc))
	// A kernel missing from /boot.
	ents, err := bootEntries(h.sys)
	if err != nil || len(ents) == 0 {
		t.Fatalf("boot entries: %v %v", ents, err)
	}
	initrd := filepath.Join(h.sys, ents[0].initrd)
	must(t, os.Rename(initrd, initrd+".away"))
	expect("a missing initramfs", func() error { return checkBootEntries(h.sys, deps) })
	must(t, os.Rename(initrd+".away", initrd))
	// Lists that are neither the old one nor the new one.
	expect("a deployment dropped", func() error { return acceptableAfterKill(deps, deps[:1]) })
	expect("deployments swapped", func() error { return acceptableAfterKill(deps, []deployment{deps[1], deps[0]}) })
	expect("the new deployment after the old", func() error {
		return acceptableAfterKill(deps[:1], []deployment{deps[0], {crashStateroot, strings.Repeat("1", 64), 0}})
	})
	expect("host.Status in another order", func() error { return checkBootcStatus(h.sys, []deployment{deps[1], deps[0]}) })
	expect("a deployment's image digest", func() error {
		other := "v2"
		if h.following == other {
			other = "v1"
		}
		return h.checkImageDigest(deps[0], other)
	})
	// Results that are not what happened.
	if err := check(final); err != nil {
		t.Fatalf("the final result: %v", err)
	}
	damaged := func(what string, damage func(r *hostop.Result)) {
		t.Helper()
		b, err := json.Marshal(final)
		must(t, err)
		var r hostop.Result
		must(t, json.Unmarshal(b, &r))
		damage(&r)
		expect(what, func() error { return check(&r) })
	}
	damaged("a result that deployed nothing", func(r *hostop.Result) { r.Deployed = nil })
	damaged("a result naming another deployment", func(r *hostop.Result) { r.Deployed.Deployment.Serial++ })
	damaged("a result with the deployment second", func(r *hostop.Result) { r.Deployed.Deployment.Index = 1 })
	damaged("a result with another image", func(r *hostop.Result) { r.Deployed.Image.Digest = h.digests["v2"] + h.digests["v1"] })
	damaged("a result that says unchanged", func(r *hostop.Result) { r.Unchanged = true })
	damaged("a result that says no update", func(r *hostop.Result) { r.NoUpdate = true })
	damaged("a result of another image reference", func(r *hostop.Result) { r.Image += "x" })
	// Leftovers.
	staging := filepath.Join(h.sys, "ostree/repo/tmp/staging-crash-test")
	must(t, os.MkdirAll(staging, 0o755))
	expect("a staging directory left", func() error { return errorIf(leftovers(h.sys, deps)) })
	must(t, os.Remove(staging))
	stray := filepath.Join(h.sys, "ostree/deploy", crashStateroot, "deploy", strings.Repeat("0", 64)+".0")
	must(t, os.Mkdir(stray, 0o755))
	expect("an unlisted deployment directory", func() error { return errorIf(leftovers(h.sys, deps)) })
	must(t, os.Remove(stray))
	if err := h.checkSysroot(deps); err != nil {
		t.Fatalf("after undoing the damage: %v", err)
	}
}

func errorIf(left []string) error {
	if len(left) > 0 {
		return fmt.Errorf("left: %v", left)
	}
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// deployment is one line of ostree admin status.
type deployment struct {
	stateroot, commit string
	serial            int
}

func (d deployment) String() string { return fmt.Sprintf("%s.%d", d.commit[:12], d.serial) }

func (d deployment) dir() string {
	return filepath.Join("ostree/deploy", d.stateroot, "deploy", fmt.Sprintf("%s.%d", d.commit, d.serial))
}

var adminStatusLine = regexp.MustCompile(`^[* ] (\S+) ([0-9a-f]{64})\.(\d+)`)

func mustAdminStatus(t *testing.T, sys string) string {
	t.Helper()
	return testutil.Run(t, "ostree", "admin", "status", "--sysroot="+sys)
}

// adminDeployments runs ostree admin status and returns the deployments it lists, in order.
func adminDeployments(sys string) ([]deployment, error) {
	out, err := exec.Command("ostree", "admin", "status", "--sysroot="+sys).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ostree admin status: %v\n%s", err, out)
	}
	var deps []deployment
	for _, line := range strings.Split(string(out), "\n") {
		m := adminStatusLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		serial, _ := strconv.Atoi(m[3])
		deps = append(deps, deployment{stateroot: m[1], commit: m[2], serial: serial})
	}
	if len(deps) == 0 {
		return nil, fmt.Errorf("ostree admin status lists no deployment:\n%s", out)
	}
	return deps, nil
}

// bootEntry is a BLS entry under /boot/loader/entries; paths are relative to the sysroot.
type bootEntry struct {
	name, linux, initrd, ostree string
}

func bootEntries(sys string) ([]bootEntry, error) {
	dir := filepath.Join(sys, "boot/loader/entries")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []bootEntry
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".conf") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		be := bootEntry{name: e.Name()}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, " ")
			v = strings.TrimSpace(v)
			switch k {
			case "linux":
				be.linux = bootPath(v)
			case "initrd":
				be.initrd = bootPath(v)
			case "options":
				for _, o := range strings.Fields(v) {
					if p, ok := strings.CutPrefix(o, "ostree="); ok {
						be.ostree = strings.TrimPrefix(p, "/")
					}
				}
			}
		}
		out = append(out, be)
	}
	return out, nil
}

// bootPath turns a path of a boot entry into one relative to the sysroot: with
// sysroot.bootprefix it starts with /boot, else it is relative to /boot.
func bootPath(p string) string {
	p = strings.TrimPrefix(p, "/")
	if !strings.HasPrefix(p, "boot/") {
		p = "boot/" + p
	}
	return p
}

// checkBootEntries checks that there is one entry per deployment, that its ostree= leads to it,
// and that its kernel and initramfs exist and are the deployment's.
func checkBootEntries(sys string, deps []deployment) error {
	ents, err := bootEntries(sys)
	if err != nil {
		return err
	}
	if len(ents) != len(deps) {
		return fmt.Errorf("%d boot entries for %d deployments", len(ents), len(deps))
	}
	seen := map[deployment]bool{}
	for _, e := range ents {
		if e.linux == "" || e.initrd == "" || e.ostree == "" {
			return fmt.Errorf("boot entry %s lacks linux, initrd or ostree=: %+v", e.name, e)
		}
		target, err := os.Stat(filepath.Join(sys, e.ostree))
		if err != nil {
			return fmt.Errorf("boot entry %s: ostree=%s: %w", e.name, e.ostree, err)
		}
		var d *deployment
		for i := range deps {
			if st, err := os.Stat(filepath.Join(sys, deps[i].dir())); err == nil && os.SameFile(st, target) {
				d = &deps[i]
			}
		}
		if d == nil {
			return fmt.Errorf("boot entry %s: ostree=%s is none of the deployments %v", e.name, e.ostree, deps)
		}
		seen[*d] = true
		for _, f := range []struct{ boot, deployed string }{{e.linux, "vmlinuz"}, {e.initrd, "initramfs.img"}} {
			got, err := os.ReadFile(filepath.Join(sys, f.boot))
			if err != nil {
				return fmt.Errorf("boot entry %s: %w", e.name, err)
			}
			want, err := os.ReadFile(filepath.Join(sys, d.dir(), "usr/lib/modules", crashKver, f.deployed))
			if err != nil {
				return fmt.Errorf("boot entry %s: %w", e.name, err)
			}
			if !bytes.Equal(got, want) {
				return fmt.Errorf("boot entry %s: /%s is not the %s of deployment %v", e.name, f.boot, f.deployed, d)
			}
		}
	}
	if len(seen) != len(deps) {
		return fmt.Errorf("boot entries %v do not cover the deployments %v", ents, deps)
	}
	return nil
}

// checkBootcStatus checks that host.Status (what `bootc status` shows) lists deps in the same
// order: the default entry counts as booted in a sysroot directory, then the rollback, then the
// others.
func checkBootcStatus(sys string, deps []deployment) error {
	st, err := host.Status(context.Background(), sys)
	if err != nil {
		return fmt.Errorf("host.Status: %w", err)
	}
	var got []deployment
	for _, e := range st.Entries() {
		if e.Ostree == nil {
			return fmt.Errorf("host.Status: the %s entry has no ostree deployment: %+v", e.Role, e.BootEntry)
		}
		got = append(got, fromOstreeStatus(e.Ostree))
	}
	if !slices.Equal(got, deps) {
		return fmt.Errorf("host.Status lists %v, ostree admin status %v", got, deps)
	}
	return nil
}

func fromOstreeStatus(o *host.OstreeStatus) deployment {
	return deployment{stateroot: o.Stateroot, commit: o.Checksum, serial: o.DeploySerial}
}

// leftovers returns what a finished cleanup must have removed: staging directories in the
// repository, deployment directories (or anything else) no listed deployment accounts for, and
// kernel directories under /boot/ostree no boot entry uses.
func leftovers(sys string, deps []deployment) []string {
	var left []string
	tmp, _ := os.ReadDir(filepath.Join(sys, "ostree/repo/tmp"))
	for _, e := range tmp {
		if strings.HasPrefix(e.Name(), "staging-") {
			left = append(left, "ostree/repo/tmp/"+e.Name())
		}
	}
	known := map[string]bool{}
	for _, d := range deps {
		known[d.dir()] = true
		known[d.dir()+".origin"] = true
	}
	deployDir := filepath.Join("ostree/deploy", crashStateroot, "deploy")
	ents, _ := os.ReadDir(filepath.Join(sys, deployDir))
	for _, e := range ents {
		if p := filepath.Join(deployDir, e.Name()); !known[p] {
			left = append(left, p)
		}
	}
	used := map[string]bool{}
	if bents, err := bootEntries(sys); err == nil {
		for _, e := range bents {
			used[filepath.Dir(e.linux)] = true
		}
	}
	kernels, _ := os.ReadDir(filepath.Join(sys, "boot/ostree"))
	for _, e := range kernels {
		if p := filepath.Join("boot/ostree", e.Name()); !used[p] {
			left = append(left, p)
		}
	}
	return left
}

// treeSum is the digest of a tree: one line per entry (path, type and mode, owner, size, content
// or link target), hashed.
type treeSum struct {
	sum   string
	lines []string
	bytes int64
}

// diff describes the first difference from want.
func (s *treeSum) diff(want *treeSum) string {
	return testutil.FirstDiff("expected", strings.Join(want.lines, "\n"), "found", strings.Join(s.lines, "\n"))
}

func skipUsrEtc(rel string) bool { return rel == "usr/etc" }

// hashTree digests root/sub, leaving out the paths (relative to root) skip says.
func hashTree(root, sub string, skip func(rel string) bool) (*treeSum, error) {
	s := &treeSum{}
	err := filepath.WalkDir(filepath.Join(root, sub), func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if skip != nil && skip(rel) {
			if de.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG:
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %s", st.Size, hex.EncodeToString(h.Sum(nil)))
			s.bytes += st.Size
		case unix.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		}
		s.lines = append(s.lines, line)
		return nil
	})
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256([]byte(strings.Join(s.lines, "\n")))
	s.sum = hex.EncodeToString(h[:])
	return s, nil
}

// deploymentTree digests a deployment's whole directory (/etc included) and its origin file.
func deploymentTree(sys string, d deployment) (*treeSum, error) {
	s, err := hashTree(filepath.Join(sys, d.dir()), ".", nil)
	if err != nil {
		return nil, fmt.Errorf("deployment %v: %w", d, err)
	}
	origin, err := os.ReadFile(filepath.Join(sys, d.dir()+".origin"))
	if err != nil {
		return nil, fmt.Errorf("deployment %v: %w", d, err)
	}
	s.lines = append(s.lines, "origin: "+string(origin))
	h := sha256.Sum256([]byte(s.sum + string(origin)))
	s.sum = hex.EncodeToString(h[:])
	return s, nil
}

// makeCrashRootfs writes a small bootable OS: busybox, a stand-in kernel and initramfs, /etc
// defaults, and crashFiles files of pseudo-random content. Each version rewrites its own sixth of
// the files, v2 has its own initramfs and one more directory.
func makeCrashRootfs(t *testing.T, root, version string) {
	t.Helper()
	vnum := int(version[1] - '0')
	modRel := "usr/lib/modules/" + crashKver
	for _, d := range []string{"usr/bin", "etc/demo", "var/lib/demo", modRel} {
		must(t, os.MkdirAll(filepath.Join(root, d), 0o755))
	}
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Run(t, "cp", bb, filepath.Join(root, "usr/bin/busybox"))
	for _, app := range []string{"sh", "cat", "ls"} {
		must(t, os.Symlink("busybox", filepath.Join(root, "usr/bin", app)))
	}
	must(t, os.Symlink("usr/bin", filepath.Join(root, "bin")))
	initramfs := "v1"
	if version == "v2" {
		initramfs = "v2"
	}
	files := map[string]string{
		"etc/os-release":          fmt.Sprintf("ID=crashos\nVERSION_ID=%s\n", version),
		"etc/motd":                "welcome\n",
		"etc/demo/theme.conf":     "colour=blue\n",
		"etc/demo/defaults.conf":  "level=" + version + "\n",
		"var/lib/demo/seed":       "first boot data\n",
		modRel + "/vmlinuz":       "not really a kernel\n",
		modRel + "/initramfs.img": "not really an initramfs " + initramfs + "\n",
	}
	for rel, content := range files {
		must(t, os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644))
	}
	n, dirs := crashFiles, crashDirs
	if version == "v2" {
		n, dirs = crashFiles+crashFiles/crashDirs, crashDirs+1 // one more directory
	}
	for d := 0; d < dirs; d++ {
		must(t, os.MkdirAll(filepath.Join(root, fmt.Sprintf("usr/share/crash/d%02d", d)), 0o755))
	}
	buf := make([]byte, 2<<20)
	for i := 0; i < n; i++ {
		d := i % crashDirs
		if i >= crashFiles {
			d = crashDirs
		}
		// Each version rewrites its own sixth of the files.
		variant := 1
		if i%6 == vnum {
			variant = vnum
		}
		rng := rand.New(rand.NewPCG(uint64(i), uint64(variant)))
		size := 512 + rng.IntN(12<<10)
		if i%crashBigEvery == 0 {
			size = 256<<10 + rng.IntN(1<<20)
		}
		b := buf[:size]
		for j := 0; j+8 <= len(b); j += 8 {
			binary.LittleEndian.PutUint64(b[j:], rng.Uint64())
		}
		mode := os.FileMode(0o644)
		if i%17 == 0 {
			mode = 0o755
		}
		p := filepath.Join(root, fmt.Sprintf("usr/share/crash/d%02d/f%04d", d, i))
		must(t, os.WriteFile(p, b, 0o600))
		must(t, os.Chmod(p, mode))
	}
}

// imageSource is where the images are: an OCI layout or a registry.
type imageSource interface {
	// ref is the reference of tag: oci:LAYOUT:TAG, docker://REPO:TAG.
	ref(tag string) string
	// digest is the manifest digest of tag.
	digest(tag string) string
	// retag points tag at the image from names.
	retag(tag, from string)
}

type ociSource struct {
	t      *testing.T
	layout string
}

func (s *ociSource) ref(tag string) string { return "oci:" + s.layout + ":" + tag }

func (s *ociSource) digest(tag string) string {
	b, err := os.ReadFile(filepath.Join(s.layout, "index.json"))
	must(s.t, err)
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	must(s.t, json.Unmarshal(b, &idx))
	for _, m := range idx.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return m.Digest
		}
	}
	s.t.Fatalf("%s has no tag %s", s.layout, tag)
	return ""
}

func (s *ociSource) retag(tag, from string) { retagOCI(s.t, s.layout, tag, from) }

// registrySource is a repository in a registry on loopback (plain HTTP).
type registrySource struct {
	t    *testing.T
	repo string
}

func (s *registrySource) ref(tag string) string { return "docker://" + s.repo + ":" + tag }

func (s *registrySource) digest(tag string) string {
	return strings.TrimSpace(testutil.Run(s.t, "skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}", s.ref(tag)))
}

func (s *registrySource) retag(tag, from string) { s.copy(s.ref(from), tag) }

func (s *registrySource) copy(src, tag string) {
	testutil.Run(s.t, "skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false", src, s.ref(tag))
}

func envCount(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		t.Fatalf("%s=%q: want a number", name, v)
	}
	return n
}

// retagOCI points tag at the manifest that from names, in the layout's index.json.
func retagOCI(t *testing.T, layout, tag, from string) {
	t.Helper()
	path := filepath.Join(layout, "index.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var idx map[string]any
	must(t, json.Unmarshal(b, &idx))
	const refName = "org.opencontainers.image.ref.name"
	var kept []any
	var src map[string]any
	for _, m := range idx["manifests"].([]any) {
		desc := m.(map[string]any)
		ann, _ := desc["annotations"].(map[string]any)
		switch ann[refName] {
		case tag:
			continue
		case from:
			src = desc
		}
		kept = append(kept, desc)
	}
	if src == nil {
		t.Fatalf("%s has no tag %s", layout, from)
	}
	dup := map[string]any{}
	for k, v := range src {
		dup[k] = v
	}
	ann := map[string]any{}
	for k, v := range src["annotations"].(map[string]any) {
		ann[k] = v
	}
	ann[refName] = tag
	dup["annotations"] = ann
	idx["manifests"] = append(kept, dup)
	out, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(path+".tmp", out, 0o644))
	must(t, os.Rename(path+".tmp", path))
}

// buildBootc builds bin/bootc into dir.
func buildBootc(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "bootc")
	cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", bin, "github.com/bootc-go/bootc/cmd/bootc")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building bootc: %v\n%s", err, out)
	}
	return bin
}

// buildHostop builds the driver internal/testutil/cmd/hostop into dir.
func buildHostop(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "hostop")
	cmd := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", bin, "github.com/bootc-go/bootc/internal/testutil/cmd/hostop")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building hostop: %v\n%s", err, out)
	}
	return bin
}

// unimmutable clears the immutable flag ostree sets on deployment directories, so that the
// temporary directory can be removed.
func unimmutable(sys string) {
	_ = exec.Command("chattr", "-R", "-f", "-i", filepath.Join(sys, "ostree/deploy")).Run()
}

func humanSize(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
