package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/internal/bootid"
	"github.com/bootc-go/bootc/internal/jsonfile"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/health"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// Boot counting (greenboot's protocol, see dist/systemd/README.md). When a new deployment is
// written as the default, the GRUB environment block gets boot_counter=N (BootAttempts) and
// boot_success=0. On each boot GRUB counts down; when the count is used up it boots the next
// entry (the previous deployment) and sets boot_counter=-1. In the booted system:
//
//   - CheckFallback (bootc-check-fallback.service, early) sees boot_counter=-1 on the fallback
//     boot, makes the fallback permanent and records the failed update;
//   - HealthCheck (bootc-health-check.service, before boot-complete.target) runs the health
//     checks, records their outcome for a later CheckFallback, and fails a counted boot whose
//     required checks fail (the unit then reboots);
//   - MarkBootGood (bootc-mark-boot-good.service, after boot-complete.target) ends the count.
//
// The records live in /var/lib/bootc of the stateroot (ostree/deploy/STATEROOT/var/lib/bootc in
// the sysroot): /var is shared by the deployments of a stateroot and survives the reboot into
// the previous deployment, and the running system writes it even when the sysroot is mounted
// read-only:
//
//   - health-check.json: the outcome of the latest HealthCheck (which deployment, which boot,
//     the first failing required check); CheckFallback reads it for the failed deployment;
//   - failed-update.json: the FailedUpdate of the latest fallback; Status shows it, and Upgrade
//     and CheckUpgrade hold its image digest back. MarkBootGood removes it when a later counted
//     boot (a new deployment's) succeeds.
//
// Each carries a "format" number (1) and is replaced atomically.

// grubEnvFile is the GRUB environment block, relative to the sysroot.
const grubEnvFile = "boot/" + grub.EnvFile

// The records, in the stateroot's /var.
const (
	stateDir         = "var/lib/bootc"
	healthRecordFile = "health-check.json"
	failedUpdateFile = "failed-update.json"
	recordFormat     = 1
)

// ErrUpdateFailedBefore: the newest image is one that failed to boot on this host (the Err of
// the Warning Upgrade and CheckUpgrade report when they hold it back).
var ErrUpdateFailedBefore = errors.New("this image failed to boot here before")

// FailedUpdate is a deployment that did not boot: GRUB used up its boot attempts and fell back
// to the previous deployment, which CheckFallback made the default. It is status.failedUpdate.
type FailedUpdate struct {
	// Image is the failed deployment's image (nil if it was not deployed from one).
	Image       *ImageReference `json:"image" yaml:"image"`
	ImageDigest string          `json:"imageDigest" yaml:"imageDigest"`
	Version     *string         `json:"version" yaml:"version"`
	// Reason says why: the required health check that failed on the last attempt, else that
	// the boot never completed.
	Reason string `json:"reason" yaml:"reason"`
	// Attempts is how many boots the deployment had ([boot] attempts of its configuration).
	Attempts int `json:"attempts" yaml:"attempts"`
	// Timestamp is when the fallback was made permanent (RFC 3339, UTC).
	Timestamp string `json:"timestamp" yaml:"timestamp"`
	// HealthCheck is the required health check that failed on the last attempt, if one did.
	HealthCheck *FailedCheck `json:"healthCheck,omitempty" yaml:"healthCheck,omitempty"`
}

// FailedCheck is a required health check that failed.
type FailedCheck struct {
	// Name is KIND.d/NAME, e.g. required.d/20-network.
	Name string `json:"name" yaml:"name"`
	// ExitCode is -1 when it could not run or was killed (TimedOut: by its timeout).
	ExitCode int  `json:"exitCode" yaml:"exitCode"`
	TimedOut bool `json:"timedOut,omitempty" yaml:"timedOut,omitempty"`
	// Output is its last lines.
	Output string `json:"output" yaml:"output"`
}

// healthRecord is health-check.json.
type healthRecord struct {
	Format int `json:"format"`
	// Deployment is STATEROOT/COMMIT.SERIAL.
	Deployment string `json:"deployment"`
	BootID     string `json:"bootId,omitempty"`
	Timestamp  string `json:"timestamp"`
	// Failure says why the boot failed, "" when every required check passed; Check is the first
	// failing required check.
	Failure string       `json:"failure,omitempty"`
	Check   *FailedCheck `json:"check,omitempty"`
}

// failedUpdateRecord is failed-update.json.
type failedUpdateRecord struct {
	Format       int           `json:"format"`
	Deployment   string        `json:"deployment"`
	FailedUpdate *FailedUpdate `json:"failedUpdate"`
}

func deploymentID(d *sysroot.Deployment) string {
	return fmt.Sprintf("%s/%s.%d", d.Stateroot, d.Commit, d.Serial)
}

