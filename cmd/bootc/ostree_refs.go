package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeRefsCommand() *cli.Command {
	return repoCommand{
		Command: cli.Command{
			Name:        "refs",
			Usage:       "list, create or delete refs",
			Description: help("ostree-refs"),
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "create", Usage: "create ref NEWREF pointing at the commit given as argument", Aliases: []string{"c"}},
				&cli.BoolFlag{Name: "delete", Usage: "delete the refs given as arguments"},
			},
		},
		json: true, maxArgs: -1,
		run: runOstreeRefs,
	}.command()
}

func runOstreeRefs(c *cli.Context, repo *ostree.Repo, asJSON bool) error {
	switch {
	case c.String("create") != "":
		if c.NArg() != 1 {
			return usageError(c, "--create NEWREF takes the target commit (checksum or ref) as its one argument")
		}
		target, err := repo.ResolveRev(c.Args().First())
		if err != nil {
			return err
		}
		return repo.SetRef(c.String("create"), target)
	case c.Bool("delete"):
		if c.NArg() == 0 {
			return usageError(c, "--delete takes the refs to delete as arguments")
		}
		for _, ref := range c.Args().Slice() {
			if err := repo.DeleteRef(ref); err != nil {
				return err
			}
		}
		return nil
	}
	refs, err := repo.ListRefs()
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(c.App.Writer).Encode(append([]ostree.Ref{}, refs...))
	}
	for _, r := range refs {
		fmt.Fprintln(c.App.Writer, r.Name)
	}
	return nil
}
