package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/lint"
)

func containerCommand() *cli.Command {
	lint := cliargs.WithArgs(0, 0, "no arguments (the root filesystem is --rootfs)", runContainerLint)
	return &cli.Command{Name: "container", Subcommands: []*cli.Command{{Name: "lint", Action: lint, Flags: []cli.Flag{
		&cli.StringFlag{Name: "rootfs", Value: "/", Usage: "the root filesystem to lint"},
		&cli.BoolFlag{Name: "fatal-warnings", Usage: "fail on warnings too"},
		&cli.StringSliceFlag{Name: "skip", Usage: "skip the named lint (repeatable)"},
		&cli.BoolFlag{Name: "list", Usage: "list the lints (YAML, or JSON with --format json) and exit"},
		&cli.BoolFlag{Name: "no-truncate", Usage: "name every offending path, not only the first few"},
		formatFlag(),
	}}}}
}

func runContainerLint(c *cli.Context) error {
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
		return cliargs.Errorf(c, "--skip: %v", err)
	} else if err != nil {
		return err
	}
	if format == "json" {
		err = writeData(c.App.Writer, format, rep)
	} else {
		_, err = io.WriteString(c.App.Writer, rep.Text())
	}
	if n := rep.Failures(c.Bool("fatal-warnings")); err == nil && n > 0 {
		err = fmt.Errorf("Checks failed: %d", n)
	}
	return err
}
