// Package testutil holds helpers shared by the repository's tests: checks for
// required host tools and privileges, a deterministic interoperability fixture
// tree, a cached Debian root filesystem, and a command runner.
//
// Helpers that need something the host lacks skip the test, unless the
// environment variable CI is "true", in which case they fail it: on CI a
// missing dependency is a setup bug (run `make deps`), not a reason to skip.
package testutil

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// debianPackages maps a command to the Debian package that provides it, for
// error messages. Commands not listed are assumed to come from a package of
// the same name.
var debianPackages = map[string]string{
	"setfattr":           "attr",
	"getfattr":           "attr",
	"busybox":            "busybox-static",
	"qemu-system-x86_64": "qemu-system-x86",
	"qemu-img":           "qemu-utils",
	"etcd":               "etcd-server",
	"etcdctl":            "etcd-client",
	"mkfs.ext4":          "e2fsprogs",
	"time":               "time",
	"rpmbuild":           "rpm",
}

// DebianPackage returns the Debian package that provides the command name.
func DebianPackage(name string) string {
	if pkg, ok := debianPackages[name]; ok {
		return pkg
	}
	return name
}

// IsCI reports whether the tests run under CI (environment variable CI set to
// a true value such as "true" or "1").
func IsCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// unavailable skips the test, or fails it under CI.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if IsCI() {
		t.Fatalf(format, args...)
		return
	}
	t.Skipf(format, args...)
}

// RequireTool skips the test (fails it when CI=true) unless every named
// command is found in PATH.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			unavailable(t, "required tool %q not found in PATH: install Debian package %q (or run `make deps`)",
				name, DebianPackage(name))
			return
		}
	}
}

// Root skips the test (fails it when CI=true) unless it runs as uid 0.
func Root(t testing.TB) {
	t.Helper()
	if uid := os.Geteuid(); uid != 0 {
		unavailable(t, "test needs root (running as uid %d)", uid)
	}
}

// Run runs the command name with args and returns its standard output. If
// the command cannot be started or exits non-zero, the test fails with the
// command line and its full standard error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		var exitErr *exec.ExitError
		what := "failed"
		if errors.As(err, &exitErr) {
			what = "exited with " + exitErr.ProcessState.String()
		}
		t.Fatalf("%s %s: %s: %v\nstderr:\n%s", name, quoteArgs(args), what, err, stderr.String())
		return ""
	}
	return stdout.String()
}

// quoteArgs renders args for a log message, quoting those that need it.
func quoteArgs(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n\"'\\$`") {
			quoted[i] = strconv.Quote(a)
		} else {
			quoted[i] = a
		}
	}
	return strings.Join(quoted, " ")
}

// FirstDiff returns the first line where two multi-line outputs differ, labelled with who produced
// them, for test failure messages.
func FirstDiff(wantLabel, want, gotLabel, got string) string {
	lw, lg := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(lw) && i < len(lg); i++ {
		if lw[i] != lg[i] {
			return fmt.Sprintf("line %d:\n%s: %s\n%s: %s", i+1, wantLabel, lw[i], gotLabel, lg[i])
		}
	}
	return fmt.Sprintf("%s has %d lines, %s %d", wantLabel, len(lw), gotLabel, len(lg))
}
