//go:build vmtest

package vm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// vmtestKey is the SSH key the Ignition config gives user vmtest (a well-formed ed25519 public
// key; nobody holds its private half).
const vmtestKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g vmtest@bootc"

// ignitionMarker is what the config's unit prints on the console.
const ignitionMarker = "BOOTC-VMTEST: ignition marker"

// markerUnit is the config's unit, enabled: it runs in the provisioning boot (started by
// bootc-ignition-firstboot) and in every later boot (multi-user.target wants it).
const markerUnit = `[Unit]
Description=bootc VM test: a unit an Ignition config installed and enabled
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo "` + ignitionMarker + `" > /dev/console'
[Install]
WantedBy=multi-user.target
`

// firstBootRecord is the part of /var/lib/bootc/ignition-firstboot.json the test reads.
type firstBootRecord struct {
	Outcome      string   `json:"outcome"`
	ConfigDigest string   `json:"configDigest"`
	Written      []string `json:"written"`
	Users        []string `json:"users"`
	Started      []string `json:"started"`
}

// firstBootStamp decodes the stamp a step saved as ignition-stamp.json.
func (v *vm) firstBootStamp(b *bootResult) *firstBootRecord {
	v.t.Helper()
	var rec firstBootRecord
	if err := json.Unmarshal([]byte(b.files["ignition-stamp.json"]), &rec); err != nil {
		v.t.Fatalf("ignition-firstboot.json: %v\n%s\nstep log:\n%s", err, b.files["ignition-stamp.json"], b.files["step.log"])
	}
	return &rec
}

// ignitionConfig writes the Ignition 3.4 config of the provisioning steps and returns its path
// and sha256 digest: user vmtest with vmtestKey, and markerUnit enabled.
func (v *vm) ignitionConfig() (string, string) {
	cfg := map[string]any{
		"ignition": map[string]any{"version": "3.4.0"},
		"passwd":   map[string]any{"users": []any{map[string]any{"name": "vmtest", "sshAuthorizedKeys": []string{vmtestKey}}}},
		"systemd":  map[string]any{"units": []any{map[string]any{"name": "vmtest-ignition-marker.service", "enabled": true, "contents": markerUnit}}},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		v.t.Fatal(err)
	}
	path := filepath.Join(v.dir, "vmtest.ign")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		v.t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return path, "sha256:" + hex.EncodeToString(sum[:])
}

// waitMarker is a step's start: it waits (up to a minute) for the config's unit, which the
// first boot starts without blocking, and saves the stamp.
const waitMarker = `for i in $(seq 120); do systemctl is-active -q vmtest-ignition-marker.service && break; sleep 0.5; done
systemctl is-active vmtest-ignition-marker.service > marker-active || true
cp /var/lib/bootc/ignition-firstboot.json ignition-stamp.json
`

// ignitionSteps: a second disk, installed from v4, is provisioned on its first boot from the
// fw_cfg Ignition config; its second boot, with the config still attached, applies nothing.
func (v *vm) ignitionSteps() {
	var cfg, digest, stampText string
	v.step("a second disk, installed from v4, boots with an Ignition config (fw_cfg): user vmtest with its SSH key, an enabled unit that runs in that boot", func() {
		v.install(v.images["v4"], "disk-ignition.img")
		cfg, digest = v.ignitionConfig()
		b := v.boot(bootSpec{firmware: "bios", publish: "v4", want: "4", then: "poweroff", ignition: cfg, step: waitMarker + `
cp /var/lib/bootc/health-check.json health-check.json
id vmtest > id
getent passwd vmtest > passwd
cat /var/home/vmtest/.ssh/authorized_keys > authorized_keys
# A provisioned file edited: the next boot must not apply the config over it.
echo "# edited after provisioning" >> /var/home/vmtest/.ssh/authorized_keys
`})
		v.want(strings.Contains(b.console, ignitionMarker) && b.files["marker-active"] == "active\n",
			"the config's unit did not run in the provisioning boot (is-active %q)", b.files["marker-active"])
		stamp := v.firstBootStamp(b)
		stampText = b.files["ignition-stamp.json"]
		v.want(stamp.Outcome == "applied" && stamp.ConfigDigest == digest && slices.Contains(stamp.Users, "vmtest") &&
			slices.Equal(stamp.Started, []string{"vmtest-ignition-marker.service"}),
			"the stamp is %+v, want outcome applied, digest %s, user vmtest, the marker unit started", stamp, digest)
		v.want(strings.Contains(b.files["id"], "(vmtest)"), "id vmtest: %q", b.files["id"])
		v.want(strings.Contains(b.files["authorized_keys"], vmtestKey), "vmtest's authorized_keys: %q (passwd %q)", b.files["authorized_keys"], b.files["passwd"])
		v.want(!strings.Contains(b.files["health-check.json"], `"failure"`), "the health checks failed:\n%s", b.files["health-check.json"])
	})

	v.step("the provisioned disk boots again with the config attached: nothing is applied again, the enabled unit still runs", func() {
		b := v.boot(bootSpec{firmware: "bios", publish: "v4", want: "4", then: "poweroff", ignition: cfg, step: waitMarker + `
systemctl show -p ConditionResult bootc-ignition-firstboot.service > firstboot-unit
cat /var/home/vmtest/.ssh/authorized_keys > authorized_keys
test ! -e /var/lib/bootc/ignition-firstboot-failed.json
`})
		v.want(b.files["ignition-stamp.json"] == stampText, "the stamp changed:\n%s\nwas:\n%s", b.files["ignition-stamp.json"], stampText)
		v.want(b.files["firstboot-unit"] == "ConditionResult=no\n", "bootc-ignition-firstboot.service was not skipped: %q", b.files["firstboot-unit"])
		v.want(strings.Contains(b.files["authorized_keys"], "# edited after provisioning"), "the edit of a provisioned file is gone: %q", b.files["authorized_keys"])
		v.want(strings.Contains(b.console, ignitionMarker) && b.files["marker-active"] == "active\n",
			"the enabled unit did not run (is-active %q)", b.files["marker-active"])
	})
}
