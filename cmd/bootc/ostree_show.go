package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeShowCommand() *cli.Command {
	return repoCommand{
		Command: cli.Command{
			Name:        "show",
			Usage:       "show a commit",
			ArgsUsage:   "REF",
			Description: help("ostree-show"),
		},
		json: true, minArgs: 1, maxArgs: 1, argsError: "show takes one REF",
		run: runOstreeShow,
	}.command()
}

func runOstreeShow(c *cli.Context, repo *ostree.Repo, asJSON bool) error {
	info, err := repo.ShowCommit(c.Args().First())
	if err != nil {
		return err
	}
	w := c.App.Writer
	if asJSON {
		return writeJSON(w, info)
	}
	fmt.Fprintf(w, "commit %s\n", info.Checksum)
	if !info.Parent.IsZero() {
		fmt.Fprintf(w, "Parent:  %s\n", info.Parent)
	}
	fmt.Fprintf(w, "ContentChecksum:  %s\n", info.ContentChecksum)
	fmt.Fprintf(w, "Date:  %s\n", info.Timestamp.Format("2006-01-02 15:04:05 -0700"))
	if info.Version != "" {
		fmt.Fprintf(w, "Version: %s\n", info.Version)
	}
	fmt.Fprintf(w, "\n    %s\n\n", info.Subject)
	if info.Body != "" {
		fmt.Fprintf(w, "    %s\n\n", strings.ReplaceAll(info.Body, "\n", "\n    "))
	}
	return nil
}
