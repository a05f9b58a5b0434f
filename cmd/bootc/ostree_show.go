package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/gvariant"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "show a commit",
		ArgsUsage: "REF",
		Description: `Prints a commit as 'ostree show' does, or as JSON with --format json (all
metadata keys, values in GVariant text format).

Examples:
   bootc ostree show --repo repo os/x86_64
   bootc ostree show --repo repo --format json os/x86_64 | jq -r .metadata.version`,
		Flags: []cli.Flag{repoFlag(), formatFlag()},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError(c, "show takes one REF")
			}
			asJSON, err := checkFormat(c)
			if err != nil {
				return err
			}
			repo, err := ostree.Open(c.Context, c.String("repo"))
			if err != nil {
				return err
			}
			sum, err := repo.ResolveRev(c.Args().First())
			if err != nil {
				return err
			}
			commit, err := repo.ReadCommit(sum)
			if err != nil {
				return fmt.Errorf("show: %w", err)
			}
			ts := time.Unix(int64(commit.Timestamp), 0).UTC()
			if asJSON {
				out := commitJSON{
					Checksum: sum.String(), Subject: commit.Subject, Body: commit.Body,
					Timestamp: ts.Format(time.RFC3339), ContentChecksum: commit.ContentChecksum().String(),
					RootTree: commit.RootTree.String(), RootMeta: commit.RootMeta.String(),
					Metadata: map[string]string{},
				}
				if !commit.Parent.IsZero() {
					out.Parent = commit.Parent.String()
				}
				out.Version, _ = commit.Metadata.String("version")
				for _, m := range commit.Metadata {
					out.Metadata[m.Key] = metadataText(m.Value)
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "commit %s\n", sum)
			if !commit.Parent.IsZero() {
				fmt.Fprintf(w, "Parent:  %s\n", commit.Parent)
			}
			fmt.Fprintf(w, "ContentChecksum:  %s\n", commit.ContentChecksum())
			fmt.Fprintf(w, "Date:  %s\n", ts.Format("2006-01-02 15:04:05 -0700"))
			if v, ok := commit.Metadata.String("version"); ok {
				fmt.Fprintf(w, "Version: %s\n", v)
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "    %s\n\n", commit.Subject)
			if commit.Body != "" {
				fmt.Fprintf(w, "    %s\n\n", strings.ReplaceAll(commit.Body, "\n", "\n    "))
			}
			return nil
		},
	}
}

type commitJSON struct {
	Checksum        string            `json:"checksum"`
	Parent          string            `json:"parent,omitempty"`
	Subject         string            `json:"subject"`
	Body            string            `json:"body"`
	Timestamp       string            `json:"timestamp"`
	Version         string            `json:"version,omitempty"`
	ContentChecksum string            `json:"contentChecksum"`
	RootTree        string            `json:"rootDirtree"`
	RootMeta        string            `json:"rootDirmeta"`
	Metadata        map[string]string `json:"metadata"`
}

// metadataText renders a metadata value: strings as themselves, anything else in GVariant text.
func metadataText(v gvariant.Variant) string {
	if s, ok := v.Value.(string); ok && v.Type.String() == "s" {
		return s
	}
	return gvariant.Print(v.Type, v.Value, true)
}
