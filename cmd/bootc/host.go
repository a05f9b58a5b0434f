package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sysroot"
	"github.com/bootc-go/bootc/pkg/transport"
)

// The host verbs (status, switch, upgrade, rollback, install) work on the sysroot named by
// the global --sysroot flag: "/" on a running system, or any directory holding one. Each turns
// its flags into one call of package host and renders the result.

// globalFlags are accepted before or after the command: the sysroot, the trust policy and the
// registry configuration (read by every command that reaches a registry, as skopeo takes them).
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "sysroot", Value: "/", EnvVars: []string{"BOOTC_SYSROOT"}, Usage: "the physical root holding ostree/repo and /boot (a directory for offline work)"},
		&cli.StringFlag{Name: "signature-policy", Usage: "the containers-policy.json that says which images to trust (default /etc/containers/policy.json)"},
		&cli.StringFlag{Name: "registries-d", Usage: "the registries.d directory that says where signatures are stored (default the system's)"},
		&cli.StringFlag{Name: "registries-conf", EnvVars: []string{"CONTAINERS_REGISTRIES_CONF"}, Usage: "a registries.conf (mirrors, blocked and insecure registries) to use instead of /etc/containers/registries.conf"},
		&cli.StringFlag{Name: "authfile", EnvVars: []string{"REGISTRY_AUTH_FILE"}, Usage: "the auth.json with registry credentials (default: containers' lookup)"},
		&cli.StringFlag{Name: "cert-dir", Usage: "a certs.d-style directory of registry certificates (default /etc/containers/certs.d)"},
	}
}

// registriesConfig is the registry configuration the global flags give; temporary data goes to
// the system temp directory (host verbs: ostree/repo/tmp).
func registriesConfig(c *cli.Context) transport.Registries {
	return transport.Registries{ConfPath: c.String("registries-conf"), AuthFile: c.String("authfile"), CertDir: c.String("cert-dir"), RegistriesDir: c.String("registries-d")}
}

// hostOptions gives package host the trust policy, the registry configuration and a renderer
// of its events: progress on stderr (a bar on a terminal, plain lines otherwise), and what was
// pulled once the pull is over. --quiet leaves only errors and the final result. done ends the
// progress line.
func hostOptions(c *cli.Context) (opts []host.Option, done func()) {
	p := newProgress(c.App.ErrWriter, c.Bool("quiet"))
	// Standard output is the result's: with --format json or yaml, the pull summary goes to
	// standard error with the progress.
	summary := c.App.Writer
	if f := c.String("format"); f == "json" || f == "yaml" {
		summary = c.App.ErrWriter
	}
	render := func(e host.Event) {
		switch e := e.(type) {
		case host.PullDone:
			if p.done(); !p.quiet {
				printPulled(summary, e.Pulled)
			}
		case host.PullProgress:
			p.update("%s", pullLine(e.PullProgress, p.tty))
		case host.WaitingForLock:
			fmt.Fprintf(p, "Waiting for another bootc or ostree command to release the lock on %s\n", e.Path)
		case host.Verified:
			fmt.Fprintf(p, "Verified %s (%s) by the trust policy, scope %s\n", e.Image.Image, e.Digest, e.Scope)
		case host.Warning:
			p.done()
			fmt.Fprintf(c.App.ErrWriter, "warning: %s: %v\n", e.What, e.Err)
		}
	}
	opts = []host.Option{host.WithPolicy(c.String("signature-policy")), host.WithRegistries(registriesConfig(c)), host.WithProgress(render)}
	// BOOTC_LOG=debug (or info, warn) writes the library's logs to standard error.
	var level slog.Level
	if v := os.Getenv("BOOTC_LOG"); v != "" && level.UnmarshalText([]byte(v)) == nil {
		opts = append(opts, host.WithLogger(slog.New(slog.NewTextHandler(c.App.ErrWriter, &slog.HandlerOptions{Level: level}))))
	}
	return opts, p.done
}

