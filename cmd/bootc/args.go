package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"
)

// Why this file: urfave/cli v2 stops parsing flags at the first positional argument and has no
// interspersed mode, but users of clap and GOption tools (upstream bootc, ostree) put flags
// anywhere: 'ostree ls --repo r REF /usr -R', 'bootc status --sysroot DIR'. normalize walks the
// app's command tree, which says which flags take a value, and rewrites the arguments into the
// order urfave expects: global flags, the command path, its flags, "--", the positional
// arguments. On the way it reports, as usage errors (exit 2, one line on stderr), what urfave
// reports badly: unknown commands and flags (with a suggestion), a flag without its value, a
// missing subcommand or required flag. 'help CMD...' becomes 'CMD... --help'.

// completionFlag asks for completions of the last argument (see complete).
const completionFlag = "--generate-bash-completion"

// cmdline is a command line split by walk.
type cmdline struct {
	leaf                *cli.Command // nil before a command is named
	path                []string     // the command path, starting with the app name
	globals, flags, pos []string
	help, dashdash      bool
	pending             bool // the last flag waits for its value
}

func (l *cmdline) helpName() string { return strings.Join(l.path, " ") }

// subcommands are the commands that may come next.
func (l *cmdline) subcommands(app *cli.App) []*cli.Command {
	if l.leaf == nil {
		return app.Commands
	}
	return l.leaf.Subcommands
}

// walk splits args; with strict it stops at the first usage error.
func walk(app *cli.App, args []string, strict bool) (*cmdline, error) {
	l := &cmdline{path: []string{app.Name}}
	for i := 0; i < len(args); i++ {
		a, atCommand := args[i], len(l.pos) == 0 && len(l.subcommands(app)) > 0
		switch {
		case l.dashdash:
			l.pos = append(l.pos, a)
		case a == "--":
			l.dashdash = true
		case a == "-h" || a == "--help":
			l.help = true
		case a == "--version" && l.leaf == nil:
			l.leaf, l.path = findCommand(app.Commands, "version"), append(l.path, "version")
		case strings.HasPrefix(a, "-") && a != "-":
			f, global := lookupFlag(app, l.leaf, a)
			if f == nil {
				if strict {
					return l, usageErr(l.helpName(), "unknown flag %s%s", a, suggest(flagName(a), flagNames(app, l.leaf), "--"))
				}
				continue
			}
			dst := &l.flags
			if global {
				dst = &l.globals
			}
			*dst = append(*dst, a)
			if tv, ok := f.(cli.DocGenerationFlag); !ok || !tv.TakesValue() || strings.Contains(a, "=") {
				continue
			}
			if i+1 == len(args) || strings.HasPrefix(args[i+1], "--") || (atCommand && isCommand(app, l, args, i+1)) {
				if l.pending = i+1 == len(args); strict {
					return l, usageErr(l.helpName(), "%s needs a value: write %s VALUE", a, a)
				}
				continue
			}
			i++
			*dst = append(*dst, args[i])
		case atCommand && a == "help" && !l.help:
			l.help = true
		case atCommand:
			c := findCommand(l.subcommands(app), a)
			if c == nil {
				if strict {
					return l, usageErr(l.helpName(), "unknown command '%s'%s", a, suggest(a, commandNames(l.subcommands(app)), ""))
				}
				l.pos = append(l.pos, a)
				continue
			}
			l.leaf, l.path = c, append(l.path, c.Name)
		default:
			l.pos = append(l.pos, a)
		}
	}
	return l, nil
}

// isCommand reports whether args[i] names a command and what follows it does not, so that in
// 'bootc --sysroot status' status is the command, not the value of --sysroot.
func isCommand(app *cli.App, l *cmdline, args []string, i int) bool {
	cmds := l.subcommands(app)
	return findCommand(cmds, args[i]) != nil && (i+1 == len(args) || findCommand(cmds, args[i+1]) == nil)
}

