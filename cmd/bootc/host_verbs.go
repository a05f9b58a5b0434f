package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

func switchCommand() *cli.Command {
	return &cli.Command{
		Name:      "switch",
		Usage:     "deploy another image and follow it from now on",
		ArgsUsage: "IMAGE",
		Description: `Pulls IMAGE (only the layers the host lacks), deploys it beside the running
system with local /etc changes carried over, and makes it the default boot entry.
Later 'bootc upgrade' follows IMAGE. The previous deployment stays as the rollback.

IMAGE is a registry reference by default; --transport names another place, and a
full ostree image reference (ostree-unverified-registry:NAME,
ostree-image-signed:docker://NAME, ...) is accepted as it is.

Signatures: with --enforce-container-sigpolicy (or an ostree-image-signed: reference)
the image must pass the trust policy (containers-policy.json: --signature-policy,
default /etc/containers/policy.json; sigstore signatures are found through
registries.d, --registries-d) before any of it is fetched, and the pull is pinned to
the manifest digest that was verified. A policy that accepts anything for the image
is refused, since it would check nothing. Later upgrades keep checking.

Examples:
   bootc switch quay.io/example/os:v2
   bootc switch --transport oci-archive /media/os-v2.ociarchive
   bootc switch --transport containers-storage localhost/my-os:latest
   bootc --signature-policy /etc/containers/policy.json switch --enforce-container-sigpolicy quay.io/example/os:v2
   bootc --sysroot /mnt/sysroot switch --retain 127.0.0.1:5000/os:test`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "transport", Value: "registry", Usage: "where IMAGE is: registry, oci, oci-archive or containers-storage"},
			&cli.BoolFlag{Name: "retain", Usage: "keep all existing deployments instead of only the booted one and one rollback"},
			enforceFlag(),
			applyFlag(),
		},
		Action: runSwitch,
	}
}

func runSwitch(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "expected one IMAGE argument, got %d", c.NArg())
	}
	ref, err := refArg(c, c.Args().First())
	if err != nil {
		return err
	}
	h, err := openHostOp(c, sysrootPath(c))
	if err != nil {
		return err
	}
	defer h.close()
	spec := specDeployment(h.sys)
	if spec == nil {
		return errors.New("no deployment is booted, so there is nothing to switch from: install first with 'bootc install to-filesystem --source-imgref IMAGE ROOT'")
	}
	res, err := h.pull(c.Context, ref)
	if err != nil {
		return err
	}
	fmt.Fprintf(h.out, "Pulled %s: %s\n", ref.Image, pullSummary(res))
	if cur, ok := originRef(spec); ok && cur.String() == ref.String() && spec.Commit == res.Image.Commit {
		fmt.Fprintf(h.out, "Image specification is unchanged: already on %s\n", ref.Image)
		h.tidy(c.Context)
		return nil
	}
	d, err := h.deploy(c.Context, deployOptions{ref: ref, commit: res.Image.Commit, stateroot: spec.Stateroot, place: sysroot.PlaceOptions{Retain: c.Bool("retain")}})
	if err != nil {
		return err
	}
	fmt.Fprintf(h.out, "Deployed %s %s; it boots next\n", ref.Image, describe(d, res.Image))
	return apply(c)
}

func upgradeCommand() *cli.Command {
	return &cli.Command{
		Name:    "upgrade",
		Aliases: []string{"update"},
		Usage:   "deploy the newest version of the image the host follows",
		Description: `Checks the image the host follows (see 'bootc status': spec.image) for a new
version, pulls only the layers that changed, and deploys it as the default boot
entry with local /etc changes carried over.

--check reads the manifest and config only, and says what an upgrade would download.
--download-only pulls the update but deploys nothing; --from-downloaded later deploys
it without touching the network (for maintenance windows).

A host that follows a signed image (ostree-image-signed:, as switch and install
--enforce-container-sigpolicy record it) verifies every update against the trust
policy (--signature-policy) before fetching it.

Examples:
   bootc upgrade --check
   bootc upgrade --check --format json | jq .updateAvailable
   bootc upgrade
   bootc upgrade --download-only && bootc upgrade --from-downloaded
   bootc --sysroot /mnt/sysroot upgrade`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "only say whether an update is available and what it would download"},
			&cli.BoolFlag{Name: "download-only", Usage: "pull the update but do not deploy it"},
			&cli.BoolFlag{Name: "from-downloaded", Usage: "deploy the update pulled earlier by --download-only, without network access"},
			&cli.BoolFlag{Name: "quiet", Usage: "print nothing but errors"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "with --check: text or json"},
			applyFlag(),
		},
		Action: runUpgrade,
	}
}

