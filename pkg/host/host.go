package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sysroot"
	"github.com/bootc-go/bootc/pkg/transport"
	"github.com/bootc-go/bootc/pkg/verify"
)

// Errors callers test for (see the package documentation for those of other packages).
var (
	// ErrNoBootedDeployment: the sysroot has no booted (in a directory: no default) deployment,
	// so there is nothing to switch or upgrade from.
	ErrNoBootedDeployment = errors.New("no deployment is booted")
	// ErrNoImage: the deployment the host follows was not deployed from a container image (its
	// origin has no container-image-reference). Carried by a *NoImageError.
	ErrNoImage = errors.New("deployment does not follow a container image")
	// ErrNoDownloadedUpdate: Upgrade with UpgradeFromDownloaded found no update pulled earlier.
	ErrNoDownloadedUpdate = errors.New("no downloaded update")
	// ErrNothingToRollBack: the host has no deployment to roll back to.
	ErrNothingToRollBack = errors.New("there is no rollback deployment")
	// ErrAlreadyInstalled: InstallToFilesystem found deployments in the target. Carried by an
	// *AlreadyInstalledError.
	ErrAlreadyInstalled = errors.New("already holds an installation")
	// ErrNotLive: Open with RequireLive on a sysroot that is not the running system.
	ErrNotLive = errors.New("not the running system")
)

// NoImageError says which deployment follows no image.
type NoImageError struct {
	// Deployment is the deployment's directory, relative to the sysroot.
	Deployment string
}

func (e *NoImageError) Error() string {
	return fmt.Sprintf("deployment %s does not follow a container image (its origin has no container-image-reference): choose one with 'bootc switch IMAGE'", e.Deployment)
}

// Is makes the error match ErrNoImage.
func (e *NoImageError) Is(target error) bool { return target == ErrNoImage }

// AlreadyInstalledError says where an installation already is.
type AlreadyInstalledError struct {
	Root        string
	Deployments int
}

func (e *AlreadyInstalledError) Error() string {
	return fmt.Sprintf("%s already holds an installation (%d deployments): use 'bootc --sysroot %s switch IMAGE' to change its image, or install into an empty filesystem", e.Root, e.Deployments, e.Root)
}

// Is makes the error match ErrAlreadyInstalled.
func (e *AlreadyInstalledError) Is(target error) bool { return target == ErrAlreadyInstalled }

// Event is a progress report passed to the WithProgress callback: one of the types below.
type Event interface{ hostEvent() }

// WaitingForLock: another process holds the sysroot lock; the call waits for it (or for its
// context to end).
type WaitingForLock struct{ Path string }

// PullProgress reports a pull under way.
type PullProgress struct {
	Image imgref.OstreeRef
	imagestore.PullProgress
}

// PullDone: the pull is complete (what it fetched is also in the operation's result); what
// follows is the deployment.
type PullDone struct{ *Pulled }

// Verified: the trust policy accepted the image; the pull is pinned to Digest.
type Verified struct {
	Image imgref.OstreeRef
	*verify.Verified
}

// Warning: something that did not stop the operation failed (a cleanup, reading the current
// image's kernel arguments). What says what was being done.
type Warning struct {
	What string
	Err  error
}

func (WaitingForLock) hostEvent() {}
func (PullProgress) hostEvent()   {}
func (PullDone) hostEvent()       {}
func (Verified) hostEvent()       {}
func (Warning) hostEvent()        {}

// Option configures Open, Status and InstallToFilesystem.
type Option func(*config)

type config struct {
	log          *slog.Logger
	progress     func(Event)
	policyPath   string
	registries   transport.Registries
	requireLive  bool
	runtimeDir   string
	bootAttempts int // -1: [boot] attempts of the configuration
	// bootedForTest names (STATEROOT/COMMIT.SERIAL) the deployment that counts as booted, as
	// GRUB's fallback makes it on a machine (export_test.go).
	bootedForTest string
}

// WithLogger sets the logger for debug logs (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithProgress sets the callback that receives Events (default: none). It is called from the
// goroutine of the operation, and from the pull's goroutines one at a time.
func WithProgress(fn func(Event)) Option { return func(c *config) { c.progress = fn } }

// WithPolicy sets the containers-policy.json that verifies images whose reference asks for it
// (ostree-image-signed:); "" (the default) means verify.DefaultPolicyPath.
func WithPolicy(path string) Option { return func(c *config) { c.policyPath = path } }

// WithRegistries sets the registry configuration (registries.conf, auth, certificates,
// registries.d) for verification and pulls. When its TmpDir is "", large temporary data goes
// to ostree/repo/tmp of the sysroot, on the filesystem that receives the image.
func WithRegistries(r transport.Registries) Option { return func(c *config) { c.registries = r } }

