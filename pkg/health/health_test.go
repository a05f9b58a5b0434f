package health_test

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/pkg/health"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// script writes an executable shell script at root/rel.
func script(t *testing.T, root, rel, body string) {
	t.Helper()
	p := filepath.Join(root, rel)
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
}

func names(rs []health.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// TestRun: checks of both directories run, required before wanted, each in name order; /etc
// replaces /usr/lib's check of the same name and a /dev/null symlink masks one; a failing
// wanted check only warns; a failing required check is a FailedError naming it, its exit status
// and its last lines of output, after every check ran; output lines go to the logger.
func TestRun(t *testing.T) {
	lib, etc := health.LibDir, health.EtcDir
	for _, tc := range []struct {
		name     string
		scripts  map[string]string
		ran      []string
		failed   []string
		warnings []string
	}{
		{"no checks", nil, nil, nil, nil},
		{"pass", map[string]string{
			lib + "/required.d/20-b": "echo b", lib + "/required.d/10-a": "echo a", lib + "/wanted.d/05-w": "true",
		}, []string{"required.d/10-a", "required.d/20-b", "wanted.d/05-w"}, nil, nil},
		{"required fails", map[string]string{
			lib + "/required.d/10-net": "echo probing\necho 'no route' >&2\nexit 3", lib + "/required.d/20-ok": "true",
		}, []string{"required.d/10-net", "required.d/20-ok"}, []string{"required.d/10-net"}, nil},
		{"wanted fails", map[string]string{
			lib + "/required.d/10-ok": "true", lib + "/wanted.d/10-slow-disk": "exit 1",
		}, []string{"required.d/10-ok", "wanted.d/10-slow-disk"}, nil, []string{"wanted.d/10-slow-disk"}},
		{"etc overrides usr/lib", map[string]string{
			lib + "/required.d/10-net": "exit 3", etc + "/required.d/10-net": "exit 0", etc + "/wanted.d/30-mine": "true",
		}, []string{"required.d/10-net", "wanted.d/30-mine"}, nil, nil},
		{"same name, other kind", map[string]string{
			lib + "/required.d/10-x": "true", etc + "/wanted.d/10-x": "exit 1",
		}, []string{"required.d/10-x", "wanted.d/10-x"}, nil, []string{"wanted.d/10-x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, body := range tc.scripts {
				script(t, root, rel, body)
			}
			var logs bytes.Buffer
			rep, err := health.Run(t.Context(), root, health.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			if got := strings.Join(names(rep.Checks), " "); got != strings.Join(tc.ran, " ") {
				t.Errorf("ran %q, want %q", got, strings.Join(tc.ran, " "))
			}
			if got := strings.Join(names(rep.Warnings()), " "); got != strings.Join(tc.warnings, " ") {
				t.Errorf("warnings %q, want %q", got, strings.Join(tc.warnings, " "))
			}
			if tc.failed == nil {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				return
			}
			var fe *health.FailedError
			if !errors.As(err, &fe) || !errors.Is(err, health.ErrFailed) || strings.Join(names(fe.Failed), " ") != strings.Join(tc.failed, " ") {
				t.Fatalf("Run: %v, want the failure of %v", err, tc.failed)
			}
			f := fe.Failed[0]
			if f.ExitCode != 3 || f.Output != "probing\nno route" || f.Path != filepath.Join(root, lib, "required.d/10-net") {
				t.Errorf("failed check: %+v", f)
			}
			if !strings.Contains(err.Error(), "required health check required.d/10-net failed with exit status 3, last output: \"probing\\nno route\"") {
				t.Errorf("error: %v", err)
			}
			if !strings.Contains(logs.String(), "required.d/10-net: no route") || !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("the log lacks the output or the failure:\n%s", logs.String())
			}
		})
	}
}

