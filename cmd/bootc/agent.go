package main

import (
	"cmp"
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/internal/logline"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/updateagent"
)

// bootc update-agent runs the update agent (package updateagent) on the --sysroot host:
// bootc-update-agent.service runs it as a daemon; --once makes one pass.

func agentCommand() *cli.Command {
	return &cli.Command{Name: "update-agent", Action: cliargs.WithArgs(0, 0, "no arguments", runAgent), Flags: []cli.Flag{
		&cli.BoolFlag{Name: "once", Usage: "check once, act on it, print the result and exit"},
		formatFlag(), quietFlag(),
	}}
}

func runAgent(c *cli.Context) error {
	format, err := outputFormat(c, "json")
	if err != nil {
		return err
	}
	if format == "json" && !c.Bool("once") {
		return cliargs.Errorf(c, "--format json prints the result of one pass: add --once")
	}
	hopts, done := hostOptions(c)
	defer done()
	log := logline.New(c.App.ErrWriter)
	if c.Bool("quiet") {
		log = slog.New(slog.DiscardHandler)
	}
	agent := updateagent.New(c.String("sysroot"), updateagent.WithLogger(log), updateagent.WithHostOptions(hopts...),
		updateagent.WithRegistries(registriesConfig(c)))
	if !c.Bool("once") {
		return hostError(c, agent.Run(c.Context))
	}
	res, err := agent.RunOnce(c.Context)
	if err != nil {
		return hostError(c, err)
	}
	if format == "json" {
		return writeData(c.App.Writer, format, res)
	}
	_, err = fmt.Fprintln(c.App.Writer, agentLine(&res.UpdateAgentStatus))
	return err
}

// agentLine is the agent's state in one line (also in `bootc status`).
func agentLine(a *host.UpdateAgentStatus) string {
	s := a.State
	if a.TargetVersion != "" {
		s += fmt.Sprintf(" (version %s -> %s)", cmp.Or(a.BootedVersion, "?"), a.TargetVersion)
	}
	for _, f := range [][2]string{{"next window", a.NextWindow}, {"reason", a.Reason}, {"strategy", a.Strategy}, {"checked", a.LastCheck}} {
		if f[1] != "" {
			s += "; " + f[0] + " " + f[1]
		}
	}
	if a.LockHeld {
		s += "; holds a FleetLock reboot slot"
	}
	return s
}
