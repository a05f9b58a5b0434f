package testutil

import (
	"os/exec"
	"strings"
	"testing"
)

// Etcd serves, and keeps its data and its address across Stop and Start.
func TestEtcdRestart(t *testing.T) {
	RequireTool(t, "etcdctl")
	e := Etcd(t)
	etcdctl := func(args ...string) (string, error) {
		out, err := exec.Command("etcdctl", append([]string{"--endpoints", e.Endpoint()}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := etcdctl("put", "k", "v"); err != nil {
		t.Fatalf("etcdctl put: %v\n%s", err, out)
	}
	e.Stop()
	if out, err := etcdctl("--command-timeout", "1s", "get", "k"); err == nil {
		t.Fatalf("etcdctl get after Stop succeeded: %s", out)
	}
	e.Start()
	if out, err := etcdctl("get", "--print-value-only", "k"); err != nil || strings.TrimSpace(out) != "v" {
		t.Fatalf("etcdctl get after Start: %q, %v", out, err)
	}
}