// normalize returns args in urfave's order (see above), or a usage error.
func normalize(app *cli.App, args []string) ([]string, error) {
	l, err := walk(app, args, true)
	if err != nil {
		return nil, err
	}
	out := append(append([]string{app.Name}, l.globals...), l.path[1:]...)
	switch {
	case l.help:
		return append(out, "--help"), nil
	case l.leaf == nil:
		return nil, usageErr(app.Name, "no command given: run 'bootc status', 'bootc upgrade' or another command")
	case len(l.leaf.Subcommands) > 0:
		return nil, usageErr(l.helpName(), "'%s' needs a subcommand: %s", l.helpName(), strings.Join(commandNames(l.leaf.Subcommands), ", "))
	}
	for _, f := range l.leaf.Flags {
		if r, ok := f.(cli.RequiredFlag); ok && r.IsRequired() && !flagGiven(f, l.flags) {
			return nil, usageErr(l.helpName(), "--%s is required: give --%s VALUE", f.Names()[0], f.Names()[0])
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
	for _, a := range flags {
		if strings.HasPrefix(a, "-") && slices.Contains(f.Names(), flagName(a)) {
			return true
		}
	}
	if d, ok := f.(cli.DocGenerationFlag); ok {
		for _, e := range d.GetEnvVars() {
			if os.Getenv(e) != "" {
				return true
			}
		}
	}
	return false
}

func flagName(a string) string {
	name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
	return name
}

// lookupFlag finds the flag a names among the command's flags, then among the global ones.
func lookupFlag(app *cli.App, leaf *cli.Command, a string) (f cli.Flag, global bool) {
	name := flagName(a)
	if leaf != nil {
		for _, f := range leaf.Flags {
			if slices.Contains(f.Names(), name) {
				return f, false
			}
		}
	}
	for _, f := range app.Flags {
		if slices.Contains(f.Names(), name) {
			return f, true
		}
	}
	return nil, false
}

// flagNames are the long names of the flags a command (or, before one, the app) accepts.
func flagNames(app *cli.App, leaf *cli.Command) []string {
	var names []string
	flags := app.Flags
	if leaf != nil {
		flags = append(slices.Clone(leaf.Flags), flags...)
	}
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); !ok || v.IsVisible() {
			names = append(names, f.Names()[0])
		}
	}
	return append(names, "help")
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

func commandNames(cmds []*cli.Command) []string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	return names
}

// suggest returns " (did you mean PREFIX+NAME?)" for the name closest to typed, or "".
func suggest(typed string, names []string, prefix string) string {
	best, score := "", 0.8
	for _, n := range names {
		if s := smetrics.JaroWinkler(typed, n, 0.7, 4); s > score {
			best, score = n, s
		}
	}
	if best == "" {
		return ""
	}
	if prefix == "" {
		return fmt.Sprintf(" (did you mean '%s'?)", best)
	}
	return fmt.Sprintf(" (did you mean %s%s?)", prefix, best)
}

// complete prints the completions of the last of args (the word being typed; the words before it
// come first): subcommands, or flags for a word starting with '-'. It runs no command, and after
// '--' or a flag that waits for its value it offers nothing (the shell completes file names).
func complete(app *cli.App, w io.Writer, args []string) {
	cur := ""
	if len(args) > 0 {
		cur, args = args[len(args)-1], args[:len(args)-1]
	}
	l, _ := walk(app, args, false)
	if l.dashdash || l.pending {
		return
	}
	var cands []string
	if strings.HasPrefix(cur, "-") {
		for _, n := range flagNames(app, l.leaf) {
			cands = append(cands, "--"+n)
		}
	} else if len(l.pos) == 0 {
		cands = commandNames(l.subcommands(app))
	}
	for _, c := range cands {
		if strings.HasPrefix(c, cur) {
			fmt.Fprintln(w, c)
		}
	}
}
