package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeInitCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create an OSTree repository",
		Description: `Creates the repository directory (and its parents) with the layout 'ostree init'
writes. Initializing an existing repository of the same mode does nothing.

Modes: bare (real owners and modes; needs root), bare-user (metadata in the
user.ostreemeta xattr; any user), archive (compressed; for serving over HTTP).

Examples:
   bootc ostree init --repo /srv/repo --mode archive
   OSTREE_REPO=repo bootc ostree init --mode bare-user`,
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
