package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/logline"
	"github.com/bootc-go/bootc/pkg/firstboot"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/ignition"
)

// internalsCommand is the hidden `bootc internals`: what the units of dist/systemd run. Their
// warnings and the health checks' output go to stderr, into the journal.
func internalsCommand() *cli.Command {
	return &cli.Command{Name: "internals", Hidden: true, Subcommands: []*cli.Command{{Name: "finalize-staged", Action: func(c *cli.Context) error {
		opts, done := hostOptions(c)
		res, err := host.FinalizeStaged(c.Context, c.String("sysroot"), opts...)
		if done(); err == nil && res.Deployment != nil {
			fmt.Fprintf(c.App.Writer, "Staged deployment %s: finalized %v (finalization locked: %v)\n", res.Deployment.Dir(), !res.Locked, res.Locked)
		}
		return hostError(c, err)
	}}, {Name: "health-check", Action: func(c *cli.Context) error {
		opts, _ := hostOptions(c)
		_, err := host.HealthCheck(c.Context, c.String("sysroot"), append(opts, host.WithLogger(logline.New(c.App.ErrWriter)))...)
		return err
	}}, {Name: "mark-boot-good", Action: func(c *cli.Context) error {
		_, err := onHost(c, func(h *host.Host) (bool, error) { return h.MarkBootGood(c.Context) })
		return err
	}}, {Name: "check-fallback", Action: func(c *cli.Context) error {
		_, err := onHost(c, func(h *host.Host) (*host.FailedUpdate, error) { return h.CheckFallback(c.Context) })
		return err
	}}, ostreeContainerCommand(), ignitionFirstBootCommand(), ignitionCheckCommand()}}
}

// firstBootFlags: the tree provisioned (its /var holds the records) and the config's file.
func firstBootFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "root", Value: "/", Usage: "provision the tree at `DIR` (its /var is DIR/var)"},
		&cli.StringFlag{Name: "config", Value: firstboot.DefaultConfigPath, Usage: "read the Ignition config from `FILE`"},
	}
}

func firstBootOptions(c *cli.Context) []firstboot.Option {
	root := c.String("root")
	return []firstboot.Option{firstboot.WithTarget(ignition.Target{Root: root, Var: filepath.Join(root, "var")}),
		firstboot.WithConfigPath(c.String("config")), firstboot.WithLogger(logline.New(c.App.ErrWriter))}
}

// ignitionFirstBootCommand is bootc-ignition-firstboot.service's: provision from the fw_cfg
// Ignition config once, and say in one line what happened.
func ignitionFirstBootCommand() *cli.Command {
	return &cli.Command{Name: "ignition-firstboot", Flags: firstBootFlags(), Action: func(c *cli.Context) error {
		res, err := firstboot.FirstBoot(c.Context, firstBootOptions(c)...)
		if err != nil {
			return err
		}
		r := res.Record
		switch {
		case res.AlreadyDone:
			fmt.Fprintf(c.App.Writer, "Already provisioned at %s (%s)\n", r.Timestamp, r.Outcome)
		case r.Outcome == firstboot.NoConfig:
			fmt.Fprintln(c.App.Writer, "No Ignition config: nothing to apply")
		default:
			fmt.Fprintf(c.App.Writer, "Applied the Ignition config %s: %d files written, users: %s, groups: %s, units started: %s\n",
				r.ConfigDigest, len(r.Written), namesOrNone(r.Users), namesOrNone(r.Groups), namesOrNone(r.Started))
		}
		return nil
	}}
}

// ignitionCheckCommand is the health check required.d/50-ignition-firstboot: it fails when the
// first-boot provisioning failed in this boot.
func ignitionCheckCommand() *cli.Command {
	return &cli.Command{Name: "ignition-firstboot-check", Flags: firstBootFlags(), Action: func(c *cli.Context) error {
		_, err := firstboot.Check(c.Context, firstBootOptions(c)...)
		return err
	}}
}

func namesOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}
