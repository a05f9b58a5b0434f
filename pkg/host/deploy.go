package host

import (
	"context"
	"fmt"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/kargs"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// Deployed says what a new deployment is and what deploying it did.
type Deployed struct {
	// Deployment is the new deployment, as placed in the boot order (Index 0: it boots next),
	// or, when Staged, as staged (Index -1).
	Deployment *sysroot.Deployment
	// Image is its image.
	Image *imagestore.ImageState
	// The /etc merge from the previous deployment (zero on install, and when Staged), counted
	// as libostree does.
	EtcModified, EtcAdded, EtcRemoved int
	// VarSeeded: the stateroot's empty /var was filled from the image.
	VarSeeded bool
	// Staged: the deployment is staged (the sysroot has runtime state: the running system),
	// to be finalized at shutdown (FinalizeStaged merges /etc as it is then and writes the boot
	// entries); the boot entries are unchanged until then.
	Staged bool
}

// deployOptions says how to put a pulled image in place.
type deployOptions struct {
	ref       imgref.OstreeRef
	image     *imagestore.ImageState
	stateroot string
	kargs     []string
	noMerge   bool
	place     sysroot.PlaceOptions
	// prepare, when set, finishes the deployment (written, not staged) before any boot entry
	// names it; its error undoes the deployment.
	prepare func(*sysroot.Deployment) error
	// lockFinalization stages with finalization locked.
	lockFinalization bool
}

// deploy makes a deployment of the image's commit, writes the boot configuration with it first,
// and cleans up what no deployment needs any more (old deployments, their images and objects).
// Where the sysroot has runtime state and a booted deployment, it stages the deployment instead
// (stage).
func (h *Host) deploy(ctx context.Context, o deployOptions) (*Deployed, error) {
	commit := o.image.Commit
	if err := h.checkHealthTree(ctx, o.ref, commit); err != nil {
		h.tidy(ctx) // drops the image again, unless the host follows its reference
		return nil, err
	}
	args, err := h.kernelArgs(ctx, commit, o)
	if err != nil {
		return nil, err
	}
	dopts := sysroot.DeployOptions{
		Stateroot: o.stateroot,
		Origin:    sysroot.NewContainerOrigin(o.ref.String()),
		Kargs:     args,
		NoMerge:   o.noMerge,
	}
	if h.sys.RuntimeDir() != "" && h.sys.Booted() != nil {
		return h.stage(ctx, o, dopts)
	}
	d, st, err := h.sys.Deploy(ctx, commit, dopts)
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", commit, err)
	}
	if o.prepare != nil {
		if err := o.prepare(d); err != nil {
			h.tidy(ctx) // the deployment is in no boot entry: cleanup removes it
			return nil, err
		}
	}
	res := &Deployed{Deployment: d, Image: o.image, EtcModified: st.EtcModified, EtcAdded: st.EtcAdded, EtcRemoved: st.EtcRemoved, VarSeeded: st.VarSeeded}
	list := h.sys.Place(d, o.place)
	if err := h.sys.WriteDeployments(ctx, list, sysroot.WriteOptions{SkipCleanup: true}); err != nil {
		return nil, fmt.Errorf("writing the boot configuration: %w", err)
	}
	h.tidy(ctx)
	for _, nd := range h.sys.Deployments() {
		if nd.Equal(d) {
			res.Deployment = nd
		}
	}
	return res, nil
}

// stage stages the deployment (replacing one staged before), has systemd run FinalizeUnit at
// shutdown when the sysroot is the running system (a failure only warns: the deployment stays
// staged, and `bootc internals finalize-staged` finishes it), and cleans up.
func (h *Host) stage(ctx context.Context, o deployOptions, dopts sysroot.DeployOptions) (*Deployed, error) {
	d, st, err := h.sys.Stage(ctx, o.image.Commit, sysroot.StageOptions{DeployOptions: dopts, Retain: o.place.Retain, LockFinalization: o.lockFinalization})
	if err != nil {
		return nil, fmt.Errorf("staging %s: %w", o.image.Commit, err)
	}
	if h.sys.IsLive() {
		if err := systemctl(ctx, "start", "--no-block", FinalizeUnit); err != nil {
			h.cfg.warn("starting "+FinalizeUnit+", which finalizes the staged deployment at shutdown", err)
		}
	}
	h.tidy(ctx)
	if s := h.sys.Staged(); s != nil && s.Equal(d) {
		d = s
	}
	return &Deployed{Deployment: d, Image: o.image, VarSeeded: st.VarSeeded, Staged: true}, nil
}

