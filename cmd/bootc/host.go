package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/kargs"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"github.com/bootc-go/bootc/pkg/sysroot"
	"github.com/bootc-go/bootc/pkg/verify"
)

// The host verbs (status, switch, upgrade, rollback, install) work on the sysroot named by
// the global --sysroot flag: "/" on a running system, or any directory holding one.

func sysrootFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "sysroot",
		Value:   "/",
		Usage:   "the physical root holding ostree/repo and /boot (a directory for offline work)",
		EnvVars: []string{"BOOTC_SYSROOT"},
	}
}

func sysrootPath(c *cli.Context) string {
	if p := globalString(c, "sysroot"); p != "" {
		return p
	}
	return "/"
}

// sysrootError turns "this is no sysroot" into advice.
func sysrootError(c *cli.Context, err error) error {
	if errors.Is(err, sysroot.ErrNotSysroot) {
		return fmt.Errorf("%w\nthis host was not installed by bootc (or ostree): install with 'bootc install to-filesystem --source-imgref IMAGE ROOT', or point --sysroot at a sysroot directory", err)
	}
	return err
}

// hostOp is a write operation on a sysroot: it holds the sysroot lock until done.
type hostOp struct {
	c      *cli.Context
	sys    *sysroot.Sysroot
	unlock func()
	out    io.Writer
}

// openHostOp opens and locks the sysroot for a verb, refusing --apply first where it cannot
// work.
func openHostOp(c *cli.Context, path string) (*hostOp, error) {
	sys, err := sysroot.Open(c.Context, path)
	if err != nil {
		return nil, sysrootError(c, err)
	}
	if err := checkApply(c, sys); err != nil {
		return nil, err
	}
	unlock, err := lockSysroot(c, sys)
	if err != nil {
		return nil, err
	}
	// Another command may have changed the deployments while we waited for the lock.
	if err := sys.Load(c.Context); err != nil {
		unlock()
		return nil, err
	}
	return &hostOp{c: c, sys: sys, unlock: unlock, out: c.App.Writer}, nil
}

func (h *hostOp) close() { h.unlock() }

// lockSysroot takes the sysroot lock, saying so when another command holds it and this one
// has to wait.
func lockSysroot(c *cli.Context, sys *sysroot.Sysroot) (func(), error) {
	now, cancel := context.WithCancel(c.Context)
	cancel()
	if unlock, err := sys.Lock(now); err == nil {
		return unlock, nil
	} else if !errors.Is(err, sysroot.ErrLocked) {
		return nil, err
	}
	fmt.Fprintf(c.App.ErrWriter, "Waiting for another bootc or ostree command to release the lock on %s\n", sys.Path())
	return sys.Lock(c.Context)
}

// Global flags of the trust policy, given before the verb.
func policyFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "signature-policy", Usage: "the containers-policy.json that says which images to trust (default /etc/containers/policy.json)"},
		&cli.StringFlag{Name: "registries-d", Usage: "the registries.d directory that says where signatures are stored (default the system's)"},
	}
}

// globalString returns a flag set before the verb, from whichever context has it.
func globalString(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.String(name)
		}
	}
	return ""
}

// pullOptions verifies ref's image by the trust policy (--signature-policy) when ref asks for
// it (ostree-image-signed:), and pins what was verified: the pull then fetches that manifest
// digest and nothing else.
func pullOptions(c *cli.Context, ref imgref.OstreeRef) (imagestore.PullOptions, error) {
	reg := registriesConfig(c, "")
	v, err := verify.Verify(c.Context, ref, verify.Options{
		PolicyPath: globalString(c, "signature-policy"),
		Registries: reg,
	})
	if err != nil || v == nil {
		return imagestore.PullOptions{Registries: reg}, err
	}
	fmt.Fprintf(c.App.ErrWriter, "Verified %s (%s) by the trust policy, scope %s\n", ref.Image, v.Digest, v.Scope)
	return imagestore.PullOptions{ExpectDigest: &v.Digest, Registries: reg}, nil
}

