package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeLsCommand() *cli.Command {
	return repoCommand{
		Command: cli.Command{
			Name:        "ls",
			Usage:       "list the files of a commit",
			ArgsUsage:   "REF [PATH...]",
			Description: help("ostree-ls"),
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "recursive", Aliases: []string{"R"}, Usage: "list directories recursively"},
				&cli.BoolFlag{Name: "checksum", Aliases: []string{"C"}, Usage: "print checksums"},
				&cli.BoolFlag{Name: "xattrs", Aliases: []string{"X"}, Usage: "print extended attributes"},
				&cli.BoolFlag{Name: "dironly", Aliases: []string{"d"}, Usage: "list a directory itself, not its contents"},
			},
		},
		minArgs: 1, maxArgs: -1, argsError: "ls takes REF and optional paths",
		run: runOstreeLs,
	}.command()
}

func runOstreeLs(c *cli.Context, repo *ostree.Repo, _ bool) error {
	commit, err := repo.ResolveRev(c.Args().First())
	if err != nil {
		return err
	}
	paths := c.Args().Tail()
	if len(paths) == 0 {
		paths = []string{"/"}
	}
	o := ostree.WalkOptions{Recursive: c.Bool("recursive"), DirOnly: c.Bool("dironly"), Headers: true}
	for _, p := range paths {
		err := repo.Walk(c.Context, commit, p, o, func(e *ostree.TreeEntry) error {
			_, err := fmt.Fprintln(c.App.Writer, e.LsLine(c.Bool("checksum"), c.Bool("xattrs")))
			return err
		})
		if err != nil {
			return fmt.Errorf("ls: %w", err)
		}
	}
	return nil
}
