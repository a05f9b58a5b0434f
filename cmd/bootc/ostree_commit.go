package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeCommitCommand() *cli.Command {
	return &cli.Command{
		Name:        "commit",
		Usage:       "commit a directory tree to a branch",
		ArgsUsage:   "DIR",
		Description: help("ostree-commit"),
		Flags: []cli.Flag{
			repoFlag(),
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Usage: "branch to point at the new commit"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "one-line subject"},
			&cli.StringFlag{Name: "body", Aliases: []string{"m"}, Usage: "full description"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time: RFC 3339, 'YYYY-MM-DD HH:MM:SS [UTC|±hhmm]' or @UNIXSECONDS (default: SOURCE_DATE_EPOCH, else now)"},
			&cli.StringSliceFlag{Name: "add-metadata-string", Usage: "add metadata KEY=VALUE (repeatable)"},
			&cli.StringFlag{Name: "parent", Usage: "parent commit checksum, or 'none' (default: the branch's head)"},
			&cli.BoolFlag{Name: "orphan", Usage: "make a commit no branch points at"},
			&cli.BoolFlag{Name: "no-bindings", Usage: "do not add the ostree.ref-binding metadata"},
			&cli.StringSliceFlag{Name: "bind-ref", Usage: "also bind the commit to this ref (repeatable)"},
			&cli.BoolFlag{Name: "no-xattrs", Usage: "do not store extended attributes"},
			&cli.Int64Flag{Name: "owner-uid", Value: -1, Usage: "store every file as owned by this uid"},
			&cli.Int64Flag{Name: "owner-gid", Value: -1, Usage: "store every file as owned by this gid"},
			&cli.BoolFlag{Name: "canonical-permissions", Usage: "store uid/gid 0 and only the 0755 mode bits"},
			&cli.StringFlag{Name: "tree", Usage: "dir=DIR: the ostree spelling of the DIR argument"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress"},
		},
		Action: runOstreeCommit,
	}
}

func runOstreeCommit(c *cli.Context) error {
	dir := c.Args().First()
	if t := c.String("tree"); t != "" {
		d, ok := strings.CutPrefix(t, "dir=")
		if !ok {
			return usageError(c, "--tree %q: only dir=DIR is supported", t)
		}
		if dir != "" {
			return usageError(c, "give the directory either as an argument or with --tree, not both")
		}
		dir = d
	}
	if dir == "" || c.NArg() > 1 {
		return usageError(c, "commit takes exactly one directory")
	}
	opts, err := ostreeCommitOptions(c)
	if err != nil {
		return err
	}
	if !c.Bool("quiet") {
		p := newProgress(c.App.ErrWriter)
		defer p.done()
		opts = append(opts, ostree.WithProgress(p.commit))
	}
	repo, err := ostree.Open(c.Context, c.String("repo"))
	if err != nil {
		return err
	}
	sum, err := repo.CommitDir(c.Context, dir, opts...)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	fmt.Fprintln(c.App.Writer, sum)
	return nil
}

// ostreeCommitOptions turns the flags of ostree commit into options.
func ostreeCommitOptions(c *cli.Context) ([]ostree.CommitOption, error) {
	branch := c.String("branch")
	if branch == "" && !c.Bool("orphan") {
		return nil, usageError(c, "a branch is required (-b BRANCH), or --orphan for a commit no ref points at")
	}
	opts := []ostree.CommitOption{ostree.WithBranch(branch), ostree.WithSubject(c.String("subject")), ostree.WithBody(c.String("body"))}
	ts, err := timestampOption(c, ostree.WithTimestamp)
	if err != nil {
		return nil, err
	}
	md, err := keyValueOptions(c, "add-metadata-string", ostree.WithMetadataString)
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, ts...), md...)
	switch p := c.String("parent"); p {
	case "":
	case "none":
		opts = append(opts, ostree.WithNoParent())
	default:
		pc, err := ostree.ParseChecksum(p)
		if err != nil {
			return nil, usageError(c, "--parent: %v", err)
		}
		opts = append(opts, ostree.WithParent(pc))
	}
	opts = append(opts, boolOptions(c, map[string]ostree.CommitOption{
		"no-bindings": ostree.WithoutBindings(), "no-xattrs": ostree.WithoutXattrs(), "canonical-permissions": ostree.WithCanonicalPermissions(),
	})...)
	if refs := c.StringSlice("bind-ref"); len(refs) > 0 {
		opts = append(opts, ostree.WithBindRefs(refs...))
	}
	for _, o := range []struct {
		flag string
		opt  func(uint32) ostree.CommitOption
	}{{"owner-uid", ostree.WithOwnerUID}, {"owner-gid", ostree.WithOwnerGID}} {
		if v := c.Int64(o.flag); v >= 0 {
			if v > 1<<32-1 {
				return nil, usageError(c, "--%s %d is out of range", o.flag, v)
			}
			opts = append(opts, o.opt(uint32(v)))
		} else if v != -1 {
			return nil, usageError(c, "--%s must not be negative", o.flag)
		}
	}
	return opts, nil
}