// pull verifies (pullOptions) and imports ref's image, drawing progress on stderr. When the
// image's content is refused (a digest mismatch, a hostile or unbootable tree), the layers
// this pull added are dropped again, so that nothing of a refused image stays in the
// repository; a pull cut off by the network or a signal keeps them, to resume.
func (h *hostOp) pull(ctx context.Context, ref imgref.OstreeRef) (*imagestore.PullResult, error) {
	o, err := pullOptions(h.c, ref)
	if err != nil {
		return nil, err
	}
	before, err := imageStoreRefs(h.sys.Repo())
	if err != nil {
		return nil, err
	}
	p := newProgress(h.c.App.ErrWriter)
	defer p.done()
	o.Progress = func(pr imagestore.PullProgress) {
		p.update("%s", pullLine(pr, p.tty))
	}
	res, err := imagestore.Pull(ctx, h.sys.Repo(), ref, o)
	if err != nil {
		if refused(err) {
			h.dropNewRefs(ctx, before)
		}
		return nil, err // Pull names the image
	}
	return res, nil
}

// refused tells content errors (the image is bad) from transient ones.
func refused(err error) bool {
	for _, e := range []error{imagestore.ErrDigestMismatch, imagestore.ErrBadLayer, imagestore.ErrNotBootable, imagestore.ErrImageChanged} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// imageStoreRefs lists the refs of the image store (ostree/container/...).
func imageStoreRefs(repo *ostree.Repo) (map[string]bool, error) {
	refs, err := repo.ListRefs()
	if err != nil {
		return nil, err
	}
	m := map[string]bool{}
	for _, r := range refs {
		if strings.HasPrefix(r.Name, ostreecontainer.RefPrefix) {
			m[r.Name] = true
		}
	}
	return m, nil
}

// dropNewRefs deletes the image-store refs that were not there before and prunes what only
// they reached.
func (h *hostOp) dropNewRefs(ctx context.Context, before map[string]bool) {
	now, err := imageStoreRefs(h.sys.Repo())
	if err == nil {
		for r := range now {
			if !before[r] {
				err = errors.Join(err, h.sys.Repo().DeleteRef(r))
			}
		}
	}
	if err == nil {
		_, err = h.sys.Repo().Prune(ctx, ostree.PruneOptions{})
	}
	if err != nil {
		fmt.Fprintf(h.c.App.ErrWriter, "warning: removing what the refused image left: %v\n", err)
	}
}

func pullLine(pr imagestore.PullProgress, tty bool) string {
	switch pr.Phase {
	case "merging", "committing":
		return fmt.Sprintf("%s%s image layers (%d/%d layers fetched)", strings.ToUpper(pr.Phase[:1]), pr.Phase[1:], pr.LayersDone, pr.Layers)
	}
	line := fmt.Sprintf("Fetching layers %d/%d  %s / %s", pr.LayersDone, pr.Layers, humanBytes(pr.BytesDone), humanBytes(pr.Bytes))
	if tty && pr.Bytes > 0 {
		line = bar(float64(pr.BytesDone)/float64(pr.Bytes), 30) + " " + line
	}
	return line
}

// bar draws a fraction as [=====>    ].
func bar(frac float64, width int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(width))
	s := strings.Repeat("=", n)
	if n < width {
		s += ">" + strings.Repeat(" ", width-n-1)
	}
	return "[" + s + "]"
}

func pullSummary(res *imagestore.PullResult) string {
	if res.LayersFetched == 0 {
		return fmt.Sprintf("all %d layers were already present", res.LayersReused)
	}
	return fmt.Sprintf("fetched %d layers (%s), reused %d", res.LayersFetched, humanBytes(res.BytesFetched), res.LayersReused)
}

// deployOptions says how to put a pulled image in place.
type deployOptions struct {
	ref       imgref.OstreeRef
	commit    ostree.Checksum
	stateroot string
	kargs     []string
	noMerge   bool
	place     sysroot.PlaceOptions
}

