// Command bootc is a toolkit for bootable container images: OSTree-native containers.
//
// This file builds the application; each command lives in a file of its own and does no more than
// turn flags into options for one library call and render the result.
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

	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/urfave/cli/v2"
	"go.podman.io/storage/pkg/reexec"
)

func main() {
	// containers-storage runs some of its work in a re-executed copy of this binary.
	if reexec.Init() {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a specific exit code (for example fsck's 1 for "problems found").
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// Main runs the CLI with args (args[0] is the program name) and returns the exit code. Tests run
// it in-process.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app := newApp(stdout, stderr)
	err := app.RunContext(ctx, args)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "error: %v\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "error: %v\n", err)
	return 1
}

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:                 "bootc",
		Usage:                "build, ship and deploy bootable container images (OSTree-native containers)",
		Description:          help("bootc"),
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Flags:                append(append([]cli.Flag{sysrootFlag()}, policyFlags()...), registriesFlags()...),
		Commands: []*cli.Command{
			statusCommand(),
			switchCommand(),
			upgradeCommand(),
			rollbackCommand(),
			installCommand(),
			composeCommand(),
			containerCommand(),
			ostreeCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // Main prints errors and picks exit codes
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return fmt.Errorf("%w (see '%s --help')", err, c.Command.HelpName)
		},
	}
}

func ostreeCommand() *cli.Command {
	return &cli.Command{
		Name:        "ostree",
		Usage:       "work on OSTree repositories (plumbing compatible with the ostree CLI)",
		Description: help("ostree"),
		Subcommands: []*cli.Command{
			ostreeInitCommand(),
			ostreeCommitCommand(),
			ostreeCheckoutCommand(),
			ostreeLsCommand(),
			ostreeShowCommand(),
			ostreeRefsCommand(),
			ostreeFsckCommand(),
		},
	}
}

// repoFlag is the --repo flag every ostree command takes; OSTREE_REPO is its default, as for ostree.
func repoFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "repo", Usage: "path to the OSTree repository", EnvVars: []string{"OSTREE_REPO"}, Required: true}
}

func formatFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "format", Value: "text", Usage: "output format: text or json"}
}

// repoCommand is an ostree subcommand on an existing repository.
type repoCommand struct {
	cli.Command
	json             bool // takes --format text|json
	minArgs, maxArgs int  // the arguments it takes (maxArgs -1: any number)
	argsError        string
	run              func(c *cli.Context, repo *ostree.Repo, asJSON bool) error
}

// command puts --repo (and --format) first among the flags, and makes an Action that checks the
// arguments and --format (usage errors), opens the repository and calls run.
func (r repoCommand) command() *cli.Command {
	cmd := r.Command
	common := []cli.Flag{repoFlag()}
	if r.json {
		common = append(common, formatFlag())
	}
	cmd.Flags = append(common, cmd.Flags...)
	cmd.Action = func(c *cli.Context) error {
		if n := c.NArg(); n < r.minArgs || (r.maxArgs >= 0 && n > r.maxArgs) {
			return usageError(c, "%s", r.argsError)
		}
		var asJSON bool
		if r.json {
			var err error
			if asJSON, err = checkFormat(c); err != nil {
				return err
			}
		}
		repo, err := ostree.Open(c.Context, c.String("repo"))
		if err != nil {
			return err
		}
		return r.run(c, repo, asJSON)
	}
	return &cmd
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// checkFormat reports whether --format asks for JSON; an unknown format is a usage error.
func checkFormat(c *cli.Context) (bool, error) {
	switch f := c.String("format"); f {
	case "text", "humanreadable":
		return false, nil
	case "json":
		return true, nil
	default:
		return false, usageError(c, "unknown --format %q: use text or json", f)
	}
}

// usageError reports a wrong invocation with exit code 2.
func usageError(c *cli.Context, format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf("%s (see '%s --help')", fmt.Sprintf(format, args...), c.Command.HelpName)}
}

// timestampOption is the commit time option: from --timestamp, else from SOURCE_DATE_EPOCH (read
// here: the libraries read no environment), else none (the libraries then use the current time).
func timestampOption[T any](c *cli.Context, with func(time.Time) T) ([]T, error) {
	if ts := c.String("timestamp"); ts != "" {
		t, err := ostree.ParseTimestamp(ts)
		if err != nil {
			return nil, usageError(c, "%v", err)
		}
		return []T{with(t)}, nil
	}
	if sde := os.Getenv("SOURCE_DATE_EPOCH"); sde != "" {
		t, err := ostree.ParseSourceDateEpoch(sde)
		if err != nil {
			return nil, err
		}
		return []T{with(t)}, nil
	}
	return nil, nil
}

// keyValueOptions turns each KEY=VALUE of a repeatable flag into an option, in order.
func keyValueOptions[T any](c *cli.Context, flag string, with func(k, v string) T) ([]T, error) {
	var opts []T
	for _, kv := range c.StringSlice(flag) {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(c, "--%s %q: expected KEY=VALUE", flag, kv)
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
