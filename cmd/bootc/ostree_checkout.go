package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeCheckoutCommand() *cli.Command {
	return repoCommand{
		Command: cli.Command{
			Name:        "checkout",
			Usage:       "check out a commit into a directory",
			ArgsUsage:   "REF DEST",
			Description: help("ostree-checkout"),
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "union", Usage: "check out over an existing DEST, replacing files"},
				&cli.BoolFlag{Name: "whiteouts", Usage: "process container whiteouts (.wh.NAME, .wh..wh..opq)"},
				&cli.BoolFlag{Name: "user-mode", Aliases: []string{"U"}, Usage: "ignore owners and xattrs, drop setuid/setgid"},
				&cli.BoolFlag{Name: "force-copy", Aliases: []string{"C"}, Usage: "copy files instead of hardlinking them"},
			},
		},
		minArgs: 2, maxArgs: 2, argsError: "checkout takes REF and DEST",
		run: func(c *cli.Context, repo *ostree.Repo, _ bool) error {
			opts := boolOptions(c, map[string]ostree.CheckoutOption{
				"union": ostree.WithUnion(), "whiteouts": ostree.WithWhiteouts(), "user-mode": ostree.WithUserMode(), "force-copy": ostree.WithForceCopy(),
			})
			if err := repo.Checkout(c.Context, c.Args().Get(0), c.Args().Get(1), opts...); err != nil {
				return fmt.Errorf("checkout: %w", err)
			}
			return nil
		},
	}.command()
}
