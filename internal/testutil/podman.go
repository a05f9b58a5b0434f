package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Podman runs podman with storage private to the test, and the settings that work on these
// machines (runc, cgroupfs, fixed ulimits, the overlay driver; see shared/TOOLBOX.md).
type Podman struct {
	t       testing.TB
	root    string
	runroot string // podman wants it shorter than 50 characters
	conf    string
}

// NewPodman prepares a private podman; its storage is removed when the test ends.
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	RequireTool(t, "podman", "runc")
	dir := t.TempDir()
	conf := filepath.Join(dir, "containers.conf")
	err := os.WriteFile(conf, []byte(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
[network]
network_backend = "netavark"
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	runroot, err := os.MkdirTemp("/tmp", "pm")
	if err != nil {
		t.Fatal(err)
	}
	p := &Podman{t: t, root: filepath.Join(dir, "root"), runroot: runroot, conf: conf}
	t.Cleanup(func() {
		p.Run("system", "reset", "--force")
		os.RemoveAll(runroot)
	})
	return p
}

// StorageRef is a containers-storage reference to name in this podman's store.
func (p *Podman) StorageRef(name string) string {
	return "[overlay@" + p.root + "+" + p.runroot + "]" + name
}

// Command returns the podman command with this store's flags.
func (p *Podman) Command(args ...string) *exec.Cmd {
	// libpod's state (--tmpdir, default /run/libpod) is per store too: podman commands of two
	// test packages running at once otherwise race on /run/libpod/alive.
	full := append([]string{"--root", p.root, "--runroot", p.runroot, "--tmpdir", filepath.Join(p.runroot, "libpod"), "--storage-driver", "overlay"}, args...)
	c := exec.Command("podman", full...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return c
}

// Run runs podman and returns its stdout; the error carries stderr.
func (p *Podman) Run(args ...string) (string, error) {
	var out, errb strings.Builder
	c := p.Command(args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		return out.String(), &podmanError{args: args, err: err, stderr: errb.String()}
	}
	return out.String(), nil
}

// MustRun is Run failing the test on error.
func (p *Podman) MustRun(args ...string) string {
	p.t.Helper()
	out, err := p.Run(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

type podmanError struct {
	args   []string
	err    error
	stderr string
}

func (e *podmanError) Error() string {
	return "podman " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}
