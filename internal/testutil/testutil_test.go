package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recordingTB captures Skipf/Fatalf instead of ending the goroutine, so the
// helpers' decisions can be tested.
type recordingTB struct {
	testing.TB
	skipped, fatal string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.skipped = fmt.Sprintf(format, args...)
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.fatal = fmt.Sprintf(format, args...)
}

func TestRequireToolPresent(t *testing.T) {
	rec := &recordingTB{TB: t}
	RequireTool(rec, "sh", "true")
	if rec.skipped != "" || rec.fatal != "" {
		t.Fatalf("RequireTool(sh, true): skipped=%q fatal=%q", rec.skipped, rec.fatal)
	}
}

func TestRequireToolMissing(t *testing.T) {
	const tool = "getfattr-does-not-exist-bootc"
	for _, ci := range []string{"", "false", "true", "1"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			rec := &recordingTB{TB: t}
			RequireTool(rec, "sh", tool)
			wantFatal := ci == "true" || ci == "1"
			msg := rec.skipped
			if wantFatal {
				msg = rec.fatal
				if rec.skipped != "" {
					t.Errorf("skipped under CI: %q", rec.skipped)
				}
			} else if rec.fatal != "" {
				t.Errorf("failed outside CI: %q", rec.fatal)
			}
			if !strings.Contains(msg, tool) || !strings.Contains(msg, "make deps") {
				t.Errorf("message %q should name the tool and `make deps`", msg)
			}
		})
	}
}

func TestRequireToolNamesPackage(t *testing.T) {
	if got := DebianPackage("setfattr"); got != "attr" {
		t.Errorf("DebianPackage(setfattr) = %q, want attr", got)
	}
	if got := DebianPackage("ostree"); got != "ostree" {
		t.Errorf("DebianPackage(ostree) = %q, want ostree", got)
	}
}

func TestRun(t *testing.T) {
	if got := Run(t, "sh", "-c", "echo out; echo err >&2"); got != "out\n" {
		t.Errorf("Run stdout = %q, want %q", got, "out\n")
	}
}

func TestRunFailureReportsStderr(t *testing.T) {
	rec := &recordingTB{TB: t}
	Run(rec, "sh", "-c", "echo first line >&2; echo second line >&2; exit 3")
	for _, want := range []string{"first line", "second line", "exit status 3", "sh -c"} {
		if !strings.Contains(rec.fatal, want) {
			t.Errorf("failure message %q lacks %q", rec.fatal, want)
		}
	}
}

// A Go tool (not a Debian package) is looked for in ToolsBin too, found there it is put on PATH,
// and missing it is reported with its go install line, failing under CI.
func TestRequireToolGoTool(t *testing.T) {
	const tool = "bootc-test-go-tool"
	goTools[tool] = "example.com/tool@v1"
	t.Cleanup(func() { delete(goTools, tool) })
	bin := t.TempDir()
	t.Setenv("BOOTC_TOOLS_BIN", bin)
	t.Setenv("PATH", os.Getenv("PATH"))
	t.Setenv("CI", "true")

	rec := &recordingTB{TB: t}
	RequireTool(rec, tool)
	if !strings.Contains(rec.fatal, "go install example.com/tool@v1") || !strings.Contains(rec.fatal, bin) || strings.Contains(rec.fatal, "Debian") {
		t.Errorf("missing Go tool under CI: fatal %q, skipped %q", rec.fatal, rec.skipped)
	}

	if err := os.WriteFile(filepath.Join(bin, tool), []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec = &recordingTB{TB: t}
	RequireTool(rec, tool)
	if rec.fatal != "" || rec.skipped != "" {
		t.Fatalf("Go tool in BOOTC_TOOLS_BIN: fatal %q, skipped %q", rec.fatal, rec.skipped)
	}
	if got := Run(t, tool); got != "ran\n" {
		t.Errorf("running %s by name after RequireTool: %q", tool, got)
	}
}