// onHost opens and locks the sysroot (refusing --apply where it cannot work), runs verb on it and
// releases it, ending the progress line before the caller prints the result.
func onHost[T any](c *cli.Context, verb func(*host.Host) (T, error)) (res T, err error) {
	opts, done := hostOptions(c)
	if c.Bool("apply") {
		opts = append(opts, host.RequireLive())
	}
	h, err := host.Open(c.Context, c.String("sysroot"), opts...)
	if err != nil {
		return res, hostError(c, err)
	}
	defer h.Close()
	defer done()
	return verb(h)
}

// hostError turns "this is no sysroot" into advice, and --apply on a directory into a usage
// error.
func hostError(c *cli.Context, err error) error {
	switch {
	case errors.Is(err, sysroot.ErrNotSysroot):
		return fmt.Errorf("%w\nthis host was not installed by bootc (or ostree): install with 'bootc install to-filesystem --source-imgref IMAGE ROOT', or point --sysroot at a sysroot directory", err)
	case errors.Is(err, host.ErrNotLive):
		return cliargs.Errorf(c, "--apply reboots the running system, but %s is a sysroot directory, not the booted system: leave out --apply", c.String("sysroot"))
	}
	return err
}

func pullLine(pr imagestore.PullProgress, tty bool) string {
	switch pr.Phase {
	case "merging", "committing":
		return fmt.Sprintf("%s%s image layers (%d/%d layers fetched)", strings.ToUpper(pr.Phase[:1]), pr.Phase[1:], pr.LayersDone, pr.Layers)
	}
	line := fmt.Sprintf("Fetching layers %d/%d  %s / %s", pr.LayersDone, pr.Layers, units.BytesSize(float64(pr.BytesDone)), units.BytesSize(float64(pr.Bytes)))
	if tty && pr.Bytes > 0 {
		n := int(min(max(float64(pr.BytesDone)/float64(pr.Bytes), 0), 1) * 30)
		line = "[" + (strings.Repeat("=", n) + ">" + strings.Repeat(" ", 30))[:30] + "] " + line
	}
	return line
}

// printPulled says what a pull fetched.
func printPulled(w io.Writer, p *host.Pulled) {
	s := fmt.Sprintf("fetched %d layers (%s), reused %d", p.LayersFetched, units.BytesSize(float64(p.BytesFetched)), p.LayersReused)
	if p.LayersPartial > 0 {
		s = fmt.Sprintf("fetched %d layers (%s; %d of them only the files missing), reused %d", p.LayersFetched, units.BytesSize(float64(p.BytesFetched)), p.LayersPartial, p.LayersReused)
	}
	if p.LayersFetched == 0 {
		s = fmt.Sprintf("all %d layers were already present", p.LayersReused)
	}
	fmt.Fprintf(w, "Pulled %s: %s\n", p.Image.Image, s)
}

// printDeployed says what deploying did to /etc and /var.
func printDeployed(w io.Writer, d *host.Deployed) {
	if d.Staged {
		fmt.Fprintln(w, "Staged: local /etc changes are carried over when the system shuts down")
	} else if d.EtcModified+d.EtcAdded+d.EtcRemoved > 0 {
		fmt.Fprintf(w, "Carried over local /etc changes: %d modified, %d added, %d removed\n", d.EtcModified, d.EtcAdded, d.EtcRemoved)
	}
	if d.VarSeeded {
		fmt.Fprintf(w, "Seeded /var from the image\n")
	}
}

func describe(d *sysroot.Deployment, state *imagestore.ImageState) string {
	s := fmt.Sprintf("%s.%d", d.Commit.String()[:12], d.Serial)
	if state != nil && state.Version != "" {
		s = "version " + state.Version + " (" + s + ")"
	}
	return s
}

// applyFlag is --apply: reboot into the new deployment.
func applyFlag() cli.Flag {
	return &cli.BoolFlag{Name: "apply", Usage: "reboot into the new deployment when done (only on the running system)"}
}

