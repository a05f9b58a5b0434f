package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// The host verbs (status, switch, upgrade, rollback, install) work on the sysroot named by
// the global --sysroot flag: "/" on a running system, or any directory holding one. Each turns
// its flags into one call of package host and renders the result.

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

// hostOptions gives package host the trust policy, the registry configuration and a renderer
// of its events: progress on stderr (a bar on a terminal, plain lines otherwise), and what was
// pulled on stdout once the pull is over (unless --quiet). done ends the progress line.
func hostOptions(c *cli.Context) (opts []host.Option, done func()) {
	w, out := c.App.ErrWriter, c.App.Writer
	if c.Bool("quiet") {
		out = io.Discard
	}
	p := newProgress(w)
	render := func(e host.Event) {
		switch e := e.(type) {
		case host.PullDone:
			p.done()
			printPulled(out, e.Pulled)
		case host.PullProgress:
			p.update("%s", pullLine(e.PullProgress, p.tty))
		case host.WaitingForLock:
			fmt.Fprintf(w, "Waiting for another bootc or ostree command to release the lock on %s\n", e.Path)
		case host.Verified:
			fmt.Fprintf(w, "Verified %s (%s) by the trust policy, scope %s\n", e.Image.Image, e.Digest, e.Scope)
		case host.Warning:
			p.done()
			fmt.Fprintf(w, "warning: %s: %v\n", e.What, e.Err)
		}
	}
	return []host.Option{
		host.WithPolicy(globalString(c, "signature-policy")),
		host.WithRegistries(registriesConfig(c, "")), // temporary data goes to ostree/repo/tmp
		host.WithProgress(render),
	}, p.done
}

// openHost opens and locks the sysroot for a verb (refusing --apply where it cannot work);
// closeHost releases it.
func openHost(c *cli.Context) (h *host.Host, closeHost func(), err error) {
	opts, done := hostOptions(c)
	if c.Bool("apply") {
		opts = append(opts, host.RequireLive())
	}
	h, err = host.Open(c.Context, sysrootPath(c), opts...)
	if err != nil {
		return nil, nil, hostError(c, err)
	}
	return h, func() { done(); h.Close() }, nil
}

// hostError turns "this is no sysroot" into advice, and --apply on a directory into a usage
// error.
func hostError(c *cli.Context, err error) error {
	switch {
	case errors.Is(err, sysroot.ErrNotSysroot):
		return fmt.Errorf("%w\nthis host was not installed by bootc (or ostree): install with 'bootc install to-filesystem --source-imgref IMAGE ROOT', or point --sysroot at a sysroot directory", err)
	case errors.Is(err, host.ErrNotLive):
		return usageError(c, "--apply reboots the running system, but %s is a sysroot directory, not the booted system: leave out --apply", sysrootPath(c))
	}
	return err
}

func pullLine(pr imagestore.PullProgress, tty bool) string {
	switch pr.Phase {
	case "merging", "committing":
		return fmt.Sprintf("%s%s image layers (%d/%d layers fetched)", strings.ToUpper(pr.Phase[:1]), pr.Phase[1:], pr.LayersDone, pr.Layers)
	}
	line := fmt.Sprintf("Fetching layers %d/%d  %s / %s", pr.LayersDone, pr.Layers, humanBytes(pr.BytesDone), humanBytes(pr.Bytes))
	if tty && pr.Bytes > 0 {
		frac := min(max(float64(pr.BytesDone)/float64(pr.Bytes), 0), 1)
		n := int(frac * 30)
		bar := strings.Repeat("=", n)
		if n < 30 {
			bar += ">" + strings.Repeat(" ", 30-n-1)
		}
		line = "[" + bar + "] " + line
	}
	return line
}

// printPulled says what a pull fetched.
func printPulled(w io.Writer, p *host.Pulled) {
	s := fmt.Sprintf("fetched %d layers (%s), reused %d", p.LayersFetched, humanBytes(p.BytesFetched), p.LayersReused)
	if p.LayersFetched == 0 {
		s = fmt.Sprintf("all %d layers were already present", p.LayersReused)
	}
	fmt.Fprintf(w, "Pulled %s: %s\n", p.Image.Image, s)
}

// printDeployed says what deploying did to /etc and /var.
func printDeployed(w io.Writer, d *host.Deployed) {
	if d.EtcModified+d.EtcAdded+d.EtcRemoved > 0 {
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
	cmd := exec.CommandContext(c.Context, "systemctl", "reboot")
	cmd.Stdout, cmd.Stderr = c.App.Writer, c.App.ErrWriter
	return cmd.Run()
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
		return ref, usageError(c, "%s: %v", what, err)
	}
	return ref, nil
}
