package updateagent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDefaultRebooter: without WithRebooter the agent runs `systemctl reboot` (through the one
// helper whose path is swapped here), with its output in the error when it fails.
func TestDefaultRebooter(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "systemctl")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$@\" > "+dir+"/args\n[ \"$1\" = reboot ] || { echo refused >&2; exit 3; }\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	prev := systemctlPath
	systemctlPath = script
	t.Cleanup(func() { systemctlPath = prev })
	a := New(t.TempDir())
	if err := a.o.reboot(t.Context()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "args")); string(b) != "reboot\n" {
		t.Errorf("systemctl ran with %q", b)
	}
	if err := systemctl(t.Context(), a.o.log, "poweroff"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("a failing systemctl: %v", err)
	}
}

// TestRunEndsWithContext: Run logs a failed pass and returns nil once ctx ends.
func TestRunEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := New(t.TempDir()).Run(ctx); err != nil {
		t.Errorf("Run = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run took %v after its context ended", d)
	}
}