func runUpgrade(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "upgrade takes no arguments (to change images, use 'bootc switch IMAGE')")
	}
	check, dlOnly, fromDl := c.Bool("check"), c.Bool("download-only"), c.Bool("from-downloaded")
	switch {
	case check && (dlOnly || fromDl || c.Bool("apply")):
		return usageError(c, "--check only looks: it cannot be combined with --download-only, --from-downloaded or --apply")
	case dlOnly && fromDl:
		return usageError(c, "--download-only and --from-downloaded are two steps: run them one after the other")
	case dlOnly && c.Bool("apply"):
		return usageError(c, "--download-only deploys nothing, so there is nothing to --apply")
	case c.IsSet("format") && !check:
		return usageError(c, "--format applies to --check only")
	}
	asJSON, err := checkFormat(c)
	if err != nil {
		return err
	}
	h, err := openHostOp(c, sysrootPath(c))
	if err != nil {
		return err
	}
	defer h.close()
	if c.Bool("quiet") {
		h.out = io.Discard
	}
	spec := specDeployment(h.sys)
	if spec == nil {
		return errors.New("no deployment is booted, so there is nothing to upgrade: install first with 'bootc install to-filesystem --source-imgref IMAGE ROOT'")
	}
	ref, ok := originRef(spec)
	if !ok {
		return fmt.Errorf("deployment %s does not follow a container image (its origin has no container-image-reference): choose one with 'bootc switch IMAGE'", spec.Dir())
	}
	current, _ := imagestore.ImageStateOf(h.sys.Repo(), spec.Commit)
	if check {
		return upgradeCheck(c, h, ref, current, asJSON)
	}
	var next *imagestore.ImageState
	if fromDl {
		next, err = imagestore.QueryImage(h.sys.Repo(), ref)
		if errors.Is(err, imagestore.ErrImageNotPulled) || (err == nil && next.Commit == spec.Commit) {
			return fmt.Errorf("no downloaded update for %s: run 'bootc upgrade --download-only' first", ref.Image)
		}
		if err != nil {
			return err
		}
	} else {
		res, err := h.pull(c.Context, ref)
		if err != nil {
			return err
		}
		next = res.Image
		fmt.Fprintf(h.out, "Pulled %s: %s\n", ref.Image, pullSummary(res))
	}
	if next.Commit == spec.Commit {
		fmt.Fprintf(h.out, "No update available: %s is at %s\n", ref.Image, describe(spec, current))
		h.tidy(c.Context)
		return nil
	}
	if dlOnly {
		fmt.Fprintf(h.out, "Downloaded %s; deploy it with 'bootc upgrade --from-downloaded'\n", versionOf(next))
		return nil
	}
	d, err := h.deploy(c.Context, deployOptions{ref: ref, commit: next.Commit, stateroot: spec.Stateroot})
	if err != nil {
		return err
	}
	fmt.Fprintf(h.out, "Upgraded %s from %s to %s; it boots next\n", ref.Image, describe(spec, current), describe(d, next))
	return apply(c)
}

// updateCheck is the JSON form of `upgrade --check`.
type updateCheck struct {
	Image           imageReference `json:"image"`
	UpdateAvailable bool           `json:"updateAvailable"`
	Current         *checkedImage  `json:"current"`
	Available       checkedImage   `json:"available"`
	// Download is what an upgrade would fetch; Total is the whole image.
	Download transferSize `json:"download"`
	Total    transferSize `json:"total"`
}

