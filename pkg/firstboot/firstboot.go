// Package firstboot provisions a bootc host from an Ignition config on its first boot, as Fedora
// CoreOS does, but on the running system instead of in the initramfs: the config is the qemu
// fw_cfg item opt/com.coreos/config, applied by package ignition to "/" and "/var";
// bootc-ignition-firstboot.service (dist/systemd) runs it early in every boot until the stamp
// exists.
//
// Two records live in /var/lib/bootc (the stateroot's /var, shared by every deployment, so an
// update does not provision the machine again):
//
//   - ignition-firstboot.json, the stamp: written atomically, as the LAST step, once the machine
//     is provisioned (outcome "applied") or found to have no config (outcome "no-config"). Its
//     existence ends first-boot provisioning for good (the unit's ConditionPathExists=!STAMP).
//   - ignition-firstboot-failed.json, the failure record (outcome "failed"): the config's digest,
//     the boot and the error. It is not a stamp: the next boot runs again, but applies the config
//     only if its sha256 differs from the failed one (an operator fixed it); the same config is
//     not applied again on every boot (that error is ErrFailedBefore). Removing the record asks
//     for a retry of the same config. It is removed once the stamp is written (a leftover is
//     ignored when the stamp exists).
//
// The health check: Check fails (ErrFailed) when the failure record is of the current boot and
// there is no stamp. The image runs it as the required check
// /usr/lib/bootc/health.d/required.d/50-ignition-firstboot (dist/health.d), so the boot that
// failed to provision does not count as healthy; a later boot (an update's) is not failed for an
// old provisioning failure, which would only make a good update fall back.
package firstboot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bootc-go/bootc/internal/bootid"
	"github.com/bootc-go/bootc/internal/jsonfile"
	"github.com/bootc-go/bootc/pkg/ignition"
)

// Defaults of the options.
const (
	// DefaultConfigPath is the fw_cfg item opt/com.coreos/config, once the qemu_fw_cfg module
	// is loaded.
	DefaultConfigPath = "/sys/firmware/qemu_fw_cfg/by_name/opt/com.coreos/config/raw"
	// StampName and FailureName are the records, in the state directory (default
	// VAR/lib/bootc).
	StampName   = "ignition-firstboot.json"
	FailureName = "ignition-firstboot-failed.json"
	// MaxConfigSize bounds the config read from fw_cfg.
	MaxConfigSize = 16 << 20
	recordFormat  = 1
)

// The outcomes a Record names.
const (
	Applied  = "applied"
	NoConfig = "no-config"
	Failed   = "failed"
)

// Errors callers test for.
var (
	// ErrFailed: provisioning failed in this boot (FirstBoot's error and Check's).
	ErrFailed = errors.New("Ignition first-boot provisioning failed")
	// ErrFailedBefore: the config is the one that failed on an earlier boot; it is not applied
	// again.
	ErrFailedBefore = errors.New("this Ignition config failed to apply on an earlier boot")
)

// Record is the stamp or the failure record (format 1).
type Record struct {
	Format int `json:"format"`
	// Outcome is Applied, NoConfig or Failed.
	Outcome   string `json:"outcome"`
	Timestamp string `json:"timestamp"` // RFC 3339, UTC
	BootID    string `json:"bootId,omitempty"`
	// ConfigDigest is "sha256:HEX" of the config's bytes ("" for NoConfig).
	ConfigDigest string `json:"configDigest,omitempty"`
	// What Apply reported, and the enabled units started in that boot.
	Written []string `json:"written,omitempty"`
	Users   []string `json:"users,omitempty"`
	Groups  []string `json:"groups,omitempty"`
	Enabled []string `json:"enabled,omitempty"`
	Masked  []string `json:"masked,omitempty"`
	Started []string `json:"started,omitempty"`
	// Error is why provisioning failed (Failed only).
	Error string `json:"error,omitempty"`
	// Warnings: e.g. the qemu_fw_cfg module did not load (so no config could be found).
	Warnings []string `json:"warnings,omitempty"`
}

// Result is what FirstBoot did.
type Result struct {
	// Record is this boot's record; with AlreadyDone, the stamp of the boot that provisioned
	// the machine; with ErrFailedBefore, the earlier failure.
	Record *Record
	// AlreadyDone: the stamp existed, nothing was done.
	AlreadyDone bool
}