// FinalizeResult says what FinalizeStaged did.
type FinalizeResult struct {
	// Deployment is the deployment that was staged, now the default (Index 0); nil when nothing
	// was staged. With Locked it is still staged.
	Deployment *sysroot.Deployment
	// Locked: finalization is locked (/run/ostree/staged-deployment-locked, as libostree has
	// it); nothing was done.
	Locked bool
	// AlreadyWritten: a finalization stopped after writing the boot entries; only its state file
	// was left to remove.
	AlreadyWritten bool
	// The /etc merge, counted as libostree does.
	EtcModified, EtcAdded, EtcRemoved int
}

// FinalizeStaged finishes the staged deployment (sysroot.FinalizeStaged): merges the /etc
// changes of the deployment it was staged from, as they are now, writes it first in the boot
// order with its boot attempts (finalizeAttempts), removes the staged state and cleans up.
// Nothing staged is no error: the result's Deployment is nil. It is what FinalizeUnit runs at
// shutdown; a crash at any point leaves the previous default or the new one booting, and
// running it again completes the finalization.
func (h *Host) FinalizeStaged(ctx context.Context) (*FinalizeResult, error) {
	f, err := h.sys.FinalizeStaged(ctx, sysroot.WriteOptions{SkipCleanup: true, BootAttempts: h.finalizeAttempts()})
	if err != nil {
		return nil, fmt.Errorf("finalizing the staged deployment: %w", err)
	}
	res := &FinalizeResult{Deployment: f.Deployment, Locked: f.Locked, AlreadyWritten: f.AlreadyWritten,
		EtcModified: f.Stats.EtcModified, EtcAdded: f.Stats.EtcAdded, EtcRemoved: f.Stats.EtcRemoved}
	if f.Deployment != nil && !f.Locked {
		h.tidy(ctx)
	}
	return res, nil
}

// FinalizationLocked reports whether the staged deployment's finalization is locked (Switch
// with LockFinalization, or libostree's --lock-finalization); false when nothing is staged.
func (h *Host) FinalizationLocked() bool { return h.sys.FinalizationLocked() }

// UnlockFinalization lets the next shutdown finalize the staged deployment
// (sysroot.UnlockFinalization); nothing staged or nothing locked is no error.
func (h *Host) UnlockFinalization() error { return h.sys.UnlockFinalization() }

// FinalizeStaged opens the sysroot at path (waiting for its lock), finalizes the staged
// deployment (Host.FinalizeStaged) and closes it.
func FinalizeStaged(ctx context.Context, path string, opts ...Option) (*FinalizeResult, error) {
	h, err := Open(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return h.FinalizeStaged(ctx)
}

// kernelArgs computes the new deployment's kernel arguments: on install, those given and then
// the image's (/usr/lib/bootc/kargs.d); otherwise the merge deployment's, less what its image
// asked for and the new image no longer does, plus what the new image adds. Arguments an admin
// set by hand stay.
func (h *Host) kernelArgs(ctx context.Context, commit ostree.Checksum, o deployOptions) ([]string, error) {
	image, err := kargs.FromCommit(ctx, h.sys.Repo(), commit)
	if err != nil {
		return nil, fmt.Errorf("the image's kernel arguments: %w", err)
	}
	current, previous := o.kargs, []string(nil)
	if merge := h.sys.MergeDeployment(o.stateroot); !o.noMerge && merge != nil {
		current = merge.Kargs
		if previous, err = kargs.FromCommit(ctx, h.sys.Repo(), merge.Commit); err != nil {
			// The deployed image was accepted once; do not let it block the next one.
			h.cfg.warn("the current image's kernel arguments", err)
			previous = nil
		}
	}
	return append([]string{}, kargs.Merge(current, previous, image)...), nil
}

// tidy runs cleanup and only warns on failure: the deployments are in place, and what is left
// over (also what a killed command left) is removed by the next command.
func (h *Host) tidy(ctx context.Context) {
	if err := h.cleanup(ctx); err != nil {
		h.cfg.warn("cleaning up", err)
	}
}

// cleanup drops the images no deployment uses (keeping those the deployments' origins follow,
// so a downloaded update survives) and then everything the deployments do not need.
func (h *Host) cleanup(ctx context.Context) error {
	var commits []ostree.Checksum
	var images []imgref.OstreeRef
	deps := h.sys.Deployments()
	if s := h.sys.Staged(); s != nil {
		deps = append(deps, s)
	}
	for _, d := range deps {
		commits = append(commits, d.Commit)
		if ref, ok := OriginImage(d); ok {
			images = append(images, ref)
		}
	}
	if _, err := imagestore.GC(ctx, h.sys.Repo(), commits, images); err != nil {
		return err
	}
	_, err := h.sys.Cleanup(ctx)
	return err
}
