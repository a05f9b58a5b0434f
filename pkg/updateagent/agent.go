// Package updateagent is bootc's update agent, modelled on Fedora CoreOS's Zincati: it reads
// a release stream's update graph, stages the next release the graph leads the booted one to,
// and reboots into it when its strategy allows: at once ("immediate"), inside weekly
// maintenance windows ("periodic"), or when a FleetLock server grants a reboot slot
// ("fleet_lock"). Its configuration is TOML fragments (LoadConfig), its state a record that
// `bootc status` shows (host.UpdateAgentStatus).
package updateagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/bootc-go/bootc/pkg/fleetlock"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
	"github.com/bootc-go/bootc/pkg/updategraph"
)

// The states a run ends in (Result.State).
const (
	StateDisabled         = "disabled"
	StateUnknownRelease   = "unknown release"
	StateUpToDate         = "up to date"
	StateHeldBack         = "held back"
	StateDowngradeRefused = "downgrade refused"
	StateWaitingForWindow = "waiting for window"
	StateWaitingForSlot   = "waiting for a reboot slot"
	StateRebooting        = "rebooting"
	StateRebootNeeded     = "reboot needed"
	StateFailed           = "failed"
)

// ErrNoStream: neither the configuration nor the booted image names the stream.
var ErrNoStream = errors.New("no update stream")

// Locker is the FleetLock client the fleet_lock strategy uses (*fleetlock.Client).
type Locker interface {
	PreReboot(ctx context.Context, id, group string) error
	SteadyState(ctx context.Context, id, group string) error
}

// Result is what one run did: the recorded state (also in `bootc status`), and whether the run
// staged the target and asked for the reboot.
type Result struct {
	host.UpdateAgentStatus
	Staged   bool `json:"staged"`
	Rebooted bool `json:"rebooted"`
}

// Option configures New.
type Option func(*options)

type options struct {
	log        *slog.Logger
	now        func() time.Time
	source     updategraph.Source
	locker     Locker
	reboot     func(context.Context) error
	hostOpts   []host.Option
	registries transport.Registries
	configRoot string
}

// WithLogger sets the logger every decision is logged to (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithClock sets the clock (default time.Now): rollouts, windows and the state's times.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRegistries sets the registry configuration the graph is read with (pass the same to
// package host with WithHostOptions for the pulls).
func WithRegistries(r transport.Registries) Option { return func(o *options) { o.registries = r } }

// WithSource sets where the graph comes from (default: the configuration's: [cincinnati]
// base_url, else the release index in the registry, see releasesRepo).
func WithSource(s updategraph.Source) Option { return func(o *options) { o.source = s } }

// WithLocker sets the FleetLock client (default: fleetlock.NewClient of [updates.fleet_lock]
// base_url).
func WithLocker(l Locker) Option { return func(o *options) { o.locker = l } }

// WithRebooter sets what reboots the machine (default: `systemctl reboot`).
func WithRebooter(fn func(context.Context) error) Option { return func(o *options) { o.reboot = fn } }

// WithHostOptions passes options to package host (host.WithRuntimeDir, host.WithPolicy, ...).
func WithHostOptions(opts ...host.Option) Option {
	return func(o *options) { o.hostOpts = append(o.hostOpts, opts...) }
}

// WithConfigRoot sets the directory the configuration (ConfigDirs) and etc/machine-id are read
// under (default: "/" on the running system, the booted deployment's directory in a sysroot
// directory).
func WithConfigRoot(dir string) Option { return func(o *options) { o.configRoot = dir } }

// Agent updates the host of one sysroot.
type Agent struct {
	sysroot  string
	o        options
	interval time.Duration // the latest configuration's steady interval
}

