package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func ostreeCommand() *cli.Command {
	return &cli.Command{Name: "ostree", Subcommands: []*cli.Command{
		{Name: "init", Action: cliargs.WithArgs(0, 0, "no arguments", runOstreeInit), Flags: []cli.Flag{repoFlag(),
			&cli.StringFlag{Name: "mode", Value: "bare", Usage: "bare, bare-user or archive (archive-z2)"}}},
		{Name: "commit", ArgsUsage: "DIR", Action: runOstreeCommit, Flags: append(commitFlags(
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Usage: "branch to point at the new commit (required unless --orphan)"}), repoFlag(),
			&cli.StringFlag{Name: "parent", Usage: "parent commit checksum, or 'none' (default: the branch's head)"},
			&cli.BoolFlag{Name: "orphan", Usage: "make a commit no branch points at"},
			&cli.StringSliceFlag{Name: "bind-ref", Usage: "also bind the commit to this ref (repeatable)"},
			&cli.BoolFlag{Name: "no-xattrs", Usage: "do not store extended attributes"},
			&cli.Int64Flag{Name: "owner-uid", Value: -1, Usage: "store every file as owned by this uid"},
			&cli.Int64Flag{Name: "owner-gid", Value: -1, Usage: "store every file as owned by this gid"},
			&cli.BoolFlag{Name: "canonical-permissions", Usage: "store uid/gid 0 and only the 0755 mode bits"},
			&cli.StringFlag{Name: "tree", Usage: "dir=DIR: the ostree spelling of the DIR argument"},
		)},
		repoCommand{name: "checkout", argsUsage: "REF DEST", min: 2, max: 2, args: "REF and DEST", run: runOstreeCheckout, flags: []cli.Flag{
			&cli.BoolFlag{Name: "union", Usage: "check out over an existing DEST, replacing files"},
			&cli.BoolFlag{Name: "whiteouts", Usage: "process container whiteouts (.wh.NAME, .wh..wh..opq)"},
			&cli.BoolFlag{Name: "user-mode", Aliases: []string{"U"}, Usage: "ignore owners and xattrs, drop setuid/setgid"},
			&cli.BoolFlag{Name: "force-copy", Aliases: []string{"C"}, Usage: "copy files instead of hardlinking them"},
		}}.command(),
		repoCommand{name: "ls", argsUsage: "REF [PATH...]", min: 1, max: -1, args: "REF and optional paths", run: runOstreeLs, flags: []cli.Flag{
			&cli.BoolFlag{Name: "recursive", Aliases: []string{"R"}, Usage: "list directories recursively"},
			&cli.BoolFlag{Name: "checksum", Aliases: []string{"C"}, Usage: "print checksums"},
			&cli.BoolFlag{Name: "xattrs", Aliases: []string{"X"}, Usage: "print extended attributes"},
			&cli.BoolFlag{Name: "dironly", Aliases: []string{"d"}, Usage: "list a directory itself, not its contents"},
		}}.command(),
		repoCommand{name: "show", argsUsage: "REF", json: true, min: 1, max: 1, args: "one REF", run: runOstreeShow}.command(),
		repoCommand{name: "refs", json: true, max: -1, run: runOstreeRefs, flags: []cli.Flag{
			&cli.StringFlag{Name: "create", Aliases: []string{"c"}, Usage: "create ref NEWREF pointing at the commit given as argument"},
			&cli.BoolFlag{Name: "delete", Usage: "delete the refs given as arguments"},
		}}.command(),
		repoCommand{name: "fsck", json: true, args: "no arguments", run: runOstreeFsck}.command(),
	}}
}

// repoFlag is the --repo flag every ostree command takes; OSTREE_REPO is its default, as for ostree.
func repoFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "repo", Usage: "path to the OSTree repository (required)", EnvVars: []string{"OSTREE_REPO"}, Required: true}
}

// repoCommand is an ostree subcommand on an existing repository.
type repoCommand struct {
	name, argsUsage string
	flags           []cli.Flag
	json            bool   // takes --format text|json
	min, max        int    // the arguments it takes (max -1: any number)
	args            string // what they are, for the usage error
	run             func(c *cli.Context, repo *ostree.Repo, format string) error
}

// command puts --repo (and --format) first among the flags, and makes an Action that checks the
// arguments and --format (usage errors), opens the repository and calls run.
func (r repoCommand) command() *cli.Command {
	cmd := &cli.Command{Name: r.name, ArgsUsage: r.argsUsage, Flags: append([]cli.Flag{repoFlag()}, r.flags...)}
	if r.json {
		cmd.Flags = append(cmd.Flags, formatFlag())
	}
	cmd.Action = func(c *cli.Context) error {
		if err := cliargs.CheckArgs(c, r.min, r.max, r.args); err != nil {
			return err
		}
		format := "text"
		if r.json {
			var err error
			if format, err = outputFormat(c, "json"); err != nil {
				return err
			}
		}
		repo, err := ostree.Open(c.Context, c.String("repo"))
		if err != nil {
			return err
		}
		return r.run(c, repo, format)
	}
	return cmd
}

