package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/logline"
	"github.com/bootc-go/bootc/pkg/host"
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
	}}, ostreeContainerCommand()}}
}