func apply(c *cli.Context) error {
	if !c.Bool("apply") {
		return nil
	}
	fmt.Fprintln(c.App.Writer, "Rebooting")
	return host.Reboot(c.Context)
}

// enforceFlag is --enforce-container-sigpolicy.
func enforceFlag() cli.Flag {
	return &cli.BoolFlag{Name: "enforce-container-sigpolicy", Usage: "deploy the image only if the trust policy (--signature-policy) accepts it, and keep checking on upgrades"}
}

// imageArg parses an image given on the command line (host.ParseImage); with
// --enforce-container-sigpolicy it must pass the trust policy.
func imageArg(c *cli.Context, what, s string, parse func(string) (imgref.Ref, error)) (imgref.OstreeRef, error) {
	ref, err := host.ParseImage(s, parse, c.Bool("enforce-container-sigpolicy"))
	if err != nil {
		return ref, cliargs.Errorf(c, "%s: %v", what, err)
	}
	return ref, nil
}

// hostCommands are the verbs on the sysroot; their help is in help/NAME.txt.
func hostCommands() []*cli.Command {
	return []*cli.Command{
		{Name: "status", Action: runStatus, Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "humanreadable (or text), yaml or json (default: humanreadable on a terminal, yaml otherwise)"},
			&cli.StringFlag{Name: "format-version", Value: "1", Usage: "schema version: 0 and 1 are the same"},
			&cli.BoolFlag{Name: "booted", Usage: "only the booted deployment"},
			&cli.BoolFlag{Name: "json", Hidden: true, Usage: "the same as --format json"},
		}},
		{Name: "switch", ArgsUsage: "IMAGE", Action: cliargs.WithArgs(1, 1, "one IMAGE argument", runSwitch), Flags: []cli.Flag{
			&cli.StringFlag{Name: "transport", Value: "registry", Usage: "where IMAGE is: registry, oci, oci-archive or containers-storage"},
			&cli.BoolFlag{Name: "keep-deployments", Usage: "keep all existing deployments instead of only the booted one and one rollback"},
			&cli.BoolFlag{Name: "retain", Hidden: true, Usage: "deprecated: the old name of --keep-deployments"},
			enforceFlag(), applyFlag(), quietFlag(),
		}},
		{Name: "upgrade", Aliases: []string{"update"}, Action: cliargs.WithArgs(0, 0, "no arguments (to change images, use 'bootc switch IMAGE')", runUpgrade), Flags: []cli.Flag{
			&cli.BoolFlag{Name: "check", Usage: "only say whether an update is available and what it would download"},
			&cli.BoolFlag{Name: "download-only", Usage: "pull the update but do not deploy it"},
			&cli.BoolFlag{Name: "from-downloaded", Usage: "deploy the update pulled earlier by --download-only, without network access"},
			&cli.StringFlag{Name: "format", Value: "text", Usage: "with --check: text (or humanreadable) or json"},
			applyFlag(), quietFlag(),
		}},
		{Name: "rollback", Action: cliargs.WithArgs(0, 0, "no arguments", runRollback), Flags: []cli.Flag{applyFlag()}},
	}
}

func runStatus(c *cli.Context) error {
	format, err := statusFormat(c)
	if err != nil {
		return err
	}
	st, err := host.Status(c.Context, c.String("sysroot"))
	if errors.Is(err, sysroot.ErrNotSysroot) {
		st, err = host.NotInstalled(), nil
	} else if err != nil {
		return hostError(c, err)
	}
	if c.Bool("booted") {
		st = st.BootedOnly()
	}
	if format != "text" {
		return writeData(c.App.Writer, format, st)
	}
	printStatus(c.App.Writer, st)
	return nil
}

