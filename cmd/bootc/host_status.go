package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:        "status",
		Usage:       "show the deployments: booted, staged and rollback",
		Description: help("status"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "humanreadable, yaml or json (default: humanreadable on a terminal, yaml otherwise)"},
			&cli.StringFlag{Name: "format-version", Value: "1", Usage: "schema version: 0 and 1 are the same"},
			&cli.BoolFlag{Name: "booted", Usage: "only the booted deployment"},
			&cli.BoolFlag{Name: "json", Hidden: true, Usage: "the same as --format json"},
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	format := c.String("format")
	if c.Bool("json") {
		if format != "" && format != "json" {
			return usageError(c, "--json and --format %s contradict each other", format)
		}
		format = "json"
	}
	switch format {
	case "":
		format = "yaml"
		if f, ok := c.App.Writer.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "humanreadable"
		}
	case "humanreadable", "yaml", "json":
	default:
		return usageError(c, "unknown --format %q: use humanreadable, yaml or json", format)
	}
	if v := c.String("format-version"); v != "0" && v != "1" {
		return usageError(c, "unknown --format-version %q: use 0 or 1", v)
	}
	st, err := host.Status(c.Context, sysrootPath(c))
	if err != nil {
		return hostError(c, err)
	}
	if c.Bool("booted") {
		st = st.BootedOnly()
	}
	w := c.App.Writer
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(st); err != nil {
			return err
		}
		return enc.Close()
	}
	printStatus(w, st)
	return nil
}

// printStatus writes the human-readable form: one block per deployment, in boot order.
func printStatus(w io.Writer, st *host.BootcHost) {
	titles := map[host.Role]string{host.RoleStaged: "Staged image", host.RoleBooted: "Booted image", host.RoleRollback: "Rollback image", host.RoleOther: "Other deployment"}
	if st.Status.RollbackQueued {
		titles[host.RoleRollback] = "Rollback image (queued: boots next)"
	}
	rows := st.Entries()
	if len(rows) == 0 {
		fmt.Fprintln(w, "No deployments. Install one with 'bootc install to-filesystem --source-imgref IMAGE ROOT'.")
		return
	}
	for i, r := range rows {
		if i > 0 {
			fmt.Fprintln(w)
		}
		mark := " "
		if r.BootEntry == st.Status.Booted {
			mark = "●"
		}
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		if r.Image != nil {
			fmt.Fprintf(tw, "%s %s:\t%s\n", mark, titles[r.Role], displayImage(r.Image.Image))
			if r.Image.Version != nil {
				fmt.Fprintf(tw, "  Version:\t%s\n", *r.Image.Version)
			}
			if r.Image.Timestamp != nil {
				fmt.Fprintf(tw, "  Built:\t%s\n", *r.Image.Timestamp)
			}
			if r.Image.ImageDigest != "" {
				fmt.Fprintf(tw, "  Digest:\t%s\n", r.Image.ImageDigest)
			}
		} else {
			fmt.Fprintf(tw, "%s %s:\t(not a container image deployment)\n", mark, titles[r.Role])
		}
		fmt.Fprintf(tw, "  Deployment:\t%s.%d (stateroot %s)\n", r.Ostree.Checksum, r.Ostree.DeploySerial, r.Ostree.Stateroot)
		if r.Pinned {
			fmt.Fprintf(tw, "  Pinned:\tyes\n")
		}
		if u := r.CachedUpdate; u != nil {
			v := ""
			if u.Version != nil {
				v = " version " + *u.Version
			}
			fmt.Fprintf(tw, "  Downloaded update:\t%s%s (deploy it with 'bootc upgrade --from-downloaded')\n", u.ImageDigest, v)
		}
		tw.Flush()
	}
}

func displayImage(r host.ImageReference) string {
	s := r.Image
	if r.Transport != string(imgref.Registry) {
		s = r.Transport + ":" + s
	}
	if r.Signature == "insecure" {
		s += " (signature not verified)"
	}
	return s
}
