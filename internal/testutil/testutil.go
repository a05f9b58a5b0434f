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
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	"mke2fs":             "e2fsprogs",
	"debugfs":            "e2fsprogs",
	"time":               "time",
	"rpmbuild":           "rpm",
	"grub-editenv":       "grub-common",
	"grub-script-check":  "grub-common",
	"grub-mkimage":       "grub-common",
	"grub-emu":           "grub-emu",
	"mkfs.vfat":          "dosfstools",
	"mmd":                "mtools",
	"mcopy":              "mtools",
	"mdir":               "mtools",
}

// goTools are the commands the tests need that Debian does not package (or not in a usable
// version): scripts/install-deps.sh builds them with `go install` into ToolsBin. The value is the
// package path for error messages.
var goTools = map[string]string{
	"cosign": "github.com/sigstore/cosign/v2/cmd/cosign@v2.6.5",
}

// ToolsBin returns the directories where scripts/install-deps.sh may have installed goTools:
// $BOOTC_TOOLS_BIN, /var/cache/bootc-tests/bin (as root) and $GOPATH/bin (otherwise).
func ToolsBin() []string {
	var dirs []string
	if d := os.Getenv("BOOTC_TOOLS_BIN"); d != "" {
		dirs = append(dirs, d)
	}
	dirs = append(dirs, "/var/cache/bootc-tests/bin")
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = append(dirs, filepath.Join(strings.Split(gp, string(filepath.ListSeparator))[0], "bin"))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

var pathMu sync.Mutex

// lookTool finds name in PATH or, for goTools, in ToolsBin, which it then adds to PATH so that
// the tests can run the tool by name.
func lookTool(name string) error {
	pathMu.Lock()
	defer pathMu.Unlock()
	_, err := exec.LookPath(name)
	if err == nil || goTools[name] == "" {
		return err
	}
	for _, dir := range ToolsBin() {
		if st, serr := os.Stat(filepath.Join(dir, name)); serr == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return os.Setenv("PATH", dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
		}
	}
	return err
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
// command is found in PATH (or, for Go tools such as cosign, in ToolsBin).
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if err := lookTool(name); err != nil {
			if pkg := goTools[name]; pkg != "" {
				unavailable(t, "required tool %q not found in PATH nor in %s: run `make deps` (go install %s)",
					name, strings.Join(ToolsBin(), ", "), pkg)
				return
			}
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
