package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/gvariant"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeLsCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Usage:     "list the files of a commit",
		ArgsUsage: "REF [PATH...]",
		Description: `Lists PATH (default /) of REF in the format of 'ostree ls': type and mode, uid,
gid, size, optionally checksums (-C) and xattrs (-X), then the path.

Examples:
   bootc ostree ls --repo repo os/x86_64
   bootc ostree ls --repo repo -R -C -X os/x86_64 /usr/bin`,
		Flags: []cli.Flag{
			repoFlag(),
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"R"}, Usage: "list directories recursively"},
			&cli.BoolFlag{Name: "checksum", Aliases: []string{"C"}, Usage: "print checksums"},
			&cli.BoolFlag{Name: "xattrs", Aliases: []string{"X"}, Usage: "print extended attributes"},
			&cli.BoolFlag{Name: "dironly", Aliases: []string{"d"}, Usage: "list a directory itself, not its contents"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return usageError(c, "ls takes REF and optional paths")
			}
			repo, err := ostree.Open(c.Context, c.String("repo"))
			if err != nil {
				return err
			}
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
					printLsEntry(c.App.Writer, e, c.Bool("checksum"), c.Bool("xattrs"))
					return nil
				})
				if err != nil {
					return fmt.Errorf("ls: %w", err)
				}
			}
			return nil
		},
	}
}

var xattrsType = gvariant.MustParseType("a(ayay)")

func printLsEntry(w io.Writer, e *ostree.TreeEntry, checksums, xattrs bool) {
	var b strings.Builder
	var x ostree.Xattrs
	if e.IsDir() {
		fmt.Fprintf(&b, "d%05o %d %d %6d ", e.Meta.Mode&0o7777, e.Meta.UID, e.Meta.GID, 0)
		if checksums {
			fmt.Fprintf(&b, "%s %s ", e.Tree, e.MetaChecksum)
		}
		x = e.Meta.Xattrs
	} else {
		kind := byte('-')
		if e.Header.IsSymlink() {
			kind = 'l'
		}
		fmt.Fprintf(&b, "%c%05o %d %d %6d ", kind, e.Header.Mode&0o7777, e.Header.UID, e.Header.GID, e.Size)
		if checksums {
			fmt.Fprintf(&b, "%s ", e.Checksum)
		}
		x = e.Header.Xattrs
	}
	if xattrs {
		v, err := gvariant.Unmarshal(xattrsType, ostree.MarshalXattrs(x))
		if err == nil {
			fmt.Fprintf(&b, "{ %s } ", gvariant.Print(xattrsType, v, true))
		}
	}
	b.WriteString(e.Path)
	if !e.IsDir() && e.Header.IsSymlink() {
		b.WriteString(" -> " + e.Header.SymlinkTarget)
	}
	fmt.Fprintln(w, b.String())
}
