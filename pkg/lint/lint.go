// Package lint checks a container image's root filesystem for the mistakes that make a bootable
// container image fail to install, upgrade or boot: `bootc container lint` (spec §5.2).
//
// Each lint is one function in a fixed registry (Lints). A lint is fatal (the image will not
// install or is all but sure to fail at runtime) or a warning (probably a mistake). Some lints
// apply only to the running root (the image linted from inside, as in a Containerfile's
// `RUN bootc container lint`) or only to an alternative root (a tree given by path).
//
// Lints read the tree through an *os.Root: they never follow a symlink out of it, walk without
// following symlinks and without crossing into other filesystems (mount points), and stream
// directory by directory rather than holding the tree.
package lint

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Type is how bad a failing lint is.
type Type int

const (
	// Fatal: the system will not install, or is all but sure to fail at runtime.
	Fatal Type = iota
	// Warning: not fatal, but something that is probably a mistake.
	Warning
)

func (t Type) String() string {
	if t == Fatal {
		return "fatal"
	}
	return "warning"
}

// MarshalText writes the type as its String.
func (t Type) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// RootType says which roots a lint applies to.
type RootType int

const (
	// AnyRoot lints apply to every root.
	AnyRoot RootType = iota
	// RunningRoot lints apply only when the root linted is "/" (inside the image being built).
	RunningRoot
	// AlternativeRoot lints apply only to a root given by path.
	AlternativeRoot
)

func (r RootType) String() string {
	switch r {
	case RunningRoot:
		return "running"
	case AlternativeRoot:
		return "alternative"
	}
	return ""
}

// MarshalText writes the root type as its String ("" for AnyRoot).
func (r RootType) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// checkFunc runs one lint on root. It returns the problem found ("" when the lint passes); an
// error means the lint could not run at all (an I/O error, a cancelled context).
type checkFunc func(ctx context.Context, root *Root) (string, error)

// Lint is one check of the registry. Its JSON and YAML forms are bootc's `container lint --list`
// entries: name, type ("fatal" or "warning"), description and, unless it applies to every root,
// root-type ("running" or "alternative").
type Lint struct {
	Name        string   `json:"name" yaml:"name"`
	Type        Type     `json:"type" yaml:"type"`
	Description string   `json:"description" yaml:"description"`
	RootType    RootType `json:"root-type,omitempty" yaml:"root-type,omitempty"`
	check       checkFunc
}

// Lints returns the registry, sorted by name (the order the lints run in).
func Lints() []Lint {
	l := append([]Lint(nil), registry...)
	sort.Slice(l, func(i, j int) bool { return l[i].Name < l[j].Name })
	return l
}

// Names returns the names of all lints, sorted.
func Names() []string {
	var names []string
	for _, l := range Lints() {
		names = append(names, l.Name)
	}
	return names
}

// ErrUnknownLint means a lint name (given to WithSkip) is not in the registry.
var ErrUnknownLint = errors.New("unknown lint")

// Status is the outcome of one lint.
type Status string

const (
	Passed  Status = "passed"
	Failed  Status = "failed"
	Skipped Status = "skipped"
)

// Result is the outcome of one lint on one root.
type Result struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Status Status `json:"status"`
	// Message says what is wrong (failed lints only); it names the offending paths.
	Message string `json:"message,omitempty"`
}

// Report is the outcome of Run: every lint's result, in the order they ran, and the counts.
type Report struct {
	Results  []Result `json:"results"`
	Passed   int      `json:"passed"`
	Skipped  int      `json:"skipped"`
	Warnings int      `json:"warnings"`
	Fatal    int      `json:"fatal"`
}

// Failures is the number of failures that make the lint fail: the fatal ones, plus the warnings
// if fatalWarnings.
func (r *Report) Failures(fatalWarnings bool) int {
	if fatalWarnings {
		return r.Fatal + r.Warnings
	}
	return r.Fatal
}