// RequireLive makes Open refuse (ErrNotLive), before taking the lock, a sysroot that is not the
// running system: for callers that reboot into the result.
func RequireLive() Option { return func(c *config) { c.requireLive = true } }

// WithRuntimeDir sets the runtime state directory (sysroot.WithRuntimeDir). Where there is one
// (by default /run/ostree on the running system; a sysroot directory has none), Switch and
// Upgrade stage the new deployment there, and FinalizeStaged finishes it; elsewhere they write
// it to the boot entries at once.
func WithRuntimeDir(dir string) Option { return func(c *config) { c.runtimeDir = dir } }

// WithBootAttempts sets the boot attempts FinalizeStaged gives the new default deployment
// (sysroot.WriteOptions.BootAttempts; 0 for none) instead of the configured [boot] attempts.
func WithBootAttempts(n int) Option { return func(c *config) { c.bootAttempts = max(n, 0) } }

func newConfig(opts []Option) *config {
	c := &config{bootAttempts: -1} // -1: the configuration's
	for _, o := range opts {
		o(c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.progress == nil {
		c.progress = func(Event) {}
	}
	return c
}

// sysrootOptions are the options of sysroot.Open.
func (c *config) sysrootOptions() []sysroot.OpenOption {
	return []sysroot.OpenOption{sysroot.WithRuntimeDir(c.runtimeDir), sysroot.WithLogger(c.log)}
}

func (c *config) warn(what string, err error) {
	c.log.Warn(what, "err", err)
	c.progress(Warning{What: what, Err: err})
}

// Host is a sysroot opened for a lifecycle operation: it holds the sysroot lock until Close.
type Host struct {
	sys    *sysroot.Sysroot
	cfg    *config
	unlock func()
}

// Open opens the sysroot at path (ErrNotSysroot of package sysroot when there is none), takes
// its lock, waiting for another holder (with a WaitingForLock event) until ctx ends, and loads
// the deployments under the lock.
func Open(ctx context.Context, path string, opts ...Option) (*Host, error) {
	cfg := newConfig(opts)
	sys, err := sysroot.Open(ctx, path, cfg.sysrootOptions()...)
	if err != nil {
		return nil, err
	}
	if cfg.requireLive && !sys.IsLive() {
		return nil, fmt.Errorf("%w: %s is a sysroot directory, not the booted system", ErrNotLive, path)
	}
	return lock(ctx, sys, cfg)
}

func lock(ctx context.Context, sys *sysroot.Sysroot, cfg *config) (*Host, error) {
	now, cancel := context.WithCancel(ctx)
	cancel()
	unlock, err := sys.Lock(now)
	if errors.Is(err, sysroot.ErrLocked) {
		cfg.progress(WaitingForLock{Path: sys.Path()})
		unlock, err = sys.Lock(ctx)
	}
	if err != nil {
		return nil, err
	}
	// Another command may have changed the deployments while we waited for the lock.
	if err := sys.Load(ctx); err != nil {
		unlock()
		return nil, err
	}
	if err := sys.StagedIgnored(); err != nil {
		cfg.progress(Warning{What: "the staged deployment", Err: err}) // sysroot logged it
	}
	if cfg.registries.TmpDir == "" {
		cfg.registries.TmpDir = filepath.Join(sys.Repo().Path(), "tmp")
	}
	return &Host{sys: sys, cfg: cfg, unlock: unlock}, nil
}

// Close releases the sysroot lock.
func (h *Host) Close() error {
	if h.unlock != nil {
		h.unlock()
		h.unlock = nil
	}
	return nil
}

// Sysroot returns the opened sysroot (for reading; the lock is held until Close).
func (h *Host) Sysroot() *sysroot.Sysroot { return h.sys }

// IsLive reports whether the sysroot is the running system's.
func (h *Host) IsLive() bool { return h.sys.IsLive() }

// Reboot asks systemd to reboot the running system (`systemctl reboot`), into the default boot
// entry: what a caller does after Switch, Upgrade or Rollback on a live sysroot (RequireLive)
// when it wants the result now. A staged deployment is finalized by the shutdown
// (FinalizeUnit) and boots.
func Reboot(ctx context.Context) error { return systemctl(ctx, "reboot") }

// FinalizeUnit is the systemd unit whose stop, at shutdown, runs `bootc internals
// finalize-staged` (dist/systemd). Staging on the running system starts it.
const FinalizeUnit = "bootc-finalize-staged.service"

// systemctl runs systemctl with args, its output in the error.
func systemctl(ctx context.Context, args ...string) error {
	if out, err := exec.CommandContext(ctx, "systemctl", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("systemctl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