type checkedImage struct {
	Digest    string `json:"digest"`
	Version   string `json:"version,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
}

type transferSize struct {
	Layers int   `json:"layers"`
	Bytes  int64 `json:"bytes"`
}

func checkedOf(s *imagestore.ImageState) *checkedImage {
	ci := &checkedImage{Digest: s.Digest.String(), Version: s.Version}
	if !s.Created.IsZero() {
		ci.Timestamp = s.Created.UTC().Format(time.RFC3339)
	}
	return ci
}

// upgradeCheck says what an upgrade would do, from the manifest and config alone.
func upgradeCheck(c *cli.Context, h *hostOp, ref imgref.OstreeRef, current *imagestore.ImageState, asJSON bool) error {
	o, err := pullOptions(c, ref)
	if err != nil {
		return err
	}
	plan, err := imagestore.Inspect(c.Context, h.sys.Repo(), ref, o)
	if err != nil {
		return fmt.Errorf("checking %s: %w", ref.Image, err)
	}
	res := updateCheck{
		Image:           imageReferenceOf(ref),
		UpdateAvailable: current == nil || current.Digest != plan.Digest,
		Available:       *checkedOf(&imagestore.ImageState{Digest: plan.Digest, Version: plan.Version, Created: plan.Created}),
		Total:           transferSize{Layers: len(plan.Layers)},
	}
	if current != nil {
		res.Current = checkedOf(current)
	}
	for _, l := range plan.Layers {
		res.Total.Bytes += l.Size
	}
	if res.UpdateAvailable {
		res.Download.Layers, res.Download.Bytes = plan.ToFetch()
	}
	if asJSON {
		enc := json.NewEncoder(h.out)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if !res.UpdateAvailable {
		fmt.Fprintf(h.out, "No changes in %s (%s)\n", ref.Image, plan.Digest)
		return nil
	}
	fmt.Fprintf(h.out, "Update available for %s:\n", ref.Image)
	from := "(unknown)"
	if current != nil {
		from = current.Version
		fmt.Fprintf(h.out, "  Digest:   %s -> %s\n", current.Digest, plan.Digest)
	} else {
		fmt.Fprintf(h.out, "  Digest:   %s\n", plan.Digest)
	}
	if from != "" || plan.Version != "" {
		fmt.Fprintf(h.out, "  Version:  %s -> %s\n", orNone(from), orNone(plan.Version))
	}
	fmt.Fprintf(h.out, "  Download: %d of %d layers, %s of %s\n", res.Download.Layers, res.Total.Layers, humanBytes(res.Download.Bytes), humanBytes(res.Total.Bytes))
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func versionOf(s *imagestore.ImageState) string {
	if s.Version != "" {
		return "version " + s.Version + " (" + s.Digest.String() + ")"
	}
	return s.Digest.String()
}

func rollbackCommand() *cli.Command {
	return &cli.Command{
		Name:  "rollback",
		Usage: "make the previous deployment the default boot entry",
		Description: `Swaps the boot order so that the rollback deployment (see 'bootc status') boots
next. Nothing is deleted: running rollback again swaps back. /etc changes made
since the rollback deployment was current are not carried back to it.

When the machine was started from an older entry (the default one failed to boot, or
was skipped in the boot menu) and nothing comes after the booted deployment,
rollback makes the booted deployment the default again, as rpm-ostree does; so does
a rollback right after 'switch' or 'upgrade', before the reboot.

Examples:
   bootc rollback
   bootc rollback --apply
   bootc --sysroot /mnt/sysroot rollback`,
		Flags:  []cli.Flag{applyFlag()},
		Action: runRollback,
	}
}

func runRollback(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "rollback takes no arguments")
	}
	h, err := openHostOp(c, sysrootPath(c))
	if err != nil {
		return err
	}
	defer h.close()
	rb, undo := h.sys.RollbackTarget()
	if rb == nil {
		return errors.New("there is no rollback deployment: the host has only one deployment")
	}
	list := []*sysroot.Deployment{rb}
	for _, d := range h.sys.Deployments() {
		if !d.Equal(rb) {
			list = append(list, d)
		}
	}
	if err := h.sys.WriteDeployments(c.Context, list, sysroot.WriteOptions{}); err != nil {
		return fmt.Errorf("writing the boot configuration: %w", err)
	}
	state, _ := imagestore.ImageStateOf(h.sys.Repo(), rb.Commit)
	name := rb.Dir()
	if ref, ok := originRef(rb); ok {
		name = ref.Image.String()
	}
	why := "the rollback deployment is now the default"
	if undo {
		why = "the booted deployment is the default again; the one ahead of it stays as the rollback"
	}
	fmt.Fprintf(h.out, "Next boot: %s %s (%s)\n", name, describe(rb, state), why)
	return apply(c)
}

func installCommand() *cli.Command {
	return &cli.Command{
		Name:  "install",
		Usage: "install a bootable image onto a target",
		Subcommands: []*cli.Command{{
			Name:      "to-filesystem",
			Usage:     "install into a mounted root filesystem (or any directory)",
			ArgsUsage: "ROOT",
			Description: `Creates the OSTree sysroot layout in ROOT (ostree/repo, ostree/deploy, boot),
pulls the image into the repository, deploys it into the stateroot and writes the
boot entries. ROOT must not hold an installation already. The origin records the
image so that 'bootc --sysroot ROOT upgrade' (or 'bootc upgrade' once booted)
follows it.

--source-imgref takes the containers-transports syntax (docker://NAME, oci:DIR,
oci-archive:FILE, containers-storage:NAME) or an ostree image reference.
--target-imgref sets what the origin records, when the host should follow another
name than the one installed from.
--enforce-container-sigpolicy installs only an image the trust policy
(--signature-policy, default /etc/containers/policy.json) accepts, and makes the
host verify every later update too.

Examples:
   bootc install to-filesystem --source-imgref docker://quay.io/example/os:v1 /mnt/root
   bootc install to-filesystem --source-imgref oci:./os-layout --karg console=ttyS0 /tmp/sysroot
   bootc --signature-policy policy.json install to-filesystem --enforce-container-sigpolicy \
       --source-imgref docker://registry.example/os:stable /mnt/root
   bootc install to-filesystem --source-imgref oci-archive:os.ociarchive \
       --target-imgref docker://registry.example/os:stable --stateroot fedora /mnt/root`,
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "source-imgref", Required: true, Usage: "the image to install (docker://, oci:, oci-archive:, containers-storage:, or ostree-…:)"},
				&cli.StringFlag{Name: "target-imgref", Usage: "the image the installed host follows (default: the source)"},
				&cli.StringFlag{Name: "stateroot", Value: "default", Usage: "the stateroot (ostree \"os\") to deploy into"},
				&cli.StringSliceFlag{Name: "karg", Usage: "a kernel argument for the boot entry (repeatable)"},
				enforceFlag(),
			},
			Action: runInstallToFilesystem,
		}, installToDiskCommand()},
	}
}

