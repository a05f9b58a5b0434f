// Package cliargs gives a github.com/urfave/cli/v2 application the command line of clap and
// GOption tools: flags anywhere among the arguments, "--" ending them, global flags also after
// the command, one-line usage errors with suggestions, and shell completion that runs nothing.
// It knows nothing of the application beyond its command tree.
package cliargs

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// Why this package: urfave/cli v2 stops parsing flags at the first positional argument and has no
// interspersed mode, but users of clap and GOption tools (upstream bootc, ostree) put flags
// anywhere: 'ostree ls --repo r REF /usr -R', 'bootc status --sysroot DIR'. normalize walks the
// app's command tree, which says which flags take a value, and rewrites the arguments into the
// order urfave expects: global flags, the command path, its flags, "--", the positional
// arguments. On the way it reports, as usage errors, what urfave reports badly or not at all:
// unknown commands and flags (with a suggestion), a flag without its value, a missing
// subcommand or required flag. 'help CMD...' becomes 'CMD... --help'.

// CompletionFlag asks for completions of the last argument (see Complete).
const CompletionFlag = "--generate-bash-completion"

// UsageError is a wrong command line: Msg says what was wrong and what to write instead, Command
// is the command path whose help to see ("bootc status").
type UsageError struct{ Command, Msg string }

func (e *UsageError) Error() string { return fmt.Sprintf("%s; see '%s --help'", e.Msg, e.Command) }

func usageErr(command, format string, a ...any) error {
	return &UsageError{Command: command, Msg: fmt.Sprintf(format, a...)}
}

// cmdline is a command line split by walk.
type cmdline struct {
	leaf                *cli.Command // nil before a command is named
	path                []string     // the command path, starting with the app name
	globals, flags, pos []string
	help, dashdash      bool
	pending             bool // the last flag waits for its value
}

// walk splits args; with strict it stops at the first usage error (a *UsageError).
func walk(app *cli.App, args []string, strict bool) (*cmdline, error) {
	l := &cmdline{path: []string{app.Name}}
	fail := func(format string, a ...any) error { return usageErr(strings.Join(l.path, " "), format, a...) }
	for i := 0; i < len(args); i++ {
		a, subs := args[i], subcommands(app, l.leaf)
		atCommand := len(l.pos) == 0 && len(subs) > 0
		switch {
		case l.dashdash:
			l.pos = append(l.pos, a)
		case a == "--":
			l.dashdash = true
		case a == "-h" || a == "--help" || (a == "help" && atCommand && !l.help):
			l.help = true
		case a == "--version" && l.leaf == nil:
			l.leaf, l.path = findCommand(subs, "version"), append(l.path, "version")
		case strings.HasPrefix(a, "-") && a != "-":
			flags, n := flagsOf(app, l.leaf)
			j := slices.IndexFunc(flags, func(f cli.Flag) bool { return slices.Contains(f.Names(), flagName(a)) })
			if j < 0 && strict {
				return l, fail("unknown flag %s%s", a, Suggest(flagName(a), flagNames(flags), "--"))
			} else if j < 0 {
				continue
			}
			dst := &l.flags
			if j >= n {
				dst = &l.globals
			}
			*dst = append(*dst, a)
			if tv, ok := flags[j].(cli.DocGenerationFlag); !ok || !tv.TakesValue() || strings.Contains(a, "=") {
				continue
			}
			// 'bootc --sysroot status': status is the command, not the value of --sysroot.
			next := i + 1
			if next == len(args) || strings.HasPrefix(args[next], "--") ||
				(atCommand && findCommand(subs, args[next]) != nil && (next+1 == len(args) || findCommand(subs, args[next+1]) == nil)) {
				if l.pending = next == len(args); strict {
					return l, fail("%s needs a value: write %s VALUE", a, a)
				}
				continue
			}
			i, *dst = next, append(*dst, args[next])
		case atCommand && findCommand(subs, a) != nil:
			l.leaf = findCommand(subs, a)
			l.path = append(l.path, l.leaf.Name)
		case atCommand && strict:
			return l, fail("unknown command '%s'%s", a, Suggest(a, commandNames(subs), ""))
		default:
			l.pos = append(l.pos, a)
		}
	}
	return l, nil
}

