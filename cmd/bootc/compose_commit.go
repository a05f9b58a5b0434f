package main

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
)

func composeCommitCommand() *cli.Command {
	repo := repoFlag()
	repo.Required = false // checked by hand, so that a missing flag exits 2
	repo.Usage = "OSTree repository (required; created in mode bare-user if it does not exist)"
	return &cli.Command{
		Name:        "commit",
		Usage:       "commit a root filesystem directory as a bootable OSTree commit",
		Description: help("compose-commit"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory to commit (required)"},
			repo,
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Usage: "branch to point at the new commit (required)"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "one-line subject"},
			&cli.StringFlag{Name: "body", Aliases: []string{"m"}, Usage: "full description"},
			&cli.StringFlag{Name: "version", Usage: "the version metadata (default: VERSION_ID or VERSION from the rootfs's os-release; an empty value for none)"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time: RFC 3339, 'YYYY-MM-DD HH:MM:SS [UTC|±hhmm]' or @UNIXSECONDS (default: SOURCE_DATE_EPOCH, else now)"},
			&cli.StringSliceFlag{Name: "add-metadata-string", Usage: "add metadata KEY=VALUE (repeatable)"},
			&cli.BoolFlag{Name: "no-bindings", Usage: "do not add the ostree.ref-binding metadata"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or log on stderr"},
		},
		Action:       runComposeCommit,
		OnUsageError: composeUsageError,
	}
}

func runComposeCommit(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unexpected argument %q: give the root filesystem with --rootfs", c.Args().First())
	}
	for _, f := range []string{"rootfs", "repo", "branch"} {
		if c.String(f) == "" {
			return usageError(c, "--%s is required", f)
		}
	}
	opts, err := commitOptions(c)
	if err != nil {
		return err
	}
	events, done := composeEvents(c, true)
	defer done()
	sum, err := compose.Commit(c.Context, c.String("repo"), c.String("rootfs"), append(opts, events...)...)
	if errors.Is(err, compose.ErrRootfs) {
		return fmt.Errorf("--rootfs: %w", err)
	} else if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, sum)
	return nil
}

// commitOptions turns the commit flags of compose commit and compose image into options; a flag
// a command lacks reads as unset.
func commitOptions(c *cli.Context) ([]compose.Option, error) {
	opts := []bootable.Option{bootable.WithBranch(c.String("branch")), bootable.WithSubject(c.String("subject")), bootable.WithBody(c.String("body"))}
	if c.IsSet("version") {
		opts = append(opts, bootable.WithVersion(c.String("version")))
	}
	md, err := keyValueOptions(c, "add-metadata-string", bootable.WithMetadataString)
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, md...), boolOptions(c, map[string]bootable.Option{"no-bindings": bootable.WithoutBindings()})...)
	ts, err := timestampOption(c, compose.WithTimestamp)
	if err != nil {
		return nil, err
	}
	return append(ts, compose.WithCommit(opts...)), nil
}
