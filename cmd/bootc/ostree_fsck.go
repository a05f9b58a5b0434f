package main

import (
	"encoding/json"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeFsckCommand() *cli.Command {
	return &cli.Command{
		Name:  "fsck",
		Usage: "check that every object is present and intact",
		Description: `Rehashes every object reachable from the refs and every commit object, and names
each one that is missing or corrupt, with where it was reached from. Exits 1 if
it finds a problem.

Examples:
   bootc ostree fsck --repo repo
   bootc ostree fsck --repo repo --format json | jq '.problems[].object'`,
		Flags: []cli.Flag{repoFlag(), formatFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(c, "fsck takes no arguments")
			}
			asJSON, err := checkFormat(c)
			if err != nil {
				return err
			}
			repo, err := ostree.Open(c.Context, c.String("repo"))
			if err != nil {
				return err
			}
			rep, err := repo.Fsck(c.Context)
			if err != nil {
				return fmt.Errorf("fsck: %w", err)
			}
			w := c.App.Writer
			if asJSON {
				type problemJSON struct {
					Object string `json:"object"`
					Path   string `json:"path,omitempty"`
					Error  string `json:"error"`
				}
				out := struct {
					Commits  int           `json:"commits"`
					DirTrees int           `json:"dirtrees"`
					DirMetas int           `json:"dirmetas"`
					Files    int           `json:"files"`
					Problems []problemJSON `json:"problems"`
				}{rep.Commits, rep.DirTrees, rep.DirMetas, rep.Files, []problemJSON{}}
				for _, p := range rep.Problems {
					out.Problems = append(out.Problems, problemJSON{p.Object.String(), p.Path, p.Err.Error()})
				}
				if err := json.NewEncoder(w).Encode(out); err != nil {
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
		},
	}
}