// TestRunMasked: a symlink to /dev/null in /etc disables the image's check of that name.
func TestRunMasked(t *testing.T) {
	root := t.TempDir()
	script(t, root, health.LibDir+"/required.d/10-net", "exit 3")
	script(t, root, health.LibDir+"/required.d/20-ok", "true")
	must(t, os.MkdirAll(filepath.Join(root, health.EtcDir, "required.d"), 0o755))
	must(t, os.Symlink("/dev/null", filepath.Join(root, health.EtcDir, "required.d/10-net")))
	rep, err := health.Run(t.Context(), root)
	if err != nil || strings.Join(names(rep.Checks), " ") != "required.d/20-ok" {
		t.Fatalf("Run: %+v, %v", rep, err)
	}
}

// TestRunRefusesUnusableTree: a check without execute permission, a directory without search
// permission, a directory where a check belongs and a file where a directory belongs refuse
// the whole run (nothing runs), naming every problem.
func TestRunRefusesUnusableTree(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, root string)
		want  []string
	}{
		{"script not executable", func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, health.LibDir, "required.d/20-ok"), 0o644))
		}, []string{"/usr/lib/bootc/health.d/required.d/20-ok is not executable (mode 0644)"}},
		{"etc script not executable", func(t *testing.T, root string) {
			script(t, root, health.EtcDir+"/wanted.d/50-mine", "true")
			must(t, os.Chmod(filepath.Join(root, health.EtcDir, "wanted.d/50-mine"), 0o600))
		}, []string{"/etc/bootc/health.d/wanted.d/50-mine is not executable (mode 0600)"}},
		{"required.d not searchable", func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, health.LibDir, "required.d"), 0o644))
		}, []string{"/usr/lib/bootc/health.d/required.d is a directory without search permission (mode 0644)"}},
		{"health.d not searchable", func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, health.LibDir), 0o600))
		}, []string{"/usr/lib/bootc/health.d is a directory without search permission (mode 0600)"}},
		{"directory as a check", func(t *testing.T, root string) {
			must(t, os.Mkdir(filepath.Join(root, health.LibDir, "required.d/30-dir"), 0o755))
		}, []string{"/usr/lib/bootc/health.d/required.d/30-dir is a directory, not a check"}},
		{"file as wanted.d", func(t *testing.T, root string) {
			must(t, os.WriteFile(filepath.Join(root, health.LibDir, "wanted.d"), nil, 0o755))
		}, []string{"/usr/lib/bootc/health.d/wanted.d is not a directory"}},
		{"two problems", func(t *testing.T, root string) {
			must(t, os.Chmod(filepath.Join(root, health.LibDir, "required.d/20-ok"), 0o644))
			script(t, root, health.EtcDir+"/required.d/10-x", "true")
			must(t, os.Chmod(filepath.Join(root, health.EtcDir, "required.d/10-x"), 0o644))
		}, []string{"/usr/lib/bootc/health.d/required.d/20-ok is not executable", "/etc/bootc/health.d/required.d/10-x is not executable"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			marker := filepath.Join(t.TempDir(), "ran")
			script(t, root, health.LibDir+"/required.d/10-marker", "touch "+marker)
			script(t, root, health.LibDir+"/required.d/20-ok", "true")
			tc.setup(t, root)
			rep, err := health.Run(t.Context(), root)
			var te *health.TreeError
			if !errors.Is(err, health.ErrNotExecutable) || !errors.As(err, &te) || rep != nil {
				t.Fatalf("Run: %+v, %v; want a TreeError", rep, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), filepath.Join(root, w)) {
					t.Errorf("error lacks %q: %v", filepath.Join(root, w), err)
				}
			}
			if len(te.Problems) != len(tc.want) {
				t.Errorf("problems %q, want %d", te.Problems, len(tc.want))
			}
			if _, err := os.Stat(marker); err == nil {
				t.Error("a check ran although the tree was refused")
			}
		})
	}
}