// ApplyFunc parses an untrusted config and applies it to t.
type ApplyFunc func(ctx context.Context, untrustedConfig []byte, t ignition.Target) (*ignition.Report, error)

// ApplyConfig is the default ApplyFunc: ignition.Parse, then ignition.Apply.
func ApplyConfig(ctx context.Context, untrustedConfig []byte, t ignition.Target) (*ignition.Report, error) {
	cfg, err := ignition.Parse(untrustedConfig)
	if err != nil {
		return nil, err
	}
	return ignition.Apply(ctx, cfg, t)
}

// Option configures FirstBoot and Check.
type Option func(*config)

type config struct {
	target     ignition.Target
	configPath string
	stateDir   string
	modprobe   string
	systemctl  string
	apply      ApplyFunc
	bootID     string
	log        *slog.Logger
}

// WithTarget sets where the config is applied (default {Root: "/", Var: "/var"}).
func WithTarget(t ignition.Target) Option { return func(c *config) { c.target = t } }

// WithConfigPath sets the file holding the config (default DefaultConfigPath).
func WithConfigPath(p string) Option { return func(c *config) { c.configPath = p } }

// WithStateDir sets the directory of the stamp and the failure record (default
// TARGET_VAR/lib/bootc).
func WithStateDir(d string) Option { return func(c *config) { c.stateDir = d } }

// WithCommands sets the modprobe and systemctl programs run (default: found in $PATH).
func WithCommands(modprobe, systemctl string) Option {
	return func(c *config) { c.modprobe, c.systemctl = modprobe, systemctl }
}

// WithApply replaces ApplyConfig.
func WithApply(f ApplyFunc) Option { return func(c *config) { c.apply = f } }

// WithBootID sets the ID of this boot (default: the kernel's, package bootid).
func WithBootID(id string) Option { return func(c *config) { c.bootID = id } }

// WithLogger sets the logger of the commands run and the warnings (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

