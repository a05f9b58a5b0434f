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
		Name:        "switch",
		Usage:       "deploy another image and follow it from now on",
		ArgsUsage:   "IMAGE",
		Description: help("switch"),
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
		Name:        "upgrade",
		Aliases:     []string{"update"},
		Usage:       "deploy the newest version of the image the host follows",
		Description: help("upgrade"),
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
		Name:        "rollback",
		Usage:       "make the previous deployment the default boot entry",
		Description: help("rollback"),
		Flags:       []cli.Flag{applyFlag()},
		Action:      runRollback,
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
		Name:        "install",
		Usage:       "install a bootable image onto a target",
		Description: help("install"),
		Subcommands: []*cli.Command{{
			Name:        "to-filesystem",
			Usage:       "install into a mounted root filesystem (or any directory)",
			ArgsUsage:   "ROOT",
			Description: help("install-to-filesystem"),
			Flags:       installFlags("a kernel argument for the boot entry (repeatable)"),
			Action:      runInstallToFilesystem,
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
