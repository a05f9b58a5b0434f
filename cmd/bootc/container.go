package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/lint"
)

func containerCommand() *cli.Command {
	return &cli.Command{Name: "container", Subcommands: []*cli.Command{{Name: "lint", Action: runContainerLint, Flags: []cli.Flag{
		&cli.StringFlag{Name: "rootfs", Value: "/", Usage: "the root filesystem to lint"},
		&cli.BoolFlag{Name: "fatal-warnings", Usage: "fail on warnings too"},
		&cli.StringSliceFlag{Name: "skip", Usage: "skip the named lint (repeatable)"},
		&cli.BoolFlag{Name: "list", Usage: "list the lints (YAML, or JSON with --format json) and exit"},
		&cli.BoolFlag{Name: "no-truncate", Usage: "name every offending path, not only the first few"},
		formatFlag(),
	}}}}
}

func runContainerLint(c *cli.Context) error {
	if err := nargs(c, 0, 0, "no arguments (the root filesystem is --rootfs)"); err != nil {
		return err
	}
	format, err := outputFormat(c, "json")
	if err != nil {
		return err
	}
	if c.Bool("list") {
		return writeData(c.App.Writer, map[string]string{"text": "yaml", "json": "json"}[format], lint.Lints())
	}
	opts := append(boolOptions(c, map[string]lint.Option{"no-truncate": lint.WithNoTruncate()}), lint.WithSkip(c.StringSlice("skip")...))
	rep, err := lint.Run(c.Context, c.String("rootfs"), opts...)
	if errors.Is(err, lint.ErrUnknownLint) {
		return usageError(c, "--skip: %v", err)
	} else if err != nil {
		return err
	}
	if format == "json" {
		if err := writeData(c.App.Writer, format, rep); err != nil {
			return err
		}
	} else {
		writeLintReport(c.App.Writer, rep)
	}
	if n := rep.Failures(c.Bool("fatal-warnings")); n > 0 {
		return &exitError{code: 1, err: fmt.Errorf("Checks failed: %d", n)}
	}
	return nil
}

// writeLintReport prints the report as bootc does: the failures, then the counts.
func writeLintReport(w io.Writer, rep *lint.Report) {
	for _, r := range rep.Results {
		if r.Status != lint.Failed {
			continue
		}
		if r.Type == lint.Fatal.String() {
			fmt.Fprintf(w, "Failed lint: %s: %s\n", r.Name, r.Message)
		} else {
			fmt.Fprintf(w, "Lint warning: %s: %s\n", r.Name, r.Message)
		}
	}
	fmt.Fprintf(w, "Checks passed: %d\n", rep.Passed)
	if rep.Skipped > 0 {
		fmt.Fprintf(w, "Checks skipped: %d\n", rep.Skipped)
	}
	if rep.Warnings > 0 {
		fmt.Fprintf(w, "Warnings: %d\n", rep.Warnings)
	}
}
