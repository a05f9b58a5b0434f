package main

import (
	"embed"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// The long help of each command (its description and examples) is prose, kept in help/NAME.txt
// (NAME is the command path joined by '-', e.g. install-to-filesystem) rather than in the code;
// TestEveryCommandHasHelp checks that each command has one and each file a command. The shell
// completion scripts are completion/bootc.SHELL.
//
//go:embed help/*.txt completion/*
var helpFiles embed.FS

// help returns the long help of the command name, or "" if it has none.
func help(name string) string {
	b, err := helpFiles.ReadFile("help/" + name + ".txt")
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(b), "\n")
}

// version and commit are set at build time (make build: -ldflags -X main.version=... -X
// main.commit=...); without them the module's build information stands in.
var version, commit string

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:        "version",
		Usage:       "print the version, commit and Go version (also: bootc --version)",
		Description: help("version"),
		Action: func(c *cli.Context) error {
			v, rev := version, commit
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && rev == "" {
						rev = s.Value
					}
				}
				if v == "" {
					v = bi.Main.Version
				}
			}
			fmt.Fprintf(c.App.Writer, "bootc %s\ncommit: %s\ngo: %s\n", orUnknown(v), orUnknown(rev), runtime.Version())
			return nil
		},
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:        "completion",
		Usage:       "print the shell completion script for bash, zsh or fish",
		ArgsUsage:   "bash|zsh|fish",
		Description: help("completion"),
		Action: func(c *cli.Context) error {
			if err := nargs(c, 1, 1, "one shell name (bash, zsh or fish)"); err != nil {
				return err
			}
			b, err := helpFiles.ReadFile("completion/bootc." + c.Args().First())
			if err != nil {
				return usageError(c, "no completion for shell %q: use bash, zsh or fish", c.Args().First())
			}
			_, err = c.App.Writer.Write(b)
			return err
		},
	}
}