func newConfig(opts []Option) *config {
	c := &config{target: ignition.Target{Root: "/", Var: "/var"}, configPath: DefaultConfigPath,
		modprobe: "modprobe", systemctl: "systemctl", apply: ApplyConfig}
	for _, o := range opts {
		o(c)
	}
	if c.stateDir == "" {
		c.stateDir = filepath.Join(c.target.Var, "lib/bootc")
	}
	if c.bootID == "" {
		c.bootID = bootid.Current()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// FirstBoot provisions the machine unless the stamp exists (then Result.AlreadyDone). Order:
//
//  1. load the fw_cfg driver (modprobe qemu_fw_cfg; a failure is only a warning, and none when
//     the config file is there already);
//  2. no config file: stamp NoConfig, return;
//  3. the config's digest is the one of the failure record: return ErrFailedBefore;
//  4. apply the config (ApplyFunc) to the target;
//  5. systemctl daemon-reload, then systemctl start --no-block the units the config enabled, so
//     that they run in this boot;
//  6. stamp Applied (atomically, last), then remove the failure record.
//
// When 4 or 5 fails, the failure record is written and the error (wrapping ErrFailed) returned;
// nothing is stamped. Killed before 6, or stopped by ctx (nothing recorded then), the next boot
// runs again.
func FirstBoot(ctx context.Context, opts ...Option) (*Result, error) {
	c := newConfig(opts)
	var stamp Record
	if ok, err := readRecord(c.stampPath(), &stamp); err != nil {
		return nil, err
	} else if ok {
		return &Result{Record: &stamp, AlreadyDone: true}, nil
	}
	rec := &Record{Format: recordFormat, BootID: c.bootID}
	data, err := c.readConfig(ctx, rec)
	if err != nil {
		return nil, err
	}
	if data == nil {
		rec.Outcome = NoConfig
		return &Result{Record: rec}, c.writeStamp(rec)
	}
	sum := sha256.Sum256(data)
	rec.ConfigDigest = "sha256:" + hex.EncodeToString(sum[:])
	var failed Record
	if ok, err := readRecord(c.failurePath(), &failed); err != nil {
		return nil, err
	} else if ok && failed.ConfigDigest == rec.ConfigDigest {
		return &Result{Record: &failed}, fmt.Errorf("%w (at %s: %s): not applied again; fix the config (a changed one is applied on the next boot) or remove %s to retry it",
			ErrFailedBefore, failed.Timestamp, failed.Error, c.failurePath())
	}
	if err := c.provision(ctx, data, rec); err != nil {
		if ctx.Err() != nil { // stopped (a shutdown), not failed: the next boot tries again
			return &Result{Record: rec}, err
		}
		rec.Outcome, rec.Error = Failed, err.Error()
		if werr := c.write(c.failurePath(), rec); werr != nil {
			err = fmt.Errorf("%w (and recording the failure: %w)", err, werr)
		}
		return &Result{Record: rec}, fmt.Errorf("%w: %w", ErrFailed, err)
	}
	rec.Outcome = Applied
	if err := c.writeStamp(rec); err != nil {
		return &Result{Record: rec}, err
	}
	if err := os.Remove(c.failurePath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("removing the obsolete failure record (ignored now that the stamp exists)", "err", err)
	}
	return &Result{Record: rec}, nil
}

// provision applies the config and starts the units it enabled, filling in rec.
func (c *config) provision(ctx context.Context, data []byte, rec *Record) error {
	rep, err := c.apply(ctx, data, c.target)
	if err != nil {
		return fmt.Errorf("applying the Ignition config: %w", err)
	}
	rec.Written, rec.Users, rec.Groups, rec.Enabled, rec.Masked = rep.Written, rep.Users, rep.Groups, rep.Enabled, rep.Masked
	if err := c.run(ctx, c.systemctl, "daemon-reload"); err != nil {
		return err
	}
	if len(rep.Enabled) == 0 {
		return nil
	}
	if err := c.run(ctx, c.systemctl, append([]string{"start", "--no-block", "--"}, rep.Enabled...)...); err != nil {
		return err
	}
	rec.Started = rep.Enabled
	return nil
}

// readConfig loads the fw_cfg driver and reads the config; nil when there is none.
func (c *config) readConfig(ctx context.Context, rec *Record) ([]byte, error) {
	if err := c.run(ctx, c.modprobe, "qemu_fw_cfg"); err != nil {
		if _, serr := os.Stat(c.configPath); serr != nil {
			rec.Warnings = append(rec.Warnings, err.Error())
			c.log.Warn("the fw_cfg driver did not load, so there is no Ignition config", "err", err)
		}
	}
	f, err := os.Open(c.configPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the Ignition config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the Ignition config %s: %w", c.configPath, err)
	}
	if len(data) > MaxConfigSize {
		return nil, fmt.Errorf("the Ignition config %s is larger than %d bytes", c.configPath, MaxConfigSize)
	}
	return data, nil
}

// run is the one helper that runs a program: the command line logged, its output in the error.
func (c *config) run(ctx context.Context, prog string, args ...string) error {
	c.log.Info("running", "cmd", prog+" "+strings.Join(args, " "))
	out, err := exec.CommandContext(ctx, prog, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Check is the health check: ErrFailed (with the recorded error) when provisioning failed in
// this boot and the machine is not stamped; else the record it read (nil when none), no error.
func Check(ctx context.Context, opts ...Option) (*Record, error) {
	c := newConfig(opts)
	var rec Record
	if ok, err := readRecord(c.stampPath(), &rec); err != nil || ok {
		return recordOrNil(&rec, ok), err
	}
	ok, err := readRecord(c.failurePath(), &rec)
	if err != nil || !ok {
		return nil, err
	}
	if rec.BootID != "" && rec.BootID == c.bootID {
		return &rec, fmt.Errorf("%w in this boot (config %s): %s", ErrFailed, rec.ConfigDigest, rec.Error)
	}
	return &rec, nil
}

func recordOrNil(r *Record, ok bool) *Record {
	if !ok {
		return nil
	}
	return r
}

func (c *config) stampPath() string   { return filepath.Join(c.stateDir, StampName) }
func (c *config) failurePath() string { return filepath.Join(c.stateDir, FailureName) }

func (c *config) writeStamp(rec *Record) error { return c.write(c.stampPath(), rec) }

// write replaces a record atomically, stamped with the time.
func (c *config) write(path string, rec *Record) error {
	rec.Timestamp = time.Now().UTC().Format(time.RFC3339)
	return jsonfile.Write(path, rec)
}

func readRecord(path string, rec *Record) (bool, error) { return jsonfile.Read(path, rec) }