// New returns the agent of the sysroot at sysrootPath ("/" on the running system).
func New(sysrootPath string, opts ...Option) *Agent {
	o := options{now: time.Now}
	for _, fn := range opts {
		fn(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.reboot == nil {
		o.reboot = func(ctx context.Context) error { return systemctl(ctx, o.log, "reboot") }
	}
	return &Agent{sysroot: sysrootPath, o: o, interval: DefaultSteadyInterval}
}

// systemctlPath is the systemctl the default rebooter runs (tests swap it).
var systemctlPath = "systemctl"

// systemctl runs systemctl with args, logging the command line; its output is in the error.
func systemctl(ctx context.Context, log *slog.Logger, args ...string) error {
	log.Info("running", "cmd", systemctlPath+" "+strings.Join(args, " "))
	if out, err := exec.CommandContext(ctx, systemctlPath, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", systemctlPath, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Run runs RunOnce every steady interval ([agent.timing] steady_interval_secs, up to 10% more
// or less at random, so that a fleet spreads out) until ctx ends; a failed run is logged and
// retried at the next interval. It returns nil when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	for {
		if res, err := a.RunOnce(ctx); err != nil {
			a.o.log.Warn("update check failed", "err", err)
		} else {
			a.o.log.Info("update check done", "state", res.State)
		}
		wait := time.Duration(float64(a.interval) * (0.9 + 0.2*rand.Float64()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// RunOnce makes one pass of Zincati's state machine, under the sysroot lock:
//
//  1. loads the configuration (disabled: StateDisabled);
//  2. when the booted boot is good (host.BootCounting false) and nothing is staged, releases a
//     FleetLock slot (strategy fleet_lock, or a slot the state says is held);
//  3. finds the booted release in the graph (StateUnknownRelease if it is not there) and the
//     next one (StateUpToDate if none); one that failed to boot here is skipped
//     (StateHeldBack), an older one refused unless allow_downgrade;
//  4. stages it (host.Switch to its payload with the signature verification of the reference
//     the host follows; finalization locked for periodic and fleet_lock), or reuses it when it
//     is staged already; in a sysroot directory without runtime state it is deployed at once;
//  5. reboots when the strategy allows it (StateRebooting; StateRebootNeeded where it was
//     deployed at once: nothing can reboot a sysroot directory), else StateWaitingForWindow or
//     StateWaitingForSlot, with the finalization still locked.
//
// The state is recorded after every run (also a failed one, StateFailed). The reboot is asked
// for after the sysroot lock is released.
func (a *Agent) RunOnce(ctx context.Context) (*Result, error) {
	h, err := host.Open(ctx, a.sysroot, a.o.hostOpts...)
	if err != nil {
		return nil, err
	}
	r := &run{Agent: a, h: h, now: a.o.now(), res: &Result{}}
	reboot, err := r.check(ctx)
	r.res.LastCheck = r.now.UTC().Format(time.RFC3339)
	if err != nil {
		r.res.State, r.res.Reason = StateFailed, err.Error()
	}
	if rerr := h.RecordUpdateAgentStatus(&r.res.UpdateAgentStatus); rerr != nil {
		a.o.log.Warn("recording the update agent state", "err", rerr)
	}
	h.Close()
	if err != nil || !reboot {
		return r.res, err
	}
	a.o.log.Info("rebooting into the update", "version", r.res.TargetVersion)
	if err := a.o.reboot(ctx); err != nil {
		return r.res, fmt.Errorf("rebooting: %w", err)
	}
	r.res.Rebooted = true
	return r.res, nil
}

// run is one RunOnce.
type run struct {
	*Agent
	h      *host.Host
	now    time.Time
	res    *Result
	cfg    *Config
	id     string
	locker Locker
	// offline: the update was deployed at once (a sysroot directory without runtime state).
	offline bool
}

// check does steps 1 to 5 and says whether to reboot.
func (r *run) check(ctx context.Context) (bool, error) {
	if err := r.load(); err != nil || !r.cfg.Enabled {
		return false, err
	}
	if err := r.steady(ctx); err != nil {
		return false, err
	}
	target, err := r.target(ctx)
	if err != nil || target == nil {
		return false, err
	}
	staged, err := r.stage(ctx, target)
	if err != nil || !staged {
		return false, err
	}
	return r.gate(ctx)
}

// load reads the configuration, the recorded state and the node id.
func (r *run) load() error {
	sys := r.h.Sysroot()
	booted := sys.Booted()
	if booted == nil {
		return fmt.Errorf("%w: nothing to update", host.ErrNoBootedDeployment)
	}
	root := r.o.configRoot
	if root == "" {
		root = "/"
		if !sys.IsLive() {
			root = filepath.Join(sys.Path(), booted.Dir())
		}
	}
	prev, err := r.h.UpdateAgentStatus()
	if err != nil {
		r.o.log.Warn("reading the update agent state (starting afresh)", "err", err)
	}
	r.res.LockHeld = prev != nil && prev.LockHeld
	if r.cfg, err = LoadConfig(root); err != nil {
		return err
	}
	r.interval, r.res.Strategy = r.cfg.SteadyInterval, r.cfg.Strategy
	if !r.cfg.Enabled {
		r.res.State = StateDisabled
		r.o.log.Info("updates are disabled ([updates] enabled = false)")
		return nil
	}
	if r.id = r.cfg.NodeUUID; r.id == "" {
		if r.id, err = NodeID(root); err != nil {
			return err
		}
	}
	r.res.NodeID = r.id
	if r.locker = r.o.locker; r.locker == nil && r.cfg.FleetLockURL != "" {
		c, err := fleetlock.NewClient(r.cfg.FleetLockURL, nil)
		if err != nil {
			return fmt.Errorf("%w: [updates.fleet_lock] base_url: %v", ErrInvalidConfig, err)
		}
		r.locker = c
	}
	return nil
}

// steady releases the FleetLock slot once the booted deployment's boot is good.
func (r *run) steady(ctx context.Context) error {
	if r.locker == nil || (r.cfg.Strategy != StrategyFleetLock && !r.res.LockHeld) {
		return nil
	}
	counting, err := r.h.BootCounting()
	if err != nil {
		return err
	}
	if counting || r.h.Sysroot().Staged() != nil {
		r.o.log.Info("not in steady state yet: keeping the reboot slot", "boot_counting", counting)
		return nil
	}
	if err := r.locker.SteadyState(ctx, r.id, r.cfg.Group); err != nil {
		return fmt.Errorf("releasing the FleetLock reboot slot: %w", err)
	}
	if r.res.LockHeld {
		r.o.log.Info("released the FleetLock reboot slot", "group", r.cfg.Group)
	}
	r.res.LockHeld = false
	return nil
}

// target finds the release to update to (nil: none, with the state set).
func (r *run) target(ctx context.Context) (*updategraph.Node, error) {
	sys := r.h.Sysroot()
	booted := sys.Booted()
	followed, ok := host.OriginImage(booted)
	if !ok {
		return nil, &host.NoImageError{Deployment: booted.Dir()}
	}
	state, err := imagestore.ImageStateOf(sys.Repo(), booted.Commit)
	if err != nil {
		return nil, fmt.Errorf("the booted image: %w", err)
	}
	if r.res.Stream = r.cfg.Stream; r.res.Stream == "" {
		r.res.Stream = streamOf(state)
	}
	if r.res.Stream == "" {
		return nil, fmt.Errorf("%w: the booted image has no label %s: set [updates] stream in a file in /etc/bootc/update.d/", ErrNoStream, StreamLabel)
	}
	r.res.BootedVersion = state.Version
	src := r.o.source
	if src == nil {
		if src, err = defaultSource(r.cfg, followed, r.o.registries); err != nil {
			return nil, err
		}
	}
	g, err := src.Graph(ctx, updategraph.Query{Stream: r.res.Stream, Basearch: Basearch(runtime.GOARCH), NodeUUID: r.id, Wariness: r.cfg.Wariness, Now: r.now})
	if err != nil {
		return nil, fmt.Errorf("reading the update graph of stream %s: %w", r.res.Stream, err)
	}
	from := g.Find(state.Digest.String(), state.Version)
	if from < 0 {
		r.res.State = StateUnknownRelease
		r.o.log.Warn("the booted image is not a release of the stream: not updating", "stream", r.res.Stream, "digest", state.Digest, "version", state.Version)
		return nil, nil
	}
	to, ok := g.Next(from)
	if !ok {
		r.res.State = StateUpToDate
		r.o.log.Info("no update", "stream", r.res.Stream, "booted", g.Nodes[from].Version)
		return nil, nil
	}
	t := &g.Nodes[to]
	r.res.TargetVersion, r.res.TargetPayload = t.Version, t.Payload
	if fu := r.h.Status().Status.FailedUpdate; fu != nil && fu.ImageDigest == t.Digest() {
		r.res.State, r.res.Reason = StateHeldBack, "failed to boot here at "+fu.Timestamp+": "+fu.Reason
		r.o.log.Warn("not updating: the release failed to boot here before", "target", t.String(), "reason", fu.Reason)
		return nil, nil
	}
	if t.AgeIndex() < g.Nodes[from].AgeIndex() && !r.cfg.AllowDowngrade {
		r.res.State, r.res.Reason = StateDowngradeRefused, "the graph leads to an older release; set [updates] allow_downgrade = true to allow it"
		r.o.log.Warn("not updating to an older release", "target", t.String(), "booted", g.Nodes[from].Version)
		return nil, nil
	}
	r.o.log.Info("update available", "booted", g.Nodes[from].Version, "target", t.String())
	return t, nil
}

// stage stages the target (reusing it when it is staged already). In a sysroot directory
// without runtime state the deployment is written at once (offline): gate then ends in
// StateRebootNeeded instead of a reboot.
func (r *run) stage(ctx context.Context, t *updategraph.Node) (bool, error) {
	followed, _ := host.OriginImage(r.h.Sysroot().Booted())
	ref, err := PayloadRef(followed, t.Payload)
	if err != nil {
		return false, err
	}
	if staged := r.h.Sysroot().Staged(); staged != nil {
		if cur, ok := host.OriginImage(staged); ok && cur.String() == ref.String() {
			r.o.log.Info("the update is staged already", "target", t.String(), "finalization_locked", r.h.FinalizationLocked())
			return true, nil
		}
	}
	var opts []host.SwitchOption
	if r.cfg.Strategy != StrategyImmediate {
		opts = append(opts, host.LockFinalization())
	}
	sw, err := r.h.Switch(ctx, ref, opts...)
	if err != nil {
		return false, fmt.Errorf("staging %s: %w", t, err)
	}
	r.res.Staged = sw.Deployed != nil
	if sw.Deployed != nil && !sw.Deployed.Staged {
		// Written at once: the strategy's gate still runs (a fleet_lock host takes its slot),
		// but nothing here can reboot.
		r.offline = true
		r.o.log.Info("deployed the update; it boots next (no runtime state: not rebooting)", "target", t.String())
		return true, nil
	}
	r.o.log.Info("staged the update", "target", t.String(), "finalization_locked", len(opts) > 0)
	return true, nil
}

// gate decides whether to reboot now, by the strategy.
func (r *run) gate(ctx context.Context) (bool, error) {
	switch r.cfg.Strategy {
	case StrategyPeriodic:
		if !r.cfg.Periodic.Allows(r.now) {
			next := r.cfg.Periodic.Next(r.now)
			r.res.State, r.res.NextWindow = StateWaitingForWindow, next.UTC().Format(time.RFC3339)
			r.o.log.Info("waiting for a reboot window", "next", next)
			return false, nil
		}
		r.o.log.Info("inside a reboot window")
	case StrategyFleetLock:
		if err := r.locker.PreReboot(ctx, r.id, r.cfg.Group); fleetlock.IsFull(err) {
			r.res.State, r.res.Reason = StateWaitingForSlot, err.Error()
			r.o.log.Info("waiting for a FleetLock reboot slot", "group", r.cfg.Group, "err", err)
			return false, nil
		} else if err != nil {
			return false, fmt.Errorf("taking a FleetLock reboot slot: %w", err)
		}
		r.res.LockHeld = true
		r.o.log.Info("took a FleetLock reboot slot", "group", r.cfg.Group)
	}
	if r.offline {
		r.res.State = StateRebootNeeded
		return false, nil
	}
	if err := r.h.UnlockFinalization(); err != nil {
		return false, err
	}
	r.res.State = StateRebooting
	return true, nil
}

// streamOf is the stream the image names: its config label StreamLabel, else the manifest
// annotation fedora-coreos.stream.
func streamOf(s *imagestore.ImageState) string {
	if s.Config != nil {
		if v := s.Config.Config.Labels[StreamLabel]; v != "" {
			return v
		}
	}
	if s.Manifest != nil {
		return s.Manifest.Annotations["fedora-coreos.stream"]
	}
	return ""
}

// Basearch is the graph's name of a Go architecture (x86_64, aarch64; others as Go has them).
func Basearch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}
	return goarch
}

// PayloadRef is the reference to switch to for a graph payload (REPOSITORY@sha256:...): a
// registry image, verified as followed (the reference the host follows) is.
func PayloadRef(followed imgref.OstreeRef, payload string) (imgref.OstreeRef, error) {
	img, err := imgref.Parse("docker://" + payload)
	if err != nil {
		return imgref.OstreeRef{}, fmt.Errorf("the graph's payload: %w", err)
	}
	return imgref.OstreeRef{SigVerify: followed.SigVerify, Remote: followed.Remote, Image: img}, nil
}

// defaultSource is the graph source when WithSource is not given: an HTTP Cincinnati server at
// [cincinnati] base_url, else the stream's release index in the registry (releasesRepo).
func defaultSource(cfg *Config, followed imgref.OstreeRef, reg transport.Registries) (updategraph.Source, error) {
	if cfg.CincinnatiURL != "" {
		return updategraph.NewCincinnatiSource(cfg.CincinnatiURL, nil), nil
	}
	repo, err := releasesRepo(cfg, followed)
	if err != nil {
		return nil, err
	}
	return updategraph.NewRegistrySource(repo, transport.WithRegistries(reg)), nil
}

// releasesRepo is where the host reads its stream's release index (tag releases-<stream>):
// [updates] releases (a registry repository, or an oci: layout), else the registry repository
// of the image the host follows.
func releasesRepo(cfg *Config, followed imgref.OstreeRef) (imgref.Ref, error) {
	if cfg.Releases != "" {
		ref, err := imgref.ParseOrRegistry(cfg.Releases)
		if err != nil {
			return imgref.Ref{}, fmt.Errorf("%w: [updates] releases: %v", ErrInvalidConfig, err)
		}
		return ref, nil
	}
	if followed.Image.Transport != imgref.Registry {
		return imgref.Ref{}, fmt.Errorf("%w: the host follows %s, not a registry image: set [updates] releases to the repository that holds the release index", ErrInvalidConfig, followed.Image)
	}
	return followed.Image, nil
}
