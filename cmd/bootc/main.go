// Command bootc is a toolkit for bootable container images: OSTree-native containers.
//
// This file builds the application; each command group (host, install, compose, container,
// ostree, fleetlock) lives in a file of its own, and each command does no more than turn flags into options
// for one library call and render the result.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.podman.io/storage/pkg/reexec"
	"go.yaml.in/yaml/v3"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func main() {
	// containers-storage runs some of its work in a re-executed copy of this binary.
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfiling := startProfiling(os.Stderr)
	code := Main(ctx, os.Args, os.Stdout, os.Stderr)
	stopProfiling()
	stop()
	os.Exit(code)
}

// Main runs the CLI with args (args[0] is the program name) and returns the exit code: 0, 2 for
// a usage error (*cliargs.UsageError), 1 for any other error (also fsck's and lint's "problems
// found"). Tests run it in-process. Completion requests never reach a command's Action.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	args, err := ostreeContainerArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	app := newApp(stdout, stderr)
	if i := slices.Index(args, cliargs.CompletionFlag); i >= 0 {
		cliargs.Complete(app, stdout, slices.Delete(slices.Clone(args[1:]), i-1, i))
		return 0
	}
	args, err = cliargs.Normalize(app, args[1:], "run 'bootc status', 'bootc upgrade' or another command")
	if err == nil {
		err = app.RunContext(ctx, args)
	}
	if err == nil {
		return 0
	}
	if fmt.Fprintf(stderr, "error: %v\n", err); errors.As(err, new(*cliargs.UsageError)) {
		return 2
	}
	return 1
}

func newApp(stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:            "bootc",
		Writer:          stdout,
		ErrWriter:       stderr,
		HideHelpCommand: true,
		HideVersion:     true,
		Flags:           globalFlags(),
		Commands:        append(append(hostCommands(), installCommand(), composeCommand(), containerCommand(), releaseCommand(), ostreeCommand(), agentCommand(), fleetlockCommand(), internalsCommand()), toolCommands()...),
		ExitErrHandler:  func(*cli.Context, error) {}, // Main prints errors and picks exit codes
		OnUsageError:    onUsageError,
	}
	app.Usage, app.Description = help("bootc")
	// Every command gets its help text and has urfave's flag errors reported as usage errors.
	var walk func(path string, cmds []*cli.Command)
	walk = func(path string, cmds []*cli.Command) {
		for _, c := range cmds {
			c.Usage, c.Description = help(strings.TrimPrefix(path+"-"+c.Name, "-"))
			c.OnUsageError, c.HideHelpCommand = onUsageError, true
			walk(strings.TrimPrefix(path+"-"+c.Name, "-"), c.Subcommands)
		}
	}
	walk("", app.Commands)
	return app
}

// onUsageError makes urfave's own flag errors (a bad number, say) usage errors.
func onUsageError(c *cli.Context, err error, _ bool) error { return cliargs.Errorf(c, "%v", err) }

// formatFlag is --format for commands that print text or JSON.
func formatFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "format", Value: "text", Usage: "output format: text (or humanreadable) or json"}
}

// outputFormat reads --format: "text" (also "humanreadable") or one of the others allowed.
func outputFormat(c *cli.Context, others ...string) (string, error) {
	switch f := c.String("format"); {
	case f == "humanreadable" || f == "text":
		return "text", nil
	case slices.Contains(others, f):
		return f, nil
	default:
		return "", cliargs.Errorf(c, "unknown --format %q: use text, %s", f, strings.Join(others, " or "))
	}
}

// writeData writes v as indented JSON or YAML.
func writeData(w io.Writer, format string, v any) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

// timestampOption is the commit time option: from --timestamp, else from SOURCE_DATE_EPOCH (read
// here: the libraries read no environment), else none (the libraries then use the current time).
func timestampOption[T any](c *cli.Context, with func(time.Time) T) ([]T, error) {
	t, ok, err := ostree.CommitTime(c.String("timestamp"), os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil && c.String("timestamp") != "" {
		return nil, cliargs.Errorf(c, "%v", err)
	} else if err != nil || !ok {
		return nil, err // a bad SOURCE_DATE_EPOCH is no usage error
	}
	return []T{with(t)}, nil
}

// keyValueOptions turns each KEY=VALUE of a repeatable flag into an option, in order.
func keyValueOptions[T any](c *cli.Context, flag string, with func(k, v string) T) ([]T, error) {
	var opts []T
	for _, kv := range c.StringSlice(flag) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, cliargs.Errorf(c, "--%s %q: expected KEY=VALUE", flag, kv)
		}
		opts = append(opts, with(k, v))
	}
	return opts, nil
}

// boolOptions returns the option of each boolean flag that is set, in the flags' name order.
func boolOptions[T any](c *cli.Context, flags map[string]T) []T {
	var opts []T
	for _, name := range slices.Sorted(maps.Keys(flags)) {
		if c.Bool(name) {
			opts = append(opts, flags[name])
		}
	}
	return opts
}

// quietFlag is -q/--quiet: only errors and the final result.
func quietFlag() cli.Flag {
	return &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print only errors and the final result (no progress or log)"}
}
