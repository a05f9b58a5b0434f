package firstboot_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bootc-go/bootc/pkg/firstboot"
	"github.com/bootc-go/bootc/pkg/ignition"
)

// TestFirstBootAppliesConfig is the one test of the real path, package ignition's Parse and
// Apply (the default ApplyFunc): an Ignition 3.4 config with a file in /etc and an enabled
// unit, applied to a temporary root. It needs the implemented pkg/ignition (it fails with "not
// implemented" before that is merged).
func TestFirstBootAppliesConfig(t *testing.T) {
	m := newMachine(t)
	m.writeConfig(`{"ignition": {"version": "3.4.0"},
  "storage": {"files": [{"path": "/etc/bootc-firstboot-test", "mode": 420, "contents": {"source": "data:,provisioned%0A"}}]},
  "systemd": {"units": [{"name": "firstboot-test.service", "enabled": true,
    "contents": "[Service]\nType=oneshot\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"}]}}`)
	opts := []firstboot.Option{firstboot.WithTarget(ignition.Target{Root: m.root, Var: m.varDir}),
		firstboot.WithConfigPath(m.config), firstboot.WithCommands(m.modprobe, m.systemctl), firstboot.WithBootID("boot-1")}
	res, err := firstboot.FirstBoot(t.Context(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Record; r.Outcome != firstboot.Applied || !slices.Contains(r.Written, "/etc/bootc-firstboot-test") ||
		!slices.Equal(r.Started, []string{"firstboot-test.service"}) {
		t.Errorf("record %+v", r)
	}
	if data, err := os.ReadFile(filepath.Join(m.root, "etc/bootc-firstboot-test")); err != nil || string(data) != "provisioned\n" {
		t.Errorf("the file: %q, %v", data, err)
	}
	if got, want := calls(t, m.systemctl), []string{"daemon-reload", "start --no-block -- firstboot-test.service"}; !slices.Equal(got, want) {
		t.Errorf("systemctl calls: %q, want %q", got, want)
	}
}
