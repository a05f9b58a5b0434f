package main

import (
	"cmp"
	"embed"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/urfave/cli/v2"
)

// The help of each command is prose, kept in help/NAME.txt (NAME is the command path joined by
// '-', e.g. install-to-filesystem) rather than in the code: its first line is the one-line
// usage, the rest the description with examples. TestEveryCommandHasHelp checks that each
// command has one and each file a command. The shell completion scripts are
// completion/bootc.SHELL.
//
//go:embed help/*.txt completion/*
var helpFiles embed.FS

// help returns the one-line usage and the description of the command name ("" if it has none).
func help(name string) (usage, description string) {
	b, _ := helpFiles.ReadFile("help/" + name + ".txt")
	usage, description, _ = strings.Cut(strings.TrimSuffix(string(b), "\n"), "\n\n")
	return usage, description
}

// version and commit are set at build time (make build: -ldflags -X main.version=... -X
// main.commit=...); without them the module's build information stands in.
var version, commit string

// toolCommands are the commands about bootc itself.
func toolCommands() []*cli.Command {
	return []*cli.Command{{Name: "version", Action: printVersion},
		{Name: "completion", ArgsUsage: "bash|zsh|fish", Action: cliargs.WithArgs(1, 1, "one shell name (bash, zsh or fish)", printCompletion)}}
}

func printVersion(c *cli.Context) error {
	v, rev := version, commit
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = cmp.Or(v, bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = cmp.Or(rev, s.Value)
			}
		}
	}
	_, err := fmt.Fprintf(c.App.Writer, "bootc %s\ncommit: %s\ngo: %s\n", cmp.Or(v, "unknown"), cmp.Or(rev, "unknown"), runtime.Version())
	return err
}

func printCompletion(c *cli.Context) error {
	b, err := helpFiles.ReadFile("completion/bootc." + c.Args().First())
	if err != nil {
		return cliargs.Errorf(c, "no completion for shell %q: use bash, zsh or fish", c.Args().First())
	}
	_, err = c.App.Writer.Write(b)
	return err
}