// Normalize returns args (without the program name) in urfave's order, with the program name
// first, or a *UsageError. noCommand is the hint given when no command is named ("run 'bootc
// status' or another command").
func Normalize(app *cli.App, args []string, noCommand string) ([]string, error) {
	l, err := walk(app, args, true)
	if err != nil {
		return nil, err
	}
	name := strings.Join(l.path, " ")
	out := append(append([]string{app.Name}, l.globals...), l.path[1:]...)
	switch {
	case l.help:
		return append(out, "--help"), nil
	case l.leaf == nil:
		return nil, usageErr(name, "no command given: %s", noCommand)
	case len(l.leaf.Subcommands) > 0:
		return nil, usageErr(name, "'%s' needs a subcommand: %s", name, strings.Join(commandNames(l.leaf.Subcommands), ", "))
	}
	for _, f := range l.leaf.Flags {
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() && !flagGiven(f, l.flags) {
			return nil, usageErr(name, "--%s is required: give --%s VALUE", f.Names()[0], f.Names()[0])
		}
	}
	out = append(out, l.flags...)
	if len(l.pos) > 0 {
		out = append(append(out, "--"), l.pos...)
	}
	return out, nil
}

// flagGiven reports whether f is among the flag arguments or set in its environment variable.
func flagGiven(f cli.Flag, flags []string) bool {
	given := slices.ContainsFunc(flags, func(a string) bool { return strings.HasPrefix(a, "-") && slices.Contains(f.Names(), flagName(a)) })
	if d, ok := f.(cli.DocGenerationFlag); ok && !given {
		given = slices.ContainsFunc(d.GetEnvVars(), func(e string) bool { return os.Getenv(e) != "" })
	}
	return given
}

func flagName(a string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return name
}

// flagsOf lists the command's own flags (the first n), then the global ones.
func flagsOf(app *cli.App, leaf *cli.Command) (flags []cli.Flag, n int) {
	if leaf != nil {
		flags = slices.Clone(leaf.Flags)
	}
	return append(flags, app.Flags...), len(flags)
}

// flagNames are the long names of the visible flags.
func flagNames(flags []cli.Flag) []string {
	names := []string{"help"}
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); !ok || v.IsVisible() {
			names = append(names, f.Names()[0])
		}
	}
	return names
}

// subcommands are the commands that may follow leaf (nil: the app's commands).
func subcommands(app *cli.App, leaf *cli.Command) []*cli.Command {
	if leaf == nil {
		return app.Commands
	}
	return leaf.Subcommands
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	if i := slices.IndexFunc(cmds, func(c *cli.Command) bool { return c.HasName(name) }); i >= 0 {
		return cmds[i]
	}
	return nil
}

func commandNames(cmds []*cli.Command) (names []string) {
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return names
}

// Suggest returns " (did you mean PREFIX+NAME?)" for the name closest to typed, or "".
func Suggest(typed string, names []string, prefix string) string {
	best, score := "", 0.8
	for _, n := range names {
		if s := smetrics.JaroWinkler(typed, n, 0.7, 4); s > score {
			best, score = n, s
		}
	}
	switch {
	case best == "":
		return ""
	case prefix == "":
		return fmt.Sprintf(" (did you mean '%s'?)", best)
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// Complete prints the completions of the last of args (the word being typed; the words before it
// come first): subcommands, or flags for a word starting with '-'. It runs no command, and after
// '--' or a flag that waits for its value it offers nothing (the shell completes file names).
func Complete(app *cli.App, w io.Writer, args []string) {
	cur := ""
	if len(args) > 0 {
		cur, args = args[len(args)-1], args[:len(args)-1]
	}
	l, _ := walk(app, args, false)
	var cands []string
	switch {
	case l.dashdash || l.pending:
	case strings.HasPrefix(cur, "-"):
		flags, _ := flagsOf(app, l.leaf)
		for _, n := range flagNames(flags) {
			cands = append(cands, "--"+n)
		}
	case len(l.pos) == 0:
		cands = commandNames(subcommands(app, l.leaf))
	}
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Fprintln(w, c)
		}
	}
}

// CheckArgs checks that the command got between min and max positional arguments (max -1: any
// number); what names them ("one IMAGE", "the ROOT directory").
func CheckArgs(c *cli.Context, min, max int, what string) error {
	if n := c.NArg(); max >= 0 && n > max {
		return Errorf(c, "unexpected argument %q: %s takes %s", c.Args().Get(max), c.Command.Name, what)
	} else if n < min {
		return Errorf(c, "expected %s, got %d arguments", what, n)
	}
	return nil
}

// Errorf is a *UsageError of the command c runs: what was wrong and what to write instead.
func Errorf(c *cli.Context, format string, a ...any) error {
	name := c.App.Name
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return usageErr(name, format, a...)
}

// WithArgs makes an Action that checks the number of arguments (CheckArgs) before run.
func WithArgs(min, max int, what string, run cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := CheckArgs(c, min, max, what); err != nil {
			return err
		}
		return run(c)
	}
}
