package updateagent

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

func TestAppSpecificIDVector(t *testing.T) {
	// The HMAC computed independently (Python's hmac); the second pair is systemd-id128's
	// answer for a machine with that machine id.
	if got, err := AppSpecificID("3d1219c7c4c5404aaa1f6d2a48adfda4", AppID); err != nil || got != "975228d46dc94622b9bbe16671e2b58d" {
		t.Errorf("AppSpecificID = %q, %v", got, err)
	}
	const machineID, want = "0123456789abcdef0123456789abcdef", "583627a932274834a8ebd99f4ed41c0d"
	got, err := AppSpecificID(machineID+"\n", AppID)
	if err != nil || got != want {
		t.Errorf("AppSpecificID = %q, %v; want %q", got, err, want)
	}
	root := t.TempDir()
	testutil.WriteFiles(t, root, map[string]string{"etc/machine-id": machineID + "\n"})
	if id, err := NodeID(root); err != nil || id != want || strings.Contains(id, machineID) {
		t.Errorf("NodeID = %q, %v", id, err)
	}
	if _, err := NodeID(t.TempDir()); err == nil || !strings.Contains(err.Error(), "node_uuid") {
		t.Errorf("NodeID without machine-id: %v", err)
	}
	if _, err := AppSpecificID("uninitialized", AppID); err == nil {
		t.Error("a machine id that is not hex was accepted")
	}
}

// TestAppSpecificIDSystemd checks against systemd-id128 for this machine's /etc/machine-id.
func TestAppSpecificIDSystemd(t *testing.T) {
	mid, err := os.ReadFile("/etc/machine-id")
	if err != nil {
		t.Skip("no /etc/machine-id")
	}
	testutil.RequireTool(t, "systemd-id128")
	out, err := exec.Command("systemd-id128", "machine-id", "--app-specific="+AppID).Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := NodeID("/")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(out)); got != want {
		t.Errorf("NodeID(/) = %s, systemd-id128 says %s (machine id %s)", got, want, strings.TrimSpace(string(mid)))
	}
}
