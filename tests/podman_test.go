package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// podman runs podman with storage private to the test, and the settings that work on these
// machines (runc, cgroupfs, fixed ulimits; see shared/TOOLBOX.md).
type podman struct {
	t       *testing.T
	dir     string
	runroot string // podman wants it shorter than 50 characters
	conf    string
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	testutil.RequireTool(t, "podman", "runc")
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
	p := &podman{t: t, dir: dir, runroot: runroot, conf: conf}
	t.Cleanup(func() {
		p.run("system", "reset", "--force")
		os.RemoveAll(runroot)
	})
	return p
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	full := append([]string{"--root", filepath.Join(p.dir, "root"), "--runroot", p.runroot, "--storage-driver", "overlay"}, args...)
	c := exec.Command("podman", full...)
	c.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return c
}

func (p *podman) run(args ...string) (string, error) {
	var out, errb strings.Builder
	c := p.cmd(args...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil {
		return out.String(), &cmdError{args: args, err: err, stderr: errb.String()}
	}
	return out.String(), nil
}

func (p *podman) mustRun(args ...string) string {
	p.t.Helper()
	out, err := p.run(args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

type cmdError struct {
	args   []string
	err    error
	stderr string
}

func (e *cmdError) Error() string {
	return "podman " + strings.Join(e.args, " ") + ": " + e.err.Error() + "\n" + e.stderr
}
