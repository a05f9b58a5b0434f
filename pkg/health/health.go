// Package health runs a machine's health checks, in greenboot's layout, to decide whether a boot
// succeeded:
//
//	/usr/lib/bootc/health.d/required.d/NAME   from the image: must pass
//	/usr/lib/bootc/health.d/wanted.d/NAME     from the image: a failure only warns
//	/etc/bootc/health.d/required.d/NAME       the admin's, in the same two directories
//	/etc/bootc/health.d/wanted.d/NAME
//
// A check is an executable file (a script with a #! line, or a binary); it passes by exiting 0.
// As with systemd drop-ins, a check in /etc replaces the check of the same name and kind in
// /usr/lib, and a symlink to /dev/null in /etc disables it. Names starting with '.' are ignored.
// The required checks run first, then the wanted ones, each kind in name order, one at a time,
// each with a timeout (WithTimeout), from "/", with the environment of the caller; every check
// runs even after one failed, so that the log tells everything at once. Each line a check writes
// (standard output and error together) goes to the logger (WithLogger), and the last lines are
// kept in the Report.
//
// A tree that cannot work is refused before anything runs (ErrNotExecutable, a *TreeError that
// lists every problem): health.d, required.d or wanted.d not a directory or without search
// permission, a check that is not a regular file or symlink, or a regular file without execute
// permission. CheckTree applies the same rules to a listing, so that an image can be refused
// before it is deployed (package host checks the image's commit with it).
package health

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// The health check directories, relative to the root filesystem.
const (
	// LibDir holds the checks the image ships.
	LibDir = "usr/lib/bootc/health.d"
	// EtcDir holds the admin's checks; they replace the image's of the same name.
	EtcDir = "etc/bootc/health.d"
)

// Kind says what a failing check means.
type Kind string

// The kinds of check, each in a subdirectory of health.d named KIND.d.
const (
	// Required checks must pass for the boot to count as good.
	Required Kind = "required"
	// Wanted checks only warn when they fail.
	Wanted Kind = "wanted"
)

var kinds = []Kind{Required, Wanted}

// DefaultTimeout is how long one check may run unless WithTimeout says otherwise.
const DefaultTimeout = 2 * time.Minute

// Errors callers test for.
var (
	// ErrNotExecutable: a health check directory cannot be searched, or a check cannot be
	// executed (see TreeError).
	ErrNotExecutable = errors.New("health checks that cannot run")
	// ErrFailed: a required check failed (see FailedError).
	ErrFailed = errors.New("a required health check failed")
)

// TreeError lists what makes a health.d tree unusable.
type TreeError struct {
	// Problems each name a path and what is wrong with it, in path order.
	Problems []string
}

func (e *TreeError) Error() string {
	return fmt.Sprintf("%s: %s (a check must be an executable file, e.g. chmod 0755, and its directories searchable)", ErrNotExecutable, strings.Join(e.Problems, "; "))
}

// Is makes the error match ErrNotExecutable.
func (e *TreeError) Is(target error) bool { return target == ErrNotExecutable }

// FailedError reports the required checks that failed.
type FailedError struct {
	// Failed are the failing required checks, in the order they ran.
	Failed []Result
}

func (e *FailedError) Error() string {
	var b strings.Builder
	for i, r := range e.Failed {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "required health check %s %s", r.Name, r.Outcome())
		if r.Output != "" {
			fmt.Fprintf(&b, ", last output: %q", r.Output)
		}
	}
	return b.String()
}

// Is makes the error match ErrFailed.
func (e *FailedError) Is(target error) bool { return target == ErrFailed }

// Result is what one check did.
type Result struct {
	// Name is KIND.d/NAME, e.g. "required.d/20-network".
	Name string
	Kind Kind
	// Path is the file that ran.
	Path string
	// ExitCode is the exit status; -1 when the check could not start or was killed (by the
	// timeout, TimedOut, or by a signal).
	ExitCode int
	TimedOut bool
	// Err says why the check could not start, or the signal that killed it ("" otherwise).
	Err      string
	Duration time.Duration
	// Output is the last lines the check wrote (at most OutputTailLines lines and
	// OutputTailBytes bytes).
	Output string
}

// The bounds of Result.Output.
const (
	OutputTailLines = 10
	OutputTailBytes = 2048
)

// Passed reports whether the check exited 0.
func (r *Result) Passed() bool { return r.ExitCode == 0 && !r.TimedOut && r.Err == "" }

// Outcome says how the check ended: "passed", "failed with exit status N", "timed out after
// D", "could not run: ...".
func (r *Result) Outcome() string {
	switch {
	case r.TimedOut:
		return fmt.Sprintf("timed out after %s", r.Duration.Round(time.Second))
	case r.Err != "":
		return "could not run: " + r.Err
	case r.ExitCode != 0:
		return fmt.Sprintf("failed with exit status %d", r.ExitCode)
	}
	return "passed"
}

// Report is what Run did: every check, in the order they ran.
type Report struct {
	Checks []Result
}