// TestRunTimeout: a check that outlives its timeout is killed with the processes it started
// (which keep its output open), fails as timed out, and the next check still runs.
func TestRunTimeout(t *testing.T) {
	root := t.TempDir()
	script(t, root, health.LibDir+"/required.d/10-hang", "echo waiting\nsleep 60 &\nsleep 60")
	script(t, root, health.LibDir+"/required.d/20-ok", "true")
	start := time.Now()
	rep, err := health.Run(t.Context(), root, health.WithTimeout(300*time.Millisecond))
	if took := time.Since(start); took > 4*time.Second {
		t.Errorf("Run took %s: the hung check was not killed with its children", took)
	}
	var fe *health.FailedError
	if !errors.As(err, &fe) || len(fe.Failed) != 1 || !fe.Failed[0].TimedOut || fe.Failed[0].Output != "waiting" {
		t.Fatalf("Run: %v; want the timeout of 10-hang", err)
	}
	if !strings.Contains(err.Error(), "required.d/10-hang timed out after") || len(rep.Checks) != 2 || !rep.Checks[1].Passed() {
		t.Errorf("report %+v, error %v", rep.Checks, err)
	}
}

// TestRunCannotStart: a check that cannot be executed (no #! line) fails with the reason.
func TestRunCannotStart(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, health.LibDir, "required.d/10-text")
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte("\x00\x01not a program"), 0o755))
	_, err := health.Run(t.Context(), root)
	var fe *health.FailedError
	if !errors.As(err, &fe) || fe.Failed[0].Err == "" || !strings.Contains(err.Error(), "could not run: ") {
		t.Fatalf("Run: %v", err)
	}
}

// TestOutputTail: only the last lines are kept.
func TestOutputTail(t *testing.T) {
	root := t.TempDir()
	script(t, root, health.LibDir+"/required.d/10-chatty", "i=0; while [ $i -lt 50 ]; do echo line$i; i=$((i+1)); done; printf 'no newline'; exit 1")
	_, err := health.Run(t.Context(), root)
	var fe *health.FailedError
	if !errors.As(err, &fe) {
		t.Fatalf("Run: %v", err)
	}
	lines := strings.Split(fe.Failed[0].Output, "\n")
	if len(lines) != health.OutputTailLines || lines[0] != "line41" || lines[len(lines)-1] != "no newline" {
		t.Errorf("tail: %q", lines)
	}
}

// TestCheckTree covers the rules on listings, as package host passes a commit's tree.
func TestCheckTree(t *testing.T) {
	dir := health.LibDir
	ok := []health.File{
		{Path: dir, Mode: fs.ModeDir | 0o755},
		{Path: dir + "/README", Mode: 0o644},
		{Path: dir + "/required.d", Mode: fs.ModeDir | 0o755},
		{Path: dir + "/required.d/10-a", Mode: 0o755},
		{Path: dir + "/required.d/20-link", Mode: fs.ModeSymlink | 0o777, Target: "/usr/bin/true"},
		{Path: dir + "/required.d/.hidden", Mode: 0o644},
		{Path: dir + "/other/x", Mode: 0o644},
	}
	if err := health.CheckTree(dir, ok); err != nil {
		t.Errorf("a good tree: %v", err)
	}
	if err := health.CheckTree(dir, nil); err != nil {
		t.Errorf("no tree: %v", err)
	}
	bad := append(ok[:len(ok):len(ok)],
		health.File{Path: dir + "/wanted.d", Mode: fs.ModeDir | 0o644},
		health.File{Path: dir + "/wanted.d/10-hidden-behind", Mode: 0o644},
		health.File{Path: dir + "/required.d/30-fifo", Mode: fs.ModeNamedPipe | 0o755},
	)
	err := health.CheckTree(dir, bad)
	var te *health.TreeError
	if !errors.As(err, &te) || strings.Join(te.Problems, "\n") != "/"+dir+"/required.d/30-fifo is not a regular file\n/"+dir+"/wanted.d is a directory without search permission (mode 0644)" {
		t.Errorf("CheckTree: %v", err)
	}
}
