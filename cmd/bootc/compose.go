package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
)

func composeCommand() *cli.Command {
	return &cli.Command{
		Name:         "compose",
		Usage:        "build bootable OSTree commits and chunked images from root filesystems",
		Description:  help("compose"),
		Subcommands:  composeSubcommands(),
		OnUsageError: composeUsageError,
	}
}

// composeUsageError makes a flag parsing error (an unknown flag, a bad value) exit 2, as
// usageError does.
func composeUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(c, "%v", err)
}

// composeSubcommands lists the compose subcommands, in the order --help shows them.
func composeSubcommands() []*cli.Command {
	return []*cli.Command{
		composeCommitCommand(),
		composeEncapsulateCommand(),
		composeImageCommand(),
	}
}

// composeEvents renders the compose pipelines' events on stderr: what they decide always, progress
// (and with withLog the commit's log) unless --quiet. done clears the progress line.
func composeEvents(c *cli.Context, withLog bool) (opts []compose.Option, done func()) {
	p := newProgress(c.App.ErrWriter)
	w, quiet := progressAwareWriter{p}, c.Bool("quiet")
	if withLog && !quiet {
		opts = append(opts, compose.WithLogger(stderrLogger(w)))
	}
	return append(opts, compose.WithProgress(func(e compose.Event) {
		switch e := e.(type) {
		case compose.RepoCreated:
			fmt.Fprintf(w, "created repository %s in mode %s\n", e.Path, e.Mode)
		case compose.PriorBuildKept:
			fmt.Fprintf(w, "keeping the layer assignment of the image at %s (%d chunk layers)\n", e.Ref, e.Layers)
		case compose.PriorBuildUnreadable:
			fmt.Fprintf(w, "note: not reusing the layout of %s: %v\n", e.Ref, e.Err)
		case compose.PriorBuildNotChunked:
			fmt.Fprintf(w, "note: the image at %s is not a chunked build (%v); planning layers afresh\n", e.Ref, e.Err)
		case compose.CommitProgress:
			if !quiet {
				p.commit(e.CommitProgress)
			}
		case compose.LayerProgress:
			if !quiet {
				p.update("writing layers: %d of %d", e.LayersDone, e.Layers)
			}
		case compose.Signed:
			if !quiet {
				fmt.Fprintf(w, "signed %s in %s\n", e.Digest, e.Took.Round(time.Millisecond))
			}
		}
	})), p.done
}