// statusFormat reads --format (and the hidden --json), defaulting by whether stdout is a terminal.
func statusFormat(c *cli.Context) (string, error) {
	if v := c.String("format-version"); v != "0" && v != "1" {
		return "", cliargs.Errorf(c, "unknown --format-version %q: use 0 or 1", v)
	}
	if c.Bool("json") {
		if f := c.String("format"); f != "" && f != "json" {
			return "", cliargs.Errorf(c, "--json and --format %s contradict each other", f)
		}
		return "json", nil
	}
	if c.String("format") == "" {
		if f, ok := c.App.Writer.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return "text", nil
		}
		return "yaml", nil
	}
	return outputFormat(c, "yaml", "json")
}

// printStatus writes the human-readable form: one block per deployment, in boot order.
func printStatus(w io.Writer, st *host.BootcHost) {
	titles := map[host.Role]string{host.RoleStaged: "Staged image", host.RoleBooted: "Booted image", host.RoleRollback: "Rollback image", host.RoleOther: "Other deployment"}
	if st.Status.RollbackQueued {
		titles[host.RoleRollback] = "Rollback image (queued: boots next)"
	}
	rows := st.Entries()
	if len(rows) == 0 {
		fmt.Fprintln(w, "No deployments: this system was not installed by bootc. Install one with 'bootc install to-filesystem --source-imgref IMAGE ROOT'.")
		return
	}
	for i, r := range rows {
		if i > 0 {
			fmt.Fprintln(w)
		}
		mark := " "
		if r.BootEntry == st.Status.Booted {
			mark = "●"
		}
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		fmt.Fprintf(tw, "%s %s:\t%s\n", mark, titles[r.Role], displayImage(r.Image))
		if r.Image != nil {
			for _, f := range [][2]string{{"Version", deref(r.Image.Version)}, {"Built", deref(r.Image.Timestamp)}, {"Digest", r.Image.ImageDigest}} {
				if f[1] != "" {
					fmt.Fprintf(tw, "  %s:\t%s\n", f[0], f[1])
				}
			}
		}
		fmt.Fprintf(tw, "  Deployment:\t%s.%d (stateroot %s)\n", r.Ostree.Checksum, r.Ostree.DeploySerial, r.Ostree.Stateroot)
		if r.Pinned {
			fmt.Fprintf(tw, "  Pinned:\tyes\n")
		}
		if u := r.CachedUpdate; u != nil {
			fmt.Fprintf(tw, "  Downloaded update:\t%s%s (deploy it with 'bootc upgrade --from-downloaded')\n", u.ImageDigest, strings.TrimSuffix(" version "+deref(u.Version), " version "))
		}
		tw.Flush()
	}
	if f := st.Status.FailedUpdate; f != nil {
		fmt.Fprintf(w, "\nFailed update: %s, fell back at %s: %s (upgrades skip it)\n", versionOf(deref(f.Version), f.ImageDigest), f.Timestamp, f.Reason)
	}
	if a := st.Status.UpdateAgent; a != nil {
		fmt.Fprintf(w, "Update agent: %s\n", agentLine(a))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func displayImage(st *host.ImageStatus) string {
	if st == nil {
		return "(not a container image deployment)"
	}
	s := st.Image.Image
	if st.Image.Transport != string(imgref.Registry) {
		s = st.Image.Transport + ":" + s
	}
	if st.Image.Signature == nil || st.Image.Signature == "insecure" { // "insecure": older records
		s += " (signature not verified)"
	}
	return s
}

func runSwitch(c *cli.Context) error {
	arg := c.Args().First()
	if strings.HasPrefix(arg, "ostree-") && c.IsSet("transport") {
		return cliargs.Errorf(c, "%q already names its transport: leave out --transport", arg)
	}
	ref, err := imageArg(c, "IMAGE", arg, func(s string) (imgref.Ref, error) { return imgref.FromTransport(c.String("transport"), s) })
	if err != nil {
		return err
	}
	if c.Bool("retain") {
		fmt.Fprintln(c.App.ErrWriter, "note: --retain is deprecated (upstream bootc's --retain means something else): use --keep-deployments")
	}
	opts := boolOptions(c, map[string]host.SwitchOption{"keep-deployments": host.Retain(), "retain": host.Retain()})
	res, err := onHost(c, func(h *host.Host) (*host.SwitchResult, error) { return h.Switch(c.Context, ref, opts...) })
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

// upgradeMode checks the combination of upgrade's flags.
func upgradeMode(c *cli.Context) (host.UpgradeMode, error) {
	check, dlOnly, fromDl := c.Bool("check"), c.Bool("download-only"), c.Bool("from-downloaded")
	switch {
	case check && (dlOnly || fromDl || c.Bool("apply")):
		return 0, cliargs.Errorf(c, "--check only looks: it cannot be combined with --download-only, --from-downloaded or --apply")
	case dlOnly && fromDl:
		return 0, cliargs.Errorf(c, "--download-only and --from-downloaded are two steps: run them one after the other")
	case dlOnly && c.Bool("apply"):
		return 0, cliargs.Errorf(c, "--download-only deploys nothing, so there is nothing to --apply")
	case c.IsSet("format") && !check:
		return 0, cliargs.Errorf(c, "--format applies to --check only")
	case dlOnly:
		return host.UpgradeDownloadOnly, nil
	case fromDl:
		return host.UpgradeFromDownloaded, nil
	}
	return host.UpgradeDeploy, nil
}

func runUpgrade(c *cli.Context) error {
	mode, err := upgradeMode(c)
	if err != nil {
		return err
	}
	format, err := outputFormat(c, "json")
	if err != nil {
		return err
	}
	out := c.App.Writer
	if c.Bool("check") {
		uc, err := onHost(c, func(h *host.Host) (*host.UpdateCheck, error) { return h.CheckUpgrade(c.Context) })
		if err != nil {
			return err
		}
		return printCheck(out, uc, format)
	}
	res, err := onHost(c, func(h *host.Host) (*host.UpgradeResult, error) { return h.Upgrade(c.Context, mode) })
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
func printCheck(out io.Writer, uc *host.UpdateCheck, format string) error {
	if format != "text" {
		return writeData(out, format, uc)
	}
	if !uc.UpdateAvailable {
		fmt.Fprintf(out, "No changes in %s (%s)\n", uc.Ref.Image, uc.Available.Digest)
		return nil
	}
	fmt.Fprintf(out, "Update available for %s:\n", uc.Ref.Image)
	from, digest := "(unknown)", uc.Available.Digest
	if uc.Current != nil {
		from, digest = uc.Current.Version, uc.Current.Digest+" -> "+digest
	}
	fmt.Fprintf(out, "  Digest:   %s\n", digest)
	if from != "" || uc.Available.Version != "" {
		fmt.Fprintf(out, "  Version:  %s -> %s\n", versionOf(from, "(none)"), versionOf(uc.Available.Version, "(none)"))
	}
	fmt.Fprintf(out, "  Download: %d of %d layers, %s of %s\n", uc.Download.Layers, uc.Total.Layers, units.BytesSize(float64(uc.Download.Bytes)), units.BytesSize(float64(uc.Total.Bytes)))
	if f := uc.Files; f != nil {
		fmt.Fprintf(out, "  Files:    %d of the %d files of %d layers (only those are fetched)\n", f.Missing, f.Files, f.PartialLayers)
	}
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

func runRollback(c *cli.Context) error {
	res, err := onHost(c, func(h *host.Host) (*host.RollbackResult, error) { return h.Rollback(c.Context) })
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
	if res.Discarded != nil {
		fmt.Fprintf(c.App.Writer, "Discarded the staged deployment %s\n", describe(res.Discarded, nil))
	}
	fmt.Fprintf(c.App.Writer, "Next boot: %s %s (%s)\n", name, describe(res.Deployment, res.Image), why)
	return apply(c)
}