// Failed returns the required checks that failed.
func (r *Report) Failed() []Result { return r.failed(Required) }

// Warnings returns the wanted checks that failed.
func (r *Report) Warnings() []Result { return r.failed(Wanted) }

func (r *Report) failed(k Kind) []Result {
	var out []Result
	for _, c := range r.Checks {
		if c.Kind == k && !c.Passed() {
			out = append(out, c)
		}
	}
	return out
}

// Option configures Run.
type Option func(*config)

type config struct {
	timeout time.Duration
	log     *slog.Logger
}

// WithTimeout sets how long one check may run (default DefaultTimeout); then it is killed, with
// every process it started, and fails.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger sets the logger that receives each check's start, outcome and output lines
// (default: discard). The CLI logs to standard error, which systemd puts in the journal.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Run runs the health checks of the root filesystem at root ("/" on the running system) and
// reports each one. The error is a *TreeError (ErrNotExecutable, nothing ran) for a tree that
// cannot work, a *FailedError (ErrFailed, with the full report) when a required check failed, or
// ctx's error when it ended. A failing wanted check is logged as a warning and listed in
// Report.Warnings only.
func Run(ctx context.Context, root string, opts ...Option) (*Report, error) {
	c := &config{timeout: DefaultTimeout}
	for _, o := range opts {
		o(c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	checks, err := discover(root)
	if err != nil {
		return nil, err
	}
	rep := &Report{}
	for _, ch := range checks {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		rep.Checks = append(rep.Checks, c.run(ctx, ch))
	}
	if err := ctx.Err(); err != nil { // the last check was cut off
		return rep, err
	}
	if f := rep.Failed(); len(f) > 0 {
		return rep, &FailedError{Failed: f}
	}
	return rep, nil
}

// check is a check to run.
type check struct {
	kind       Kind
	name, path string
}

// discover lists the checks of both directories, /etc replacing (or masking) /usr/lib, after
// checking both trees.
func discover(root string) ([]check, error) {
	var problems []string
	found := map[Kind]map[string]string{}
	for _, dir := range []string{LibDir, EtcDir} {
		files, err := list(root, dir)
		if err != nil {
			return nil, err
		}
		if err := CheckTree(dir, files); err != nil {
			var te *TreeError
			if !errors.As(err, &te) {
				return nil, err
			}
			problems = append(problems, te.Problems...)
			continue
		}
		for _, f := range files {
			k, name, ok := checkName(dir, f.Path)
			if !ok {
				continue
			}
			if found[k] == nil {
				found[k] = map[string]string{}
			}
			if f.Mode.Type() == fs.ModeSymlink && f.Target == os.DevNull {
				delete(found[k], name) // masked
				continue
			}
			found[k][name] = filepath.Join(root, filepath.FromSlash(f.Path))
		}
	}
	if len(problems) > 0 {
		return nil, &TreeError{Problems: rootPaths(root, problems)}
	}
	var out []check
	for _, k := range kinds {
		names := make([]string, 0, len(found[k]))
		for n := range found[k] {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			out = append(out, check{kind: k, name: string(k) + ".d/" + n, path: found[k][n]})
		}
	}
	return out, nil
}

// rootPaths puts root in front of the paths CheckTree named (each problem starts with one).
func rootPaths(root string, problems []string) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = strings.TrimSuffix(root, "/") + p
	}
	return out
}

// list lists dir (relative to root) and its two check directories with Lstat, as CheckTree
// takes them; nothing when dir does not exist.
func list(root, dir string) ([]File, error) {
	var files []File
	add := func(rel string) (bool, error) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		st, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("health checks: %w", err)
		}
		f := File{Path: rel, Mode: st.Mode()}
		if st.Mode().Type() == fs.ModeSymlink {
			if f.Target, err = os.Readlink(p); err != nil {
				return false, fmt.Errorf("health checks: %w", err)
			}
		}
		files = append(files, f)
		return st.IsDir() && st.Mode()&0o111 != 0, nil
	}
	if ok, err := add(dir); !ok || err != nil {
		return files, err
	}
	for _, k := range kinds {
		sub := path.Join(dir, string(k)+".d")
		if ok, err := add(sub); !ok || err != nil {
			if err != nil {
				return nil, err
			}
			continue
		}
		ents, err := os.ReadDir(filepath.Join(root, filepath.FromSlash(sub)))
		if err != nil {
			return nil, fmt.Errorf("health checks: %w", err)
		}
		for _, e := range ents {
			if _, err := add(path.Join(sub, e.Name())); err != nil {
				return nil, err
			}
		}
	}
	return files, nil
}

// File is an entry of a health.d tree as CheckTree sees it.
type File struct {
	// Path is slash-separated, relative to the root filesystem, e.g.
	// "usr/lib/bootc/health.d/required.d/20-network".
	Path string
	// Mode holds the type and permission bits (as os.Lstat reports them: a symlink is itself).
	Mode fs.FileMode
	// Target is a symlink's target.
	Target string
}

