package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
)

// TestUpdateAgentCLI: --once --format json prints the Result, status shows the agent's line
// and status.updateAgent; --format json without --once is a usage error. (The agent itself is
// tested in pkg/updateagent.)
func TestUpdateAgentCLI(t *testing.T) {
	testutil.Root(t)
	layout := filepath.Join(t.TempDir(), "layout")
	stable := "oci:" + layout + ":stable"
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), stable)
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", stable, sys)
	if st := hostStatusJSON(t, sys); st.Status.UpdateAgent != nil {
		t.Fatalf("status.updateAgent before the agent ran: %+v", st.Status.UpdateAgent)
	}
	booted := hostStatusJSON(t, sys).Status.Booted
	dir := filepath.Join(sys, "ostree/deploy", booted.Ostree.Stateroot, "deploy", booted.Ostree.Checksum+"."+"0")
	testutil.WriteFiles(t, dir, map[string]string{"etc/bootc/update.d/50-off.toml": "[updates]\nenabled = false\n"})

	var res struct{ State, Strategy string }
	must(t, json.Unmarshal([]byte(mustRun(t, "--sysroot", sys, "update-agent", "--once", "--format", "json")), &res))
	if res.State != "disabled" || res.Strategy != "immediate" {
		t.Errorf("update-agent --once: %+v", res)
	}
	if st := hostStatusJSON(t, sys); st.Status.UpdateAgent == nil || st.Status.UpdateAgent.State != "disabled" {
		t.Errorf("status.updateAgent: %+v", st.Status.UpdateAgent)
	}
	if out := mustRun(t, "--sysroot", sys, "status", "--format", "humanreadable"); !strings.Contains(out, "Update agent: disabled; strategy immediate; checked ") {
		t.Errorf("status lacks the agent's line:\n%s", out)
	}
	if _, stderr, code := run(t, "--sysroot", sys, "update-agent", "--format", "json"); code != 2 || !strings.Contains(stderr, "add --once") {
		t.Errorf("--format json without --once: exit %d, %s", code, stderr)
	}
}

// TestUpdateAgentCLIUpdates: the agent, from the CLI, reads the release index `release add`
// published, deploys the next release (a sysroot directory: "reboot needed") and prints only
// the JSON result on stdout, the pull summary on stderr.
func TestUpdateAgentCLIUpdates(t *testing.T) {
	testutil.Root(t)
	repo := "docker://" + testutil.Registry(t) + "/agent/os"
	for _, v := range []string{"1.0", "2.0"} {
		testimage.Compose(t, testimage.TinyOS(t, v, nil), repo+":"+v)
		mustRun(t, "release", "add", "--stream", "stable", "--version", v, repo+":"+v)
	}
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", repo+":1.0", sys)
	booted := hostStatusJSON(t, sys).Status.Booted
	dir := filepath.Join(sys, "ostree/deploy", booted.Ostree.Stateroot, "deploy", booted.Ostree.Checksum+".0")
	testutil.WriteFiles(t, dir, map[string]string{
		"etc/machine-id":                    "0123456789abcdef0123456789abcdef\n",
		"etc/bootc/update.d/50-stable.toml": "[updates]\nstream = \"stable\"\n",
	})

	out, stderr, code := run(t, "--sysroot", sys, "update-agent", "--once", "--format", "json")
	var res struct{ State, BootedVersion, TargetVersion, NodeID string }
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("update-agent --once --format json: exit %d; stdout is not only the JSON result:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if res.State != "reboot needed" || res.BootedVersion != "1.0" || res.TargetVersion != "2.0" || len(res.NodeID) != 32 {
		t.Errorf("update-agent: %+v", res)
	}
	if !strings.Contains(stderr, "Pulled ") {
		t.Errorf("no pull summary on stderr:\n%s", stderr)
	}
	if v := hostStatusJSON(t, sys).Status.Booted.Image.Version; v == nil || *v != "2.0" {
		t.Errorf("after the agent the default deployment is %v, want 2.0", v)
	}
}
