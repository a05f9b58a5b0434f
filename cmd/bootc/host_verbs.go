package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
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
	arg := c.Args().First()
	if strings.HasPrefix(arg, "ostree-") && c.IsSet("transport") {
		return usageError(c, "%q already names its transport: leave out --transport", arg)
	}
	ref, err := imageArg(c, "IMAGE", arg, func(s string) (imgref.Ref, error) { return imgref.FromTransport(c.String("transport"), s) })
	if err != nil {
		return err
	}
	var opts []host.SwitchOption
	if c.Bool("retain") {
		opts = append(opts, host.Retain())
	}
	h, closeHost, err := openHost(c)
	if err != nil {
		return err
	}
	defer closeHost()
	res, err := h.Switch(c.Context, ref, opts...)
	if err != nil {
		return err
	}
	out := c.App.Writer
	if res.Unchanged {
		fmt.Fprintf(out, "Image specification is unchanged: already on %s\n", ref.Image)
		return nil
	}
	printDeployed(out, res.Deployed)
	fmt.Fprintf(out, "Deployed %s %s; it boots next\n", ref.Image, describe(res.Deployed.Deployment, res.Deployed.Image))
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
	h, closeHost, err := openHost(c)
	if err != nil {
		return err
	}
	defer closeHost()
	out := c.App.Writer
	if c.Bool("quiet") {
		out = io.Discard
	}
	if check {
		uc, err := h.CheckUpgrade(c.Context)
		if err != nil {
			return err
		}
		return printCheck(out, uc, asJSON)
	}
	mode := host.UpgradeDeploy
	if dlOnly {
		mode = host.UpgradeDownloadOnly
	} else if fromDl {
		mode = host.UpgradeFromDownloaded
	}
	res, err := h.Upgrade(c.Context, mode)
	if err != nil {
		return err
	}
	switch {
	case res.NoUpdate:
		fmt.Fprintf(out, "No update available: %s is at %s\n", res.Image.Image, describe(res.From, res.FromImage))
		return nil
	case res.Deployed == nil:
		fmt.Fprintf(out, "Downloaded %s; deploy it with 'bootc upgrade --from-downloaded'\n", versionOf(res.Next.Version, res.Next.Digest.String()))
		return nil
	}
	printDeployed(out, res.Deployed)
	fmt.Fprintf(out, "Upgraded %s from %s to %s; it boots next\n", res.Image.Image, describe(res.From, res.FromImage), describe(res.Deployed.Deployment, res.Next))
	return apply(c)
}

// printCheck renders what upgrade --check found.
func printCheck(out io.Writer, uc *host.UpdateCheck, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(uc)
	}
	if !uc.UpdateAvailable {
		fmt.Fprintf(out, "No changes in %s (%s)\n", uc.Ref.Image, uc.Available.Digest)
		return nil
	}
	fmt.Fprintf(out, "Update available for %s:\n", uc.Ref.Image)
	from := "(unknown)"
	if uc.Current != nil {
		from = uc.Current.Version
		fmt.Fprintf(out, "  Digest:   %s -> %s\n", uc.Current.Digest, uc.Available.Digest)
	} else {
		fmt.Fprintf(out, "  Digest:   %s\n", uc.Available.Digest)
	}
	if from != "" || uc.Available.Version != "" {
		fmt.Fprintf(out, "  Version:  %s -> %s\n", versionOf(from, "(none)"), versionOf(uc.Available.Version, "(none)"))
	}
	fmt.Fprintf(out, "  Download: %d of %d layers, %s of %s\n", uc.Download.Layers, uc.Total.Layers, humanBytes(uc.Download.Bytes), humanBytes(uc.Total.Bytes))
	return nil
}

// versionOf is "version V (ELSE)", or ELSE without a version; with ELSE "(none)", V or "(none)".
func versionOf(v, orElse string) string {
	switch {
	case v == "":
		return orElse
	case orElse == "(none)":
		return v
	}
	return "version " + v + " (" + orElse + ")"
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
	h, closeHost, err := openHost(c)
	if err != nil {
		return err
	}
	defer closeHost()
	res, err := h.Rollback(c.Context)
	if err != nil {
		return err
	}
	name := res.Deployment.Dir()
	if ref, ok := host.OriginImage(res.Deployment); ok {
		name = ref.Image.String()
	}
	why := "the rollback deployment is now the default"
	if res.UndoPending {
		why = "the booted deployment is the default again; the one ahead of it stays as the rollback"
	}
	fmt.Fprintf(c.App.Writer, "Next boot: %s %s (%s)\n", name, describe(res.Deployment, res.Image), why)
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
			Flags:  installFlags("a kernel argument for the boot entry (repeatable)"),
			Action: runInstallToFilesystem,
		}, installToDiskCommand()},
	}
}

// installFlags are the flags both install verbs take.
func installFlags(kargUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "source-imgref", Required: true, Usage: "the image to install (docker://, oci:, oci-archive:, containers-storage:, or ostree-…:)"},
		&cli.StringFlag{Name: "target-imgref", Usage: "the image the installed host follows (default: the source)"},
		&cli.StringFlag{Name: "stateroot", Value: "default", Usage: "the stateroot (ostree \"os\") to deploy into"},
		&cli.StringSliceFlag{Name: "karg", Usage: kargUsage},
		enforceFlag(),
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
	opts, done := hostOptions(c)
	res, err := host.InstallToFilesystem(c.Context, root, in, opts...)
	done()
	if err != nil {
		return err
	}
	printInstalled(c.App.Writer, res, root)
	return nil
}

// installArgs reads what both install verbs take from their flags.
func installArgs(c *cli.Context) (host.Install, error) {
	src, err := imageArg(c, "--source-imgref", c.String("source-imgref"), imgref.Parse)
	if err != nil {
		return host.Install{}, err
	}
	in := host.Install{Source: src, Stateroot: c.String("stateroot"), Kargs: c.StringSlice("karg")}
	if t := c.String("target-imgref"); t != "" {
		target, err := imageArg(c, "--target-imgref", t, imgref.Parse)
		if err != nil {
			return host.Install{}, err
		}
		in.Target = &target
	}
	if s := in.Stateroot; s == "" || strings.ContainsAny(s, "/ \t\n") || s == "." || s == ".." {
		return host.Install{}, usageError(c, "--stateroot %q: use a plain name such as default or fedora", s)
	}
	return in, nil
}

// printInstalled says what an install did; where names the target.
func printInstalled(w io.Writer, res *host.InstallResult, where string) {
	printDeployed(w, res.Deployed)
	fmt.Fprintf(w, "Installed %s %s into %s (stateroot %s)\n", res.Target.Image, describe(res.Deployed.Deployment, res.Pulled.State), where, res.Stateroot)
}
