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
	// Deployment is the new deployment, as placed in the boot order (Index 0: it boots next).
	Deployment *sysroot.Deployment
	// Image is its image.
	Image *imagestore.ImageState
	// The /etc merge from the previous deployment (zero on install), counted as libostree does.
	EtcModified, EtcAdded, EtcRemoved int
	// VarSeeded: the stateroot's empty /var was filled from the image.
	VarSeeded bool
}

// deployOptions says how to put a pulled image in place.
type deployOptions struct {
	ref       imgref.OstreeRef
	image     *imagestore.ImageState
	stateroot string
	kargs     []string
	noMerge   bool
	place     sysroot.PlaceOptions
}

// deploy makes a deployment of the image's commit, writes the boot configuration with it first,
// and cleans up what no deployment needs any more (old deployments, their images and objects).
func (h *Host) deploy(ctx context.Context, o deployOptions) (*Deployed, error) {
	origin := sysroot.NewContainerOrigin(o.ref.String())
	if id := currentBootID(); id != "" && h.sys.IsLive() {
		origin.Set(originGroup, "boot-id", id)
	}
	commit := o.image.Commit
	if err := h.checkHealthTree(ctx, o.ref, commit); err != nil {
		h.tidy(ctx) // drops the image again, unless the host follows its reference
		return nil, err
	}
	args, err := h.kernelArgs(ctx, commit, o)
	if err != nil {
		return nil, err
	}
	d, st, err := h.sys.Deploy(ctx, commit, sysroot.DeployOptions{
		Stateroot: o.stateroot,
		Origin:    origin,
		Kargs:     args,
		NoMerge:   o.noMerge,
	})
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", commit, err)
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
	for _, d := range h.sys.Deployments() {
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