// Text is the report as bootc prints it: the failures, then the counts.
func (r *Report) Text() string {
	var b strings.Builder
	for _, res := range r.Results {
		switch {
		case res.Status == Failed && res.Type == Fatal.String():
			fmt.Fprintf(&b, "Failed lint: %s: %s\n", res.Name, res.Message)
		case res.Status == Failed:
			fmt.Fprintf(&b, "Lint warning: %s: %s\n", res.Name, res.Message)
		}
	}
	fmt.Fprintf(&b, "Checks passed: %d\n", r.Passed)
	for _, c := range []struct {
		what string
		n    int
	}{{"Checks skipped", r.Skipped}, {"Warnings", r.Warnings}} {
		if c.n > 0 {
			fmt.Fprintf(&b, "%s: %d\n", c.what, c.n)
		}
	}
	return b.String()
}

// Option configures Run.
//
// Defaults: no lint is skipped; the root type is RunningRoot if the root is "/" (after making it
// absolute and resolving symlinks), else AlternativeRoot; lists of offending paths in messages
// are cut to the first 5, with "and N more".
type Option func(*config)

type config struct {
	skip     []string
	rootType *RootType
	maxShown int
}

// WithSkip skips the named lints; a name not in the registry makes Run fail with ErrUnknownLint.
func WithSkip(names ...string) Option { return func(c *config) { c.skip = append(c.skip, names...) } }

// WithRootType runs the lints as for a running root (RunningRoot) or an alternative root
// (AlternativeRoot), instead of deciding from the path.
func WithRootType(t RootType) Option { return func(c *config) { c.rootType = &t } }

// WithNoTruncate lists every offending path in messages.
func WithNoTruncate() Option { return func(c *config) { c.maxShown = -1 } }

// CheckNames returns ErrUnknownLint, naming the valid lints, if a name is not in the registry.
func CheckNames(names ...string) error {
	valid := Names()
	for _, n := range names {
		if _, ok := find(n); !ok {
			return fmt.Errorf("%w %q: valid lints are %s", ErrUnknownLint, n, strings.Join(valid, ", "))
		}
	}
	return nil
}

func find(name string) (Lint, bool) {
	for _, l := range registry {
		if l.Name == name {
			return l, true
		}
	}
	return Lint{}, false
}

// Run runs every lint on the root filesystem at rootfs, in name order, and reports each result.
// A lint that cannot run (an I/O error) stops Run with that error; lints that find problems do
// not: the report says which failed.
func Run(ctx context.Context, rootfs string, opts ...Option) (*Report, error) {
	cfg := &config{maxShown: 5}
	for _, o := range opts {
		o(cfg)
	}
	if err := CheckNames(cfg.skip...); err != nil {
		return nil, err
	}
	skip := map[string]bool{}
	for _, n := range cfg.skip {
		skip[n] = true
	}
	rootType := AlternativeRoot
	if cfg.rootType != nil {
		rootType = *cfg.rootType
	} else if isRunningRoot(rootfs) {
		rootType = RunningRoot
	}
	root, err := openRoot(rootfs, cfg.maxShown)
	if err != nil {
		return nil, err
	}
	defer root.Close()

	rep := &Report{}
	for _, l := range Lints() {
		res := Result{Name: l.Name, Type: l.Type.String()}
		if skip[l.Name] || (l.RootType != AnyRoot && l.RootType != rootType) {
			res.Status = Skipped
			rep.Skipped++
			rep.Results = append(rep.Results, res)
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		msg, err := l.check(ctx, root)
		if err != nil {
			return nil, fmt.Errorf("running lint %s: %w", l.Name, err)
		}
		switch {
		case msg == "":
			res.Status = Passed
			rep.Passed++
		case l.Type == Fatal:
			res.Status, res.Message = Failed, msg
			rep.Fatal++
		default:
			res.Status, res.Message = Failed, msg
			rep.Warnings++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

// isRunningRoot reports whether rootfs is "/".
func isRunningRoot(rootfs string) bool {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return false
	}
	if resolved, err := filepath.EvalSymlinks(abs); err == nil {
		abs = resolved
	}
	return abs == "/"
}

// Open checks that rootfs is a directory that the lints can read.
func openRoot(rootfs string, maxShown int) (*Root, error) {
	abs, err := filepath.Abs(rootfs)
	if err != nil {
		return nil, fmt.Errorf("lint root %s: %w", rootfs, err)
	}
	r, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("lint root: %w", err)
	}
	fi, err := r.Lstat(".")
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("lint root %s: %w", rootfs, err)
	}
	return &Root{root: r, path: abs, dev: devOf(fi), mounts: mountPoints(abs), maxShown: maxShown}, nil
}