// deploy makes a deployment of the commit, writes the boot configuration with it first, and
// cleans up what no deployment needs any more (old deployments, their images and objects).
func (h *hostOp) deploy(ctx context.Context, o deployOptions) (*sysroot.Deployment, error) {
	origin := sysroot.NewContainerOrigin(o.ref.String())
	if id := currentBootID(); id != "" && h.sys.IsLive() {
		origin.Set(originGroup, "boot-id", id)
	}
	args, err := h.kernelArgs(ctx, o)
	if err != nil {
		return nil, err
	}
	d, st, err := h.sys.Deploy(ctx, o.commit, sysroot.DeployOptions{
		Stateroot: o.stateroot,
		Origin:    origin,
		Kargs:     args,
		NoMerge:   o.noMerge,
	})
	if err != nil {
		return nil, fmt.Errorf("deploying %s: %w", o.commit, err)
	}
	if !o.noMerge && st.EtcModified+st.EtcAdded+st.EtcRemoved > 0 {
		fmt.Fprintf(h.out, "Carried over local /etc changes: %d modified, %d added, %d removed\n", st.EtcModified, st.EtcAdded, st.EtcRemoved)
	}
	if st.VarSeeded {
		fmt.Fprintf(h.out, "Seeded /var from the image\n")
	}
	list := h.sys.Place(d, o.place)
	if err := h.sys.WriteDeployments(ctx, list, sysroot.WriteOptions{SkipCleanup: true}); err != nil {
		return nil, fmt.Errorf("writing the boot configuration: %w", err)
	}
	h.tidy(ctx)
	for _, nd := range h.sys.Deployments() {
		if nd.Commit == d.Commit && nd.Serial == d.Serial && nd.Stateroot == d.Stateroot {
			return nd, nil
		}
	}
	return d, nil
}

// kernelArgs computes the new deployment's kernel arguments: on install, those given on the
// command line and then the image's (/usr/lib/bootc/kargs.d); otherwise the merge deployment's,
// less what its image asked for and the new image no longer does, plus what the new image
// adds. Arguments an admin set by hand stay.
func (h *hostOp) kernelArgs(ctx context.Context, o deployOptions) ([]string, error) {
	image, err := kargs.FromCommit(ctx, h.sys.Repo(), o.commit)
	if err != nil {
		return nil, fmt.Errorf("the image's kernel arguments: %w", err)
	}
	current, previous := o.kargs, []string(nil)
	if merge := h.sys.MergeDeployment(o.stateroot); !o.noMerge && merge != nil {
		current = merge.Kargs
		if previous, err = kargs.FromCommit(ctx, h.sys.Repo(), merge.Commit); err != nil {
			// The deployed image was accepted once; do not let it block the next one.
			fmt.Fprintf(h.c.App.ErrWriter, "warning: the current image's kernel arguments: %v\n", err)
			previous = nil
		}
	}
	return append([]string{}, kargs.Merge(current, previous, image)...), nil
}

// tidy runs cleanup and only warns on failure: the deployments are in place, and what is
// left over (also what a killed command left) is removed by the next command.
func (h *hostOp) tidy(ctx context.Context) {
	if err := h.cleanup(ctx); err != nil {
		fmt.Fprintf(h.c.App.ErrWriter, "warning: cleaning up: %v\n", err)
	}
}

// cleanup drops the images no deployment uses (keeping those the deployments' origins follow,
// so a downloaded update survives) and then everything the deployments do not need.
func (h *hostOp) cleanup(ctx context.Context) error {
	var commits []ostree.Checksum
	var images []imgref.OstreeRef
	for _, d := range h.sys.Deployments() {
		commits = append(commits, d.Commit)
		if ref, ok := originRef(d); ok {
			images = append(images, ref)
		}
	}
	if _, err := imagestore.GC(ctx, h.sys.Repo(), commits, images); err != nil {
		return err
	}
	_, err := h.sys.Cleanup(ctx)
	return err
}