// recordDir is /var/lib/bootc of stateroot: on the running system, for the booted stateroot,
// /var/lib/bootc itself (the same directory, writable when /sysroot is read-only); otherwise
// its path in the sysroot.
func recordDir(sys *sysroot.Sysroot, stateroot string) string {
	if b := sys.Booted(); sys.IsLive() && b != nil && b.Stateroot == stateroot {
		return "/" + stateDir
	}
	return filepath.Join(sys.Path(), "ostree/deploy", stateroot, stateDir)
}

func readRecord(dir, name string, v any) (bool, error) {
	return jsonfile.Read(filepath.Join(dir, name), v)
}

func writeRecord(dir, name string, v any) error {
	return jsonfile.Write(filepath.Join(dir, name), v)
}

// failedUpdate reads the failure recorded in stateroot (nil if none).
func failedUpdate(sys *sysroot.Sysroot, stateroot string) (*failedUpdateRecord, error) {
	var rec failedUpdateRecord
	ok, err := readRecord(recordDir(sys, stateroot), failedUpdateFile, &rec)
	if !ok || err != nil || rec.FailedUpdate == nil {
		return nil, err
	}
	return &rec, nil
}

// grubEnv reads the GRUB environment block of the sysroot at path; nil when there is none (no
// GRUB).
func grubEnv(path string) (*grub.Env, error) {
	env, err := grub.ReadEnv(filepath.Join(path, grubEnvFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return env, err
}

// HealthResult is what HealthCheck found.
type HealthResult struct {
	// Deployment is the deployment checked (the booted one).
	Deployment *sysroot.Deployment
	// Report lists the checks that ran (nil when the tree was refused).
	Report *health.Report
	// Failure is why the boot is not healthy (a *health.FailedError or *health.TreeError), nil
	// when every required check passed.
	Failure error
	// Counted: the boot is one of a new deployment's counted attempts (the GRUB environment
	// block has a boot_counter other than -1), so failing it leads to the next attempt or the
	// fallback.
	Counted bool
}

// HealthCheck runs the health checks (package health) of the booted deployment of the sysroot
// at path, with the [health] timeout of its configuration, and records the outcome in the
// stateroot's /var/lib/bootc/health-check.json, for CheckFallback to report after a fallback.
// It takes no lock. On the running system the checks are those of "/"; in a sysroot directory,
// those of the default deployment's directory (run on this machine all the same).
//
// When a required check fails or the checks cannot run (health.ErrNotExecutable, or no sysroot
// or booted deployment) on a counted boot, that is the error: the caller fails the boot (the
// unit reboots), and GRUB boots the next attempt or falls back. On a boot that is not counted
// (no boot_counter: after an install, on the fallback boot, without GRUB) a reboot could not
// help and would repeat forever: the failure is a Warning event and HealthResult.Failure, and
// the error nil. The error is ctx's when it ends.
func HealthCheck(ctx context.Context, path string, opts ...Option) (*HealthResult, error) {
	cfg := newConfig(opts)
	res := &HealthResult{}
	env, err := grubEnv(path)
	if err != nil {
		cfg.warn("reading the GRUB environment block (taking the boot as not counted)", err)
	} else if env != nil {
		v, ok := env.Get(grub.VarBootCounter)
		res.Counted = ok && v != grub.CounterFellBack
	}
	res.Failure = runHealthChecks(ctx, cfg, path, res)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.Failure != nil && !res.Counted {
		cfg.warn("the health checks failed, but this boot is not counted (no boot counter in /"+grubEnvFile+"), so there is no attempt or fallback to reboot into: fix the system or roll back with 'bootc rollback'", res.Failure)
		return res, nil
	}
	return res, res.Failure
}

// runHealthChecks runs the checks of the booted deployment and records the outcome; it returns
// why the boot is not healthy (also when the checks could not be found or run), nil if it is.
func runHealthChecks(ctx context.Context, cfg *config, path string, res *HealthResult) error {
	sys, err := sysroot.Open(ctx, path)
	if err != nil {
		return err
	}
	if res.Deployment = sys.Booted(); res.Deployment == nil {
		return fmt.Errorf("%w: no health checks to run", ErrNoBootedDeployment)
	}
	root := deploymentRoot(sys, res.Deployment)
	conf, err := LoadConfig(root)
	if err != nil {
		cfg.warn("using the default health check timeout", err)
		conf = &Config{HealthTimeout: health.DefaultTimeout}
	}
	var failure error
	res.Report, failure = health.Run(ctx, root, health.WithTimeout(conf.HealthTimeout), health.WithLogger(cfg.log))
	if ctx.Err() != nil {
		return failure
	}
	rec := healthRecord{Format: recordFormat, Deployment: deploymentID(res.Deployment), BootID: bootid.Current(), Timestamp: time.Now().UTC().Format(time.RFC3339)}
	if failure != nil {
		rec.Failure = failure.Error()
		var fe *health.FailedError
		if errors.As(failure, &fe) {
			c := fe.Failed[0]
			rec.Check = &FailedCheck{Name: c.Name, ExitCode: c.ExitCode, TimedOut: c.TimedOut, Output: c.Output}
			rec.Failure = "required health check " + c.Name + " " + c.Outcome()
		}
	}
	if err := writeRecord(recordDir(sys, res.Deployment.Stateroot), healthRecordFile, rec); err != nil {
		cfg.warn("recording the health check outcome", err)
	}
	return failure
}

// booted is the deployment that counts as booted (a test may name another, WithBooted).
func (h *Host) booted() *sysroot.Deployment {
	if id := h.cfg.bootedForTest; id != "" {
		for _, d := range h.sys.Deployments() {
			if deploymentID(d) == id {
				return d
			}
		}
	}
	return h.sys.Booted()
}

// MarkBootGood ends the count of a boot that reached boot-complete.target: in the GRUB
// environment block, boot_success=1 and boot_counter unset. It does nothing without a GRUB
// environment block, when that says so already, and when the booted deployment is not the
// default one: then the counter belongs to the next boot (an update deployed during this boot)
// or to CheckFallback (a fallback not made permanent yet). When it ends a count (boot_counter
// was set: a new deployment booted well), the failed update record of the stateroot goes: the
// host has moved on. It reports whether it changed anything.
func (h *Host) MarkBootGood(ctx context.Context) (bool, error) {
	env, err := grubEnv(h.sys.Path())
	if env == nil || err != nil {
		return false, err
	}
	counter, counted := env.Get(grub.VarBootCounter)
	if success, _ := env.Get(grub.VarBootSuccess); !counted && success == "1" {
		return false, nil
	}
	booted := h.booted()
	if deps := h.sys.Deployments(); booted == nil || len(deps) == 0 || !deps[0].Equal(booted) {
		h.cfg.log.Info("not marking the boot good: the booted deployment is not the default one", "boot_counter", counter)
		return false, nil
	}
	if err := setBootGood(h.sys); err != nil {
		return false, err
	}
	if counted {
		dir := recordDir(h.sys, booted.Stateroot)
		if err := os.Remove(filepath.Join(dir, failedUpdateFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			h.cfg.warn("removing the failed update record", err)
		}
	}
	return true, nil
}

func setBootGood(sys *sysroot.Sysroot) error {
	return grub.UpdateEnv(filepath.Join(sys.Path(), grubEnvFile), func(e *grub.Env) {
		e.Unset(grub.VarBootCounter)
		e.Set(grub.VarBootSuccess, "1")
	})
}

// CheckFallback makes GRUB's fallback permanent; it runs early in every boot. When the GRUB
// environment block says boot_counter=-1 (the default deployment used up its boot attempts and
// GRUB booted the next entry) and the booted deployment is not the default one, it
//
//  1. records the FailedUpdate in the stateroot's /var/lib/bootc/failed-update.json: the
//     default deployment's image, digest and version, its boot attempts, the time, and the
//     reason (the failing required health check that its last HealthCheck recorded, else "did
//     not complete booting after N attempts");
//  2. makes the booted deployment the default and the failed one the rollback, as Rollback
//     does (one atomic WriteDeployments);
//  3. unsets boot_counter and sets boot_success=1.
//
// It returns the FailedUpdate when it made a fallback permanent, nil when there was nothing to
// do (no GRUB environment block, no fallback). Each step is atomic, and the order makes it safe
// to kill and to run again: a run after step 1 keeps the record of that deployment as it was
// (its reason and time); a run after step 2 finds the booted deployment the default and only
// does step 3.
func (h *Host) CheckFallback(ctx context.Context) (*FailedUpdate, error) {
	env, err := grubEnv(h.sys.Path())
	if env == nil || err != nil {
		return nil, err
	}
	if v, _ := env.Get(grub.VarBootCounter); v != grub.CounterFellBack {
		return nil, nil
	}
	booted, deps := h.booted(), h.sys.Deployments()
	if booted == nil || len(deps) == 0 || deps[0].Equal(booted) {
		// Made permanent by an earlier run, or nothing to fall back to: end the count.
		return nil, setBootGood(h.sys)
	}
	failed := deps[0]
	rec, err := failedUpdate(h.sys, booted.Stateroot)
	if err != nil {
		h.cfg.warn("reading the failed update record (writing it again)", err)
	}
	if rec == nil || rec.Deployment != deploymentID(failed) { // else an earlier run recorded it
		rec = &failedUpdateRecord{Format: recordFormat, Deployment: deploymentID(failed), FailedUpdate: h.describeFailure(failed, booted.Stateroot)}
		if err := writeRecord(recordDir(h.sys, booted.Stateroot), failedUpdateFile, rec); err != nil {
			return nil, fmt.Errorf("recording the failed update: %w", err)
		}
	}
	fu := rec.FailedUpdate
	if err := h.makeDefault(ctx, booted); err != nil {
		return nil, fmt.Errorf("making the fallback permanent: %w", err)
	}
	h.cfg.warn("fell back to the previous deployment, which is the default again", fmt.Errorf("the update %s %s (deployment %s) failed to boot: %s", imageName(fu), fu.ImageDigest, deploymentID(failed), fu.Reason))
	return fu, setBootGood(h.sys)
}

// describeFailure builds the FailedUpdate of the failed deployment, with the health check
// outcome its last boot recorded in stateroot.
func (h *Host) describeFailure(failed *sysroot.Deployment, stateroot string) *FailedUpdate {
	attempts, err := h.BootAttempts(failed)
	if err != nil {
		h.cfg.warn("reading the failed deployment's boot attempts", err)
		attempts = DefaultBootAttempts
	}
	fu := &FailedUpdate{
		Attempts:  attempts,
		Timestamp: time.Now().UTC().Format(time.RFC3339),
		Reason:    fmt.Sprintf("did not complete booting after %d attempts", attempts),
	}
	if ref, ok := OriginImage(failed); ok {
		r := ImageReferenceOf(ref)
		fu.Image = &r
	}
	if state, err := imagestore.ImageStateOf(h.sys.Repo(), failed.Commit); err == nil {
		fu.ImageDigest = state.Digest.String()
		if state.Version != "" {
			fu.Version = &state.Version
		}
	}
	var rec healthRecord
	ok, err := readRecord(recordDir(h.sys, stateroot), healthRecordFile, &rec)
	if err != nil {
		h.cfg.warn("reading the failed boot's health check outcome", err)
	}
	if ok && rec.Deployment == deploymentID(failed) && rec.Failure != "" {
		fu.Reason = fmt.Sprintf("%s (on the last of %d attempts)", rec.Failure, attempts)
		fu.HealthCheck = rec.Check
	}
	return fu
}

func imageName(fu *FailedUpdate) string {
	if fu.Image == nil {
		return "no image"
	}
	return fu.Image.Image
}

// heldBack returns the failure recorded in stateroot for the image digest, reporting it as a
// Warning that says how to deploy it anyway; nil when that digest did not fail here.
func (h *Host) heldBack(stateroot string, ref imgref.OstreeRef, digest v1.Hash) *FailedUpdate {
	rec, err := failedUpdate(h.sys, stateroot)
	if err != nil {
		h.cfg.warn("reading the failed update record (not holding any update back)", err)
		return nil
	}
	if rec == nil || rec.FailedUpdate.ImageDigest != digest.String() {
		return nil
	}
	fu := rec.FailedUpdate
	what := digest.String()
	if fu.Version != nil {
		what = "version " + *fu.Version + " (" + what + ")"
	}
	h.cfg.warn("not deploying the update", fmt.Errorf("%w: %s of %s fell back to the previous deployment at %s: %s. Upgrades skip it until a different image is published; to deploy it anyway, run 'bootc switch %s'",
		ErrUpdateFailedBefore, what, ref.Image, fu.Timestamp, fu.Reason, ref))
	return fu
}

// checkHealthTree refuses an image whose /usr/lib/bootc/health.d could not run
// (health.CheckTree), from its commit in the repository: nothing is checked out or written.
func (h *Host) checkHealthTree(ctx context.Context, ref imgref.OstreeRef, commit ostree.Checksum) error {
	var files []health.File
	err := h.sys.Repo().Walk(ctx, commit, "/"+health.LibDir, ostree.WalkOptions{Recursive: true, Headers: true}, func(e *ostree.TreeEntry) error {
		f := health.File{Path: strings.TrimPrefix(e.Path, "/")}
		if e.IsDir() {
			f.Mode = fileMode(e.Meta.Mode)
		} else {
			f.Mode, f.Target = fileMode(e.Header.Mode), e.Header.SymlinkTarget
		}
		files = append(files, f)
		return nil
	})
	if errors.Is(err, ostree.ErrPathNotFound) {
		return nil
	}
	if err == nil {
		err = health.CheckTree(health.LibDir, files)
	}
	if err != nil {
		return fmt.Errorf("image %s: its health checks: %w; fix the image (e.g. RUN chmod 0755 on them) and publish it again", ref.Image, err)
	}
	return nil
}

// fileMode converts an ostree (Unix) mode.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & ostree.ModeTypeMask {
	case ostree.ModeDir:
		mode |= fs.ModeDir
	case ostree.ModeSymlink:
		mode |= fs.ModeSymlink
	case ostree.ModeRegular:
	default:
		mode |= fs.ModeIrregular
	}
	return mode
}
