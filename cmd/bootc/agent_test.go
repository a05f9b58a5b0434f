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
