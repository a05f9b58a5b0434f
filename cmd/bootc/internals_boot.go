package main

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/host"
)

// internalsCommand is the hidden `bootc internals`: plumbing that units run.
func internalsCommand() *cli.Command {
	return &cli.Command{Name: "internals", Hidden: true, Subcommands: bootInternals()}
}

// bootInternals are the commands of the boot-counting units (dist/systemd); their warnings and
// the health checks' output go to stderr, into the journal.
func bootInternals() []*cli.Command {
	return []*cli.Command{{Name: "health-check", Action: func(c *cli.Context) error {
		opts, _ := hostOptions(c)
		_, err := host.HealthCheck(c.Context, c.String("sysroot"), append(opts, host.WithLogger(slog.New(lineHandler{w: c.App.ErrWriter})))...)
		return err
	}}, {Name: "mark-boot-good", Action: func(c *cli.Context) error {
		_, err := onHost(c, func(h *host.Host) (bool, error) { return h.MarkBootGood(c.Context) })
		return err
	}}, {Name: "check-fallback", Action: func(c *cli.Context) error {
		_, err := onHost(c, func(h *host.Host) (*host.FailedUpdate, error) { return h.CheckFallback(c.Context) })
		return err
	}}}
}