// CheckTree checks the health.d directory dir (LibDir or EtcDir) from a listing of it: files
// holds dir itself (absent: no checks, nothing to refuse), its required.d and wanted.d, and
// their entries; anything else is ignored. It returns a *TreeError (ErrNotExecutable) naming
// every problem: dir, required.d or wanted.d that is not a directory or lacks search permission
// (no x bit), or a check that is neither a regular file nor a symlink, or a regular file without
// execute permission (no x bit). A symlink passes (its target is checked when it runs).
func CheckTree(dir string, files []File) error {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	var problems []string
	bad := map[string]bool{}
	for _, f := range sorted {
		rel, ok := strings.CutPrefix(f.Path, dir)
		if !ok || rel != "" && rel[0] != '/' {
			continue
		}
		if bad[path.Dir(f.Path)] { // inside a directory that is refused already
			bad[f.Path] = true
			continue
		}
		rel = strings.TrimPrefix(rel, "/")
		isDir := rel == "" || rel == "required.d" || rel == "wanted.d"
		if _, _, check := checkName(dir, f.Path); !isDir && !check {
			continue
		}
		var why string
		switch t := f.Mode.Type(); {
		case isDir && t != fs.ModeDir:
			why = "is not a directory"
		case isDir && f.Mode&0o111 == 0:
			why = fmt.Sprintf("is a directory without search permission (mode %#o)", f.Mode.Perm())
		case isDir, t == fs.ModeSymlink:
		case t == fs.ModeDir:
			why = "is a directory, not a check"
		case t != 0:
			why = "is not a regular file"
		case f.Mode&0o111 == 0:
			why = fmt.Sprintf("is not executable (mode %#o)", f.Mode.Perm())
		}
		if why != "" {
			problems = append(problems, "/"+f.Path+" "+why)
			bad[f.Path] = true
		}
	}
	if len(problems) > 0 {
		return &TreeError{Problems: problems}
	}
	return nil
}

// checkName returns the kind and name of the check at p, a path under dir; ok is false for
// anything but a direct entry of required.d or wanted.d not starting with '.'.
func checkName(dir, p string) (Kind, string, bool) {
	rel, ok := strings.CutPrefix(p, dir+"/")
	if !ok {
		return "", "", false
	}
	sub, name, ok := strings.Cut(rel, "/")
	if !ok || name == "" || strings.Contains(name, "/") || name[0] == '.' {
		return "", "", false
	}
	for _, k := range kinds {
		if sub == string(k)+".d" {
			return k, name, true
		}
	}
	return "", "", false
}

// run runs one check with the timeout, its process group killed at the end of it.
func (c *config) run(ctx context.Context, ch check) Result {
	res := Result{Name: ch.name, Kind: ch.kind, Path: ch.path, ExitCode: -1}
	log := c.log.With("check", ch.name)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	out := &lineWriter{log: c.log, prefix: ch.name + ": "}
	cmd := exec.CommandContext(ctx, ch.path)
	cmd.Dir, cmd.Stdout, cmd.Stderr = "/", out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second // a child that keeps the output open does not hold us up
	log.Info("running health check", "path", ch.path)
	start := time.Now()
	err := cmd.Run()
	res.Duration = time.Since(start)
	out.flush()
	res.Output = out.tail()
	var exit *exec.ExitError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.TimedOut = true
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.ExitCode = exit.ExitCode()
	case errors.As(err, &exit):
		res.Err = exit.String() // "signal: killed"
	case err != nil:
		res.Err = err.Error()
	default:
		res.ExitCode = 0
	}
	switch {
	case res.Passed():
		log.Info("health check passed", "duration", res.Duration.Round(time.Millisecond))
	case ch.kind == Wanted:
		log.Warn("wanted health check "+res.Outcome()+" (only a warning)", "duration", res.Duration.Round(time.Millisecond))
	default:
		log.Error("required health check "+res.Outcome(), "duration", res.Duration.Round(time.Millisecond))
	}
	return res
}

// lineWriter logs each line a check writes and keeps the last ones. Stdout and stderr share
// it, so exec writes from one goroutine.
type lineWriter struct {
	log    *slog.Logger
	prefix string
	part   []byte
	last   []string
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	if len(w.part) > 64<<10 { // a very long line: log it in pieces
		w.line(string(w.part))
		w.part = nil
	}
	return len(p), nil
}

func (w *lineWriter) line(s string) {
	s = strings.TrimRight(s, "\r")
	w.log.Info(w.prefix + s)
	if len(s) > OutputTailBytes {
		s = s[len(s)-OutputTailBytes:]
	}
	if w.last = append(w.last, s); len(w.last) > OutputTailLines {
		w.last = w.last[1:]
	}
}

func (w *lineWriter) flush() {
	if len(w.part) > 0 {
		w.line(string(w.part))
		w.part = nil
	}
}

// tail is the last lines, at most OutputTailBytes of them.
func (w *lineWriter) tail() string {
	s := strings.Join(w.last, "\n")
	if len(s) > OutputTailBytes {
		s = s[len(s)-OutputTailBytes:]
	}
	return s
}