func runOstreeInit(c *cli.Context) error {
	mode, err := ostree.ParseRepoMode(c.String("mode"))
	if err != nil {
		return cliargs.Errorf(c, "%v", err)
	}
	if _, err := ostree.Init(c.Context, c.String("repo"), mode); err != nil {
		return fmt.Errorf("init: %w", err)
	}
	return nil
}

func runOstreeCheckout(c *cli.Context, repo *ostree.Repo, _ string) error {
	opts := boolOptions(c, map[string]ostree.CheckoutOption{
		"union": ostree.WithUnion(), "whiteouts": ostree.WithWhiteouts(), "user-mode": ostree.WithUserMode(), "force-copy": ostree.WithForceCopy(),
	})
	if err := repo.Checkout(c.Context, c.Args().Get(0), c.Args().Get(1), opts...); err != nil {
		return fmt.Errorf("checkout: %w", err)
	}
	return nil
}

func runOstreeCommit(c *cli.Context) error {
	dir := c.Args().First()
	if t := c.String("tree"); t != "" {
		d, ok := strings.CutPrefix(t, "dir=")
		if !ok {
			return cliargs.Errorf(c, "--tree %q: only dir=DIR is supported", t)
		}
		if dir != "" {
			return cliargs.Errorf(c, "give the directory either as an argument or with --tree, not both")
		}
		dir = d
	}
	if dir == "" || c.NArg() > 1 {
		return cliargs.Errorf(c, "commit takes exactly one directory")
	}
	opts, err := ostreeCommitOptions(c)
	if err != nil {
		return err
	}
	p := newProgress(c.App.ErrWriter, c.Bool("quiet"))
	repo, err := ostree.Open(c.Context, c.String("repo"))
	if err != nil {
		return err
	}
	sum, err := repo.CommitDir(c.Context, dir, append(opts, ostree.WithProgress(p.commit))...)
	if p.done(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	fmt.Fprintln(c.App.Writer, sum)
	return nil
}

// ostreeCommitOptions turns the flags of ostree commit into options.
func ostreeCommitOptions(c *cli.Context) ([]ostree.CommitOption, error) {
	branch := c.String("branch")
	if branch == "" && !c.Bool("orphan") {
		return nil, cliargs.Errorf(c, "a branch is required (-b BRANCH), or --orphan for a commit no ref points at")
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
			return nil, cliargs.Errorf(c, "--parent: %v", err)
		}
		opts = append(opts, ostree.WithParent(pc))
	}
	opts = append(opts, boolOptions(c, map[string]ostree.CommitOption{
		"no-bindings": ostree.WithoutBindings(), "no-xattrs": ostree.WithoutXattrs(), "canonical-permissions": ostree.WithCanonicalPermissions(),
	})...)
	opts = append(opts, ostree.WithBindRefs(c.StringSlice("bind-ref")...))
	for _, o := range []struct {
		flag string
		opt  func(uint32) ostree.CommitOption
	}{{"owner-uid", ostree.WithOwnerUID}, {"owner-gid", ostree.WithOwnerGID}} {
		if v := c.Int64(o.flag); v < -1 || v > 1<<32-1 {
			return nil, cliargs.Errorf(c, "--%s %d is out of range: use an id from 0 to 4294967295", o.flag, v)
		} else if v >= 0 {
			opts = append(opts, o.opt(uint32(v)))
		}
	}
	return opts, nil
}

func runOstreeLs(c *cli.Context, repo *ostree.Repo, _ string) error {
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

func runOstreeShow(c *cli.Context, repo *ostree.Repo, format string) error {
	info, err := repo.ShowCommit(c.Args().First())
	if err != nil {
		return err
	}
	if format != "text" {
		return writeData(c.App.Writer, format, info)
	}
	_, err = io.WriteString(c.App.Writer, info.ShowText())
	return err
}

func runOstreeRefs(c *cli.Context, repo *ostree.Repo, format string) error {
	switch {
	case c.String("create") != "":
		if c.NArg() != 1 {
			return cliargs.Errorf(c, "--create NEWREF takes the target commit (checksum or ref) as its one argument")
		}
		target, err := repo.ResolveRev(c.Args().First())
		if err != nil {
			return err
		}
		return repo.SetRef(c.String("create"), target)
	case c.Bool("delete"):
		if c.NArg() == 0 {
			return cliargs.Errorf(c, "--delete takes the refs to delete as arguments")
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
	} else if format != "text" {
		return json.NewEncoder(c.App.Writer).Encode(append([]ostree.Ref{}, refs...))
	}
	for _, r := range refs {
		fmt.Fprintln(c.App.Writer, r.Name)
	}
	return nil
}

func runOstreeFsck(c *cli.Context, repo *ostree.Repo, format string) error {
	rep, err := repo.Fsck(c.Context)
	if err != nil {
		return fmt.Errorf("fsck: %w", err)
	}
	if format == "text" {
		_, err = io.WriteString(c.App.Writer, rep.Text())
	} else {
		err = json.NewEncoder(c.App.Writer).Encode(rep)
	}
	if err == nil && len(rep.Problems) > 0 {
		err = fmt.Errorf("fsck found %d problems in %s", len(rep.Problems), repo.Path())
	}
	return err
}