func runInstallToFilesystem(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "expected the ROOT directory as the one argument, got %d arguments", c.NArg())
	}
	root := c.Args().First()
	in, err := installArgs(c)
	if err != nil {
		return err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return usageError(c, "ROOT %s is not a directory: mount the target filesystem there first", root)
	}
	_, err = in.installInto(c, root, root, c.StringSlice("karg"))
	return err
}

// installSource is what both install verbs take from their flags.
type installSource struct {
	src, target imgref.OstreeRef
	stateroot   string
}

func installArgs(c *cli.Context) (*installSource, error) {
	src, err := imageArg(c, "--source-imgref", c.String("source-imgref"), imgref.Parse)
	if err != nil {
		return nil, err
	}
	target := src
	if t := c.String("target-imgref"); t != "" {
		if target, err = imageArg(c, "--target-imgref", t, imgref.Parse); err != nil {
			return nil, err
		}
	}
	stateroot := c.String("stateroot")
	if stateroot == "" || strings.ContainsAny(stateroot, "/ \t\n") || stateroot == "." || stateroot == ".." {
		return nil, usageError(c, "--stateroot %q: use a plain name such as default or fedora", stateroot)
	}
	return &installSource{src: src, target: target, stateroot: stateroot}, nil
}

// installInto creates a sysroot in the directory root and deploys the image into it, with
// kargs on its boot entry. where names the target in messages.
func (in *installSource) installInto(c *cli.Context, root, where string, kargs []string) (*sysroot.Deployment, error) {
	sys, err := sysroot.Init(c.Context, root)
	if err != nil {
		return nil, err
	}
	unlock, err := lockSysroot(c, sys)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := sys.Load(c.Context); err != nil {
		return nil, err
	}
	if n := len(sys.Deployments()); n > 0 {
		return nil, fmt.Errorf("%s already holds an installation (%d deployments): use 'bootc --sysroot %s switch IMAGE' to change its image, or install into an empty filesystem", root, n, root)
	}
	if err := sys.InitStateroot(in.stateroot); err != nil {
		return nil, err
	}
	h := &hostOp{c: c, sys: sys, unlock: func() {}, out: c.App.Writer}
	res, err := h.pull(c.Context, in.src)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h.out, "Pulled %s: %s\n", in.src.Image, pullSummary(res))
	d, err := h.deploy(c.Context, deployOptions{ref: in.target, commit: res.Image.Commit, stateroot: in.stateroot, kargs: kargs, noMerge: true})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(h.out, "Installed %s %s into %s (stateroot %s)\n", in.target.Image, describe(d, res.Image), where, in.stateroot)
	return d, nil
}
