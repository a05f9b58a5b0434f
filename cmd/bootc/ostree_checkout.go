package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeCheckoutCommand() *cli.Command {
	return &cli.Command{
		Name:      "checkout",
		Usage:     "check out a commit into a directory",
		ArgsUsage: "REF DEST",
		Description: `Writes the tree of REF (a ref, a remote:ref or a checksum, optionally followed
by ^ for its parent) to DEST. Files are hardlinked to the repository where its
mode allows (bare; bare-user with --user-mode) and copied otherwise.

Examples:
   bootc ostree checkout --repo repo os/x86_64 /var/tmp/rootfs
   bootc ostree checkout --repo repo --union --whiteouts layer2 /var/tmp/rootfs
   bootc ostree checkout --repo repo -U os/x86_64 ~/rootfs   # as a normal user`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "union", Usage: "check out over an existing DEST, replacing files"},
			&cli.BoolFlag{Name: "whiteouts", Usage: "process container whiteouts (.wh.NAME, .wh..wh..opq)"},
			&cli.BoolFlag{Name: "user-mode", Aliases: []string{"U"}, Usage: "ignore owners and xattrs, drop setuid/setgid"},
			&cli.BoolFlag{Name: "force-copy", Aliases: []string{"C"}, Usage: "copy files instead of hardlinking them"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "checkout takes REF and DEST")
			}
			var opts []ostree.CheckoutOption
			if c.Bool("union") {
				opts = append(opts, ostree.WithUnion())
			}
			if c.Bool("whiteouts") {
				opts = append(opts, ostree.WithWhiteouts())
			}
			if c.Bool("user-mode") {
				opts = append(opts, ostree.WithUserMode())
			}
			if c.Bool("force-copy") {
				opts = append(opts, ostree.WithForceCopy())
			}
			repo, err := ostree.Open(c.Context, c.String("repo"))
			if err != nil {
				return err
			}
			if err := repo.Checkout(c.Context, c.Args().Get(0), c.Args().Get(1), opts...); err != nil {
				return fmt.Errorf("checkout: %w", err)
			}
			return nil
		},
	}
}
