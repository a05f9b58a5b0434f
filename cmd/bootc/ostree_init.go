package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeInitCommand() *cli.Command {
	return &cli.Command{
		Name:        "init",
		Usage:       "create an OSTree repository",
		Description: help("ostree-init"),
		Flags: []cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "mode", Value: "bare", Usage: "bare, bare-user or archive (archive-z2)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(c, "init takes no arguments")
			}
			mode, err := ostree.ParseRepoMode(c.String("mode"))
			if err != nil {
				return usageError(c, "%v", err)
			}
			if _, err := ostree.Init(c.Context, c.String("repo"), mode); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			return nil
		},
	}
}
