package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeFsckCommand() *cli.Command {
	return repoCommand{
		Command: cli.Command{
			Name:        "fsck",
			Usage:       "check that every object is present and intact",
			Description: help("ostree-fsck"),
		},
		json: true, argsError: "fsck takes no arguments",
		run: runOstreeFsck,
	}.command()
}

func runOstreeFsck(c *cli.Context, repo *ostree.Repo, asJSON bool) error {
	rep, err := repo.Fsck(c.Context)
	if err != nil {
		return fmt.Errorf("fsck: %w", err)
	}
	w := c.App.Writer
	if asJSON {
		if err := json.NewEncoder(w).Encode(rep); err != nil {
			return err
		}
	} else {
		for _, p := range rep.Problems {
			fmt.Fprintf(w, "error: %s\n", p)
		}
		fmt.Fprintf(w, "checked %d commits, %d dirtrees, %d dirmetas, %d files: %d problems\n",
			rep.Commits, rep.DirTrees, rep.DirMetas, rep.Files, len(rep.Problems))
	}
	if len(rep.Problems) > 0 {
		return &exitError{code: 1, err: fmt.Errorf("fsck found %d problems in %s", len(rep.Problems), repo.Path())}
	}
	return nil
}