// applyFlag is --apply: reboot into the new deployment.
func applyFlag() cli.Flag {
	return &cli.BoolFlag{Name: "apply", Usage: "reboot into the new deployment when done (only on the running system)"}
}

// checkApply refuses --apply where there is nothing to reboot.
func checkApply(c *cli.Context, sys *sysroot.Sysroot) error {
	if c.Bool("apply") && !sys.IsLive() {
		return usageError(c, "--apply reboots the running system, but %s is a sysroot directory, not the booted system: leave out --apply", sys.Path())
	}
	return nil
}

func apply(c *cli.Context) error {
	if !c.Bool("apply") {
		return nil
	}
	fmt.Fprintln(c.App.Writer, "Rebooting")
	cmd := exec.CommandContext(c.Context, "systemctl", "reboot")
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	return cmd.Run()
}

// specDeployment is the deployment whose origin the host follows: the staged one, else the
// booted one.
func specDeployment(sys *sysroot.Sysroot) *sysroot.Deployment {
	r := classify(sys)
	if r.staged != nil {
		return r.staged
	}
	return r.booted
}

func describe(d *sysroot.Deployment, state *imagestore.ImageState) string {
	s := fmt.Sprintf("%s.%d", shortSum(d.Commit), d.Serial)
	if state != nil && state.Version != "" {
		s = "version " + state.Version + " (" + s + ")"
	}
	return s
}

func shortSum(c ostree.Checksum) string { return c.String()[:12] }

// refArg reads the image argument of switch: IMAGE with --transport, or a full
// ostree-image reference ("ostree-unverified-registry:…").
func refArg(c *cli.Context, arg string) (imgref.OstreeRef, error) {
	if strings.HasPrefix(arg, "ostree-") && c.IsSet("transport") {
		return imgref.OstreeRef{}, usageError(c, "%q already names its transport: leave out --transport", arg)
	}
	return imageArg(c, "IMAGE", arg, func(s string) (imgref.Ref, error) { return imgref.FromTransport(c.String("transport"), s) })
}

// imageArg parses an image given on the command line: an ostree image reference as it is,
// else what parse makes of it, unverified. oci and oci-archive paths are made absolute, as
// the origin file keeps them for later upgrades run from anywhere.
//
// With --enforce-container-sigpolicy the image must pass the trust policy
// (ostree-image-signed:).
func imageArg(c *cli.Context, what, s string, parse func(string) (imgref.Ref, error)) (imgref.OstreeRef, error) {
	enforce := c.Bool("enforce-container-sigpolicy")
	if strings.HasPrefix(s, "ostree-") {
		ref, err := imgref.ParseOstree(s)
		if err != nil {
			return imgref.OstreeRef{}, usageError(c, "%s: %v", what, err)
		}
		if enforce && ref.SigVerify != imgref.ContainerPolicy {
			return imgref.OstreeRef{}, usageError(c, "%s: %q names its own signature scheme; with --enforce-container-sigpolicy write ostree-image-signed:%s", what, s, ref.Image)
		}
		return ref, nil
	}
	img, err := parse(s)
	if err != nil {
		return imgref.OstreeRef{}, usageError(c, "%s: %v", what, err)
	}
	if img.Transport == imgref.OCI || img.Transport == imgref.OCIArchive {
		if abs, err := filepath.Abs(img.Name); err == nil {
			img.Name = abs
		}
	}
	ref := imgref.OstreeRef{SigVerify: imgref.Unverified, Image: img}
	if enforce {
		ref.SigVerify = imgref.ContainerPolicy
	}
	return ref, nil
}

// enforceFlag is --enforce-container-sigpolicy.
func enforceFlag() cli.Flag {
	return &cli.BoolFlag{Name: "enforce-container-sigpolicy", Usage: "deploy the image only if the trust policy (--signature-policy) accepts it, and keep checking on upgrades"}
}
