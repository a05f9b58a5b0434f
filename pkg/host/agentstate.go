package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// updateAgentFile is the update agent's state (package updateagent), in the stateroot's
// /var/lib/bootc beside failed-update.json.
const updateAgentFile = "update-agent.json"

// UpdateAgentStatus is what the update agent (package updateagent) decided on its latest run;
// it is status.updateAgent. Times are RFC 3339, UTC.
type UpdateAgentStatus struct {
	// State is the outcome of the run, e.g. "up to date", "waiting for window", "rebooting".
	State    string `json:"state" yaml:"state"`
	Strategy string `json:"strategy,omitempty" yaml:"strategy,omitempty"`
	Stream   string `json:"stream,omitempty" yaml:"stream,omitempty"`
	// NodeID is the id the agent gives the update graph and the FleetLock server (an
	// app-specific id derived from /etc/machine-id).
	NodeID string `json:"nodeId,omitempty" yaml:"nodeId,omitempty"`
	// BootedVersion is the release the host runs; TargetVersion and TargetPayload
	// (REPOSITORY@sha256:...) the one it updates to, if any.
	BootedVersion string `json:"bootedVersion,omitempty" yaml:"bootedVersion,omitempty"`
	TargetVersion string `json:"targetVersion,omitempty" yaml:"targetVersion,omitempty"`
	TargetPayload string `json:"targetPayload,omitempty" yaml:"targetPayload,omitempty"`
	// LockHeld: the host holds a FleetLock reboot slot (taken before rebooting, released
	// once a later boot is good).
	LockHeld  bool   `json:"lockHeld" yaml:"lockHeld"`
	LastCheck string `json:"lastCheck" yaml:"lastCheck"`
	// Reason says why the agent waits or skipped an update.
	Reason string `json:"reason,omitempty" yaml:"reason,omitempty"`
	// NextWindow is the start of the next reboot window (strategy periodic, while waiting).
	NextWindow string `json:"nextWindow,omitempty" yaml:"nextWindow,omitempty"`
}

// updateAgentRecord is update-agent.json.
type updateAgentRecord struct {
	Format      int                `json:"format"`
	UpdateAgent *UpdateAgentStatus `json:"updateAgent"`
}

// readUpdateAgent reads the agent's state in stateroot (nil if it never ran there).
func readUpdateAgent(sys *sysroot.Sysroot, stateroot string) (*UpdateAgentStatus, error) {
	var rec updateAgentRecord
	ok, err := readRecord(recordDir(sys, stateroot), updateAgentFile, &rec)
	if !ok || err != nil {
		return nil, err
	}
	if rec.Format != recordFormat {
		return nil, fmt.Errorf("%s: format %d; this bootc reads format %d", updateAgentFile, rec.Format, recordFormat)
	}
	return rec.UpdateAgent, nil
}

// UpdateAgentStatus returns the update agent's state recorded for the booted deployment's
// stateroot, nil when the agent never ran.
func (h *Host) UpdateAgentStatus() (*UpdateAgentStatus, error) {
	b := h.booted()
	if b == nil {
		return nil, ErrNoBootedDeployment
	}
	return readUpdateAgent(h.sys, b.Stateroot)
}

// RecordUpdateAgentStatus replaces the update agent's state of the booted deployment's
// stateroot (atomically: a temporary file renamed over update-agent.json).
func (h *Host) RecordUpdateAgentStatus(s *UpdateAgentStatus) error {
	b := h.booted()
	if b == nil {
		return ErrNoBootedDeployment
	}
	return writeRecord(recordDir(h.sys, b.Stateroot), updateAgentFile, updateAgentRecord{Format: recordFormat, UpdateAgent: s})
}

// BootCounting reports whether the boot of the booted deployment is still being counted: the
// GRUB environment block has a boot_counter that MarkBootGood has not ended yet (or that GRUB's
// fallback set and CheckFallback has not resolved). Without GRUB it is false. A counter that
// belongs to the next boot (the booted deployment is not the default) does not count.
func (h *Host) BootCounting() (bool, error) {
	env, err := grubEnv(h.sys.Path())
	if env == nil || err != nil {
		return false, err
	}
	v, ok := env.Get(grub.VarBootCounter)
	if !ok {
		return false, nil
	}
	booted, deps := h.booted(), h.sys.Deployments()
	next := booted == nil || len(deps) == 0 || !deps[0].Equal(booted)
	return !next || v == grub.CounterFellBack, nil
}

// SimulateReboot does to a sysroot directory with the runtime directory runtimeDir what a
// reboot does to a machine, for tests of whole update flows (a fleet of sysroot directories):
//
//  1. the shutdown finalizes the staged deployment (FinalizeStaged; with finalization locked it
//     stays staged, and is dropped by step 2, as on a machine);
//  2. /run is empty after the boot: every file in runtimeDir is removed;
//  3. the new boot reaches boot-complete.target: MarkBootGood ends GRUB's count.
//
// The default deployment then counts as booted. It returns what FinalizeStaged did.
func SimulateReboot(ctx context.Context, path, runtimeDir string) (*FinalizeResult, error) {
	fin, err := FinalizeStaged(ctx, path, WithRuntimeDir(runtimeDir))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(runtimeDir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(runtimeDir, e.Name())); err != nil {
			return nil, err
		}
	}
	h, err := Open(ctx, path, WithRuntimeDir(runtimeDir))
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if _, err := h.MarkBootGood(ctx); err != nil {
		return nil, err
	}
	return fin, nil
}
