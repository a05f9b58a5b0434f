//go:build vmtest

// Package vm boots a real operating system we composed and installed under qemu (TCG), and
// drives switch, reboot, rollback and a broken update inside it. Run it with `make vm-test`.
//
// The machine: the Debian bookworm image of images/debian-bootable (systemd, the Debian kernel,
// a dracut initramfs with ostree-prepare-root), plus our bootc binary and the guest side of
// this test (guest/). `bootc install to-disk` writes the disk; the harness plays the firmware
// and boot menu: it reads the BLS entries from the disk (debugfs, no mount) and starts the
// chosen entry by direct kernel boot with its kernel, initramfs and options. Each boot gets a
// control disk with the step to run; the guest writes the results back onto it and reboots or
// powers off (qemu runs with -no-reboot, so either ends the run).
package vm

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
)

const (
	bootTimeout = 6 * time.Minute
	ctlSize     = 16 << 20
	stateroot   = "debian"
)

// vm is one test machine: its disks and what the harness learnt so far.
type vm struct {
	t          *testing.T
	dir        string
	disk       string // the disk the machine boots from (the last one installed)
	rootOffset int64  // of its root partition, from the disk's partition table
	installed  []installedDisk
	images     map[string]string
	published  map[string]string // image name -> data disk publishing it
	// agentPayload is the image the update agent moved the host to (REPOSITORY@sha256:...).
	agentPayload string
	// publishedConfig is the config digest of each image publishReleases pushed.
	publishedConfig map[string]string
	login           map[string]time.Duration
	boots           int
	passed          int
	total           int
	start           time.Time
}

// installedDisk is a disk `bootc install to-disk` wrote.
type installedDisk struct {
	path       string
	rootOffset int64
}

// bootEntry is a BLS entry read from the disk.
type bootEntry struct {
	file                 string
	version              int
	title, linux, initrd string
	options              string
	osVersion            string // the image version, from the title
}

// bootSpec is one power-on: the firmware ("bios": SeaBIOS, "uefi": OVMF), the image the data
// disk publishes, the version that must come up (the guest's marker says it), the step to run
// (none: no control disk) and what the guest does after it (reboot, poweroff, stay). panic: the
// kernel must panic (and reboot by itself). killOn: a console line at which the power is cut.
type bootSpec struct {
	firmware, publish, want string
	step, then              string
	panic                   bool
	killOn                  string
	// net: a virtio NIC on qemu's user network, where 10.0.2.2 is the host's loopback.
	net bool
	// ignition: a file qemu passes as the fw_cfg item opt/com.coreos/config, the Ignition
	// config bootc-ignition-firstboot.service applies on the first boot.
	ignition string
}

// bootResult is what one boot left: the console log and the files the step saved.
type bootResult struct {
	console  string
	files    map[string]string
	version  string // from the guest's marker
	grub     bool   // GRUB showed on the console
	panic    bool
	killed   bool // the harness cut the power
	rebooted bool // the guest rebooted by itself (qemu's -no-reboot ended the run)
	elapsed  time.Duration
}

// TestVM is the whole scenario; each numbered step must pass for the next to run.
func TestVM(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "qemu-system-x86_64", "debugfs", "mkfs.ext4", "sfdisk", "debootstrap", "cp",
		"systemctl", "grub-script-check", "grub-editenv")
	if _, err := os.Stat(ovmf); err != nil {
		testutil.RequireTool(t, "OVMF.fd (package ovmf)")
	}
	// The work directory survives a failure, with every boot's console log and results.
	dir, err := os.MkdirTemp("", "vm-test-")
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{t: t, dir: dir, start: time.Now(), total: 16, published: map[string]string{}, publishedConfig: map[string]string{}}
	defer func() {
		if t.Failed() {
			fmt.Printf("vm-test: console logs and results kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
		fmt.Printf("vm-test: %d/%d steps passed in %s\n", v.passed, v.total, time.Since(v.start).Round(time.Second))
	}()

	v.step("build the OS images and install the disk with its own bootloader", func() {
		v.images = v.buildImages()
		v.install(v.images["v1"], "disk.img")
		cfg := v.debugfs("cat /boot/loader/grub.cfg")
		v.want(strings.Contains(cfg, "menuentry"), "the disk's /boot/loader/grub.cfg has no menu entry:\n%s", cfg)
		v.checkGrubConfig(cfg)
		env := v.grubenv()
		v.want(env["boot_counter"] == "", "a fresh install has a boot counter: %v", env)
	})

	v.step("v1 boots from the disk with SeaBIOS; the update service finds nothing and does not reboot", func() {
		b := v.boot(bootSpec{firmware: "bios", publish: "v1", want: "1", then: "poweroff", step: mountData + `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
cat /proc/cmdline > cmdline
systemctl is-enabled bootc-fetch-apply-updates.timer > timer-enabled
systemctl is-active bootc-fetch-apply-updates.timer > timer-active
# The first boot without an Ignition config: provisioning stamped "no-config" and proceeded.
cp /var/lib/bootc/ignition-firstboot.json ignition-stamp.json
# Local state: an edited and an added /etc file, and data in /var.
echo "edited=by-the-operator" >> /etc/bootc-vmtest.conf
echo "local=1" > /etc/bootc-vmtest-local.conf
mkdir -p /var/lib/bootc-vmtest && echo kept > /var/lib/bootc-vmtest/data
# What the timer runs: the published image is the booted one.
systemctl start bootc-fetch-apply-updates.service
journalctl -u bootc-fetch-apply-updates.service --no-pager > update.log
test ! -e /run/ostree/staged-deployment
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("1") && st.Status.Staged == nil && st.Status.Rollback == nil,
			"after install: booted %s, staged %v, rollback %v", version(st.Status.Booted), st.Status.Staged, st.Status.Rollback)
		v.agree(b, st, "ostree-admin-status.txt")
		v.want(strings.Contains(b.files["cmdline"], "ostree=/ostree/boot.") && strings.Contains(b.files["cmdline"], "panic="),
			"kernel command line: %q", b.files["cmdline"])
		v.want(b.files["timer-enabled"] == "enabled\n" && b.files["timer-active"] == "active\n",
			"bootc-fetch-apply-updates.timer: %q, %q", b.files["timer-enabled"], b.files["timer-active"])
		v.want(b.grub, "GRUB did not show on the console")
		stamp := v.firstBootStamp(b)
		v.want(stamp.Outcome == "no-config" && stamp.ConfigDigest == "" && len(stamp.Written)+len(stamp.Users) == 0,
			"the first boot without an Ignition config stamped %+v, want outcome no-config and nothing applied", stamp)
	})

	v.step("v1 boots with OVMF; the update service stages v2 and reboots; an /etc edit after staging", func() {
		b := v.boot(bootSpec{firmware: "uefi", publish: "v2", want: "1", then: "stay", step: mountData + `
systemctl start --no-block bootc-fetch-apply-updates.service
for i in $(seq 600); do test -e /run/ostree/staged-deployment && break; sleep 0.5; done
bootc status --format json > status-staged.json
ostree admin status > ostree-admin-status-staged.txt
# After staging, before the reboot: this edit must reach v2.
echo "edited=after-staging" >> /etc/bootc-vmtest.conf
`})
		v.want(b.rebooted, "the machine did not reboot after staging")
		st := v.status(b, "status-staged.json")
		v.want(version(st.Status.Staged) == ver("2") && version(st.Status.Booted) == ver("1"),
			"after the update service: staged %s, booted %s", version(st.Status.Staged), version(st.Status.Booted))
		v.want(strings.Contains(b.files["ostree-admin-status-staged.txt"], "(staged)"),
			"ostree admin status does not show the staged deployment:\n%s", b.files["ostree-admin-status-staged.txt"])
		v.agree(b, st, "ostree-admin-status-staged.txt")
		env := v.grubenv()
		v.want(env["boot_counter"] == "3" && env["boot_success"] == "0", "after finalization the GRUB environment is %v, want boot_counter=3 boot_success=0", env)
		v.checkGrubConfig(v.debugfs("cat /boot/loader/grub.cfg"))
	})

	v.step("v2 boots from GRUB's default entry with every /etc edit; the boot is marked good", func() {
		b := v.boot(bootSpec{firmware: "bios", publish: "v2", want: "2", then: "poweroff", step: `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
cp /etc/bootc-vmtest.conf /etc/bootc-vmtest-local.conf /usr/share/bootc-vmtest/version /var/lib/bootc-vmtest/data .
cp /etc/bootc-vmtest-defaults.conf . || true
systemctl is-active boot-complete.target > boot-complete
for i in $(seq 120); do grep -q '^boot_success=1' /boot/grub/grubenv && break; sleep 0.5; done
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("2") && version(st.Status.Rollback) == ver("1") && st.Status.Staged == nil,
			"booted %s, rollback %s, staged %v", version(st.Status.Booted), version(st.Status.Rollback), st.Status.Staged)
		v.agree(b, st, "ostree-admin-status.txt")
		v.want(b.files["version"] == "2\n", "/usr/share/bootc-vmtest/version is %q", b.files["version"])
		v.want(b.files["bootc-vmtest.conf"] == "shipped=1\nedited=by-the-operator\nedited=after-staging\n",
			"the edited /etc file: %q (want the edit before and the edit after staging)", b.files["bootc-vmtest.conf"])
		v.want(b.files["bootc-vmtest-local.conf"] == "local=1\n", "the added /etc file: %q", b.files["bootc-vmtest-local.conf"])
		v.want(b.files["bootc-vmtest-defaults.conf"] == "added-in=2\n", "v2's new /etc default: %q", b.files["bootc-vmtest-defaults.conf"])
		v.want(b.files["data"] == "kept\n", "/var data: %q", b.files["data"])
		v.want(b.files["boot-complete"] == "active\n", "boot-complete.target: %q", b.files["boot-complete"])
		env := v.grubenv()
		v.want(env["boot_counter"] == "" && env["boot_success"] == "1", "after a good boot the GRUB environment is %v", env)
	})

	v.step("power cut during finalization: the disk boots the previous default", func() {
		before := v.entries()
		b := v.boot(bootSpec{firmware: "uefi", publish: "v3a", want: "2", then: "stay", killOn: finalizeStarts, step: mountData + holdFinalization + `
systemctl start --no-block bootc-fetch-apply-updates.service
`})
		v.want(b.killed, "the power was not cut during finalization")
		after := v.entries()
		v.want(after[0].osVersion == ver("2") && len(after) == len(before),
			"after the power cut the default entry is %q (entries %+v), want v2 as before", after[0].osVersion, after)
		b = v.boot(bootSpec{firmware: "bios", publish: "v3a", want: "2", then: "poweroff", step: `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("2") && st.Status.Staged == nil, "booted %s, staged %v", version(st.Status.Booted), st.Status.Staged)
		v.agree(b, st, "ostree-admin-status.txt")
	})

	v.step("the broken v3a (no initramfs) is staged and finalized", func() {
		b := v.boot(bootSpec{firmware: "bios", publish: "v3a", want: "2", then: "stay", step: mountData + `
systemctl start --no-block bootc-fetch-apply-updates.service
`})
		v.want(b.rebooted, "the machine did not reboot after staging v3a")
		e := v.entries()
		v.want(e[0].osVersion == ver("3a") && e[0].initrd == "" && e[1].osVersion == ver("2"), "entries after finalizing v3a: %+v", e)
		env := v.grubenv()
		v.want(env["boot_counter"] == "3", "GRUB environment: %v", env)
	})

	v.step("v3a fails three times (the kernel panics and reboots); GRUB counts down", func() {
		for i, want := range []string{"2", "1", "0"} {
			fw := []string{"uefi", "bios", "uefi"}[i]
			b := v.boot(bootSpec{firmware: fw, publish: "v3a", want: "", panic: true})
			v.want(b.panic && b.rebooted, "attempt %d: panic %v, rebooted by itself %v", i+1, b.panic, b.rebooted)
			env := v.grubenv()
			v.want(env["boot_counter"] == want, "after attempt %d the GRUB environment is %v, want boot_counter=%s", i+1, env, want)
		}
	})

	v.step("GRUB falls back to v2; bootc makes it permanent, status names v3a, the update service does not retry it", func() {
		b := v.boot(bootSpec{firmware: "bios", publish: "v3a", want: "2", then: "poweroff", step: mountData + `
systemctl start bootc-check-fallback.service
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
systemctl start bootc-fetch-apply-updates.service
journalctl -u bootc-fetch-apply-updates.service --no-pager > update.log
test ! -e /run/ostree/staged-deployment
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("2") && version(st.Status.Rollback) == ver("3a") && !st.Status.RollbackQueued,
			"booted %s, rollback %s (queued %v)", version(st.Status.Booted), version(st.Status.Rollback), st.Status.RollbackQueued)
		v.agree(b, st, "ostree-admin-status.txt")
		v.wantFailure(st, "3a", "")
		e := v.entries()
		v.want(e[0].osVersion == ver("2") && e[1].osVersion == ver("3a"), "entries after the fallback: %+v", e)
		env := v.grubenv()
		v.want(env["boot_counter"] == "", "GRUB environment after the fallback: %v", env)
	})

	v.step("v3b (a failing required health check; two attempts, its image says) is staged, fails twice, and falls back", func() {
		b := v.boot(bootSpec{firmware: "uefi", publish: "v3b", want: "2", then: "stay", step: mountData + `
systemctl start --no-block bootc-fetch-apply-updates.service
`})
		v.want(b.rebooted, "the machine did not reboot after staging v3b")
		env := v.grubenv()
		v.want(env["boot_counter"] == "2", "v3b's config.toml asks for 2 boot attempts; the GRUB environment is %v", env)
		for i := range 2 {
			b := v.boot(bootSpec{firmware: "bios", publish: "v3b", want: "3b"})
			v.want(b.rebooted, "attempt %d of v3b did not reboot by itself", i+1)
		}
	})

	v.step("back on v2, status names v3b's health check; the update service stages v4", func() {
		b := v.boot(bootSpec{firmware: "bios", publish: "v4", want: "2", then: "stay", step: mountData + `
systemctl start bootc-check-fallback.service
bootc status --format json > status.json
systemctl start --no-block bootc-fetch-apply-updates.service
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("2") && version(st.Status.Rollback) == ver("3b"),
			"booted %s, rollback %s", version(st.Status.Booted), version(st.Status.Rollback))
		v.wantFailure(st, "3b", "50-vmtest-fails")
		v.want(b.rebooted, "the machine did not reboot after staging v4")
	})

	v.step("v4 boots and is marked good; bootc rollback queues v2", func() {
		b := v.boot(bootSpec{firmware: "uefi", publish: "v4", want: "4", then: "poweroff", step: `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
for i in $(seq 120); do grep -q '^boot_success=1' /boot/grub/grubenv && break; sleep 0.5; done
bootc rollback > rollback.log
bootc status --format json > status-rolledback.json
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("4") && version(st.Status.Rollback) == ver("2"),
			"booted %s, rollback %s", version(st.Status.Booted), version(st.Status.Rollback))
		v.agree(b, st, "ostree-admin-status.txt")
		st = v.status(b, "status-rolledback.json")
		v.want(version(st.Status.Booted) == ver("4") && version(st.Status.Rollback) == ver("2") && st.Status.RollbackQueued,
			"after bootc rollback: booted %s, rollback %s, queued %v", version(st.Status.Booted), version(st.Status.Rollback), st.Status.RollbackQueued)
		e := v.entries()
		v.want(e[0].osVersion == ver("2") && e[1].osVersion == ver("4"), "after bootc rollback the entries are %+v; want v2 first", e)
		env := v.grubenv()
		v.want(env["boot_counter"] == "" && env["boot_success"] == "1", "GRUB environment: %v", env)
		fmt.Printf("vm-test: time to the login prompt: SeaBIOS %s, OVMF %s\n", v.login["bios"].Round(100*time.Millisecond), v.login["uefi"].Round(100*time.Millisecond))
	})

	v.step("v2 boots (the queued rollback); the update agent, strategy immediate, walks the release graph to v5 and reboots", func() {
		reg := v.publishReleases("v2", "v5")
		b := v.boot(bootSpec{firmware: "bios", publish: "v4", want: "2", then: "stay", net: true, step: agentStep(reg)})
		v.want(b.rebooted, "the update agent did not reboot the machine")
		var res struct {
			State   string `json:"state"`
			Booted  string `json:"bootedVersion"`
			Target  string `json:"targetVersion"`
			Payload string `json:"targetPayload"`
		}
		if err := json.Unmarshal([]byte(b.files["agent.json"]), &res); err != nil {
			t.Fatalf("agent.json: %v\n%s\nstep log:\n%s", err, b.files["agent.json"], b.files["step.log"])
		}
		v.want(res.Booted == ver("2") && res.Target == ver("5") && strings.Contains(res.Payload, "@sha256:"),
			"the agent went from %q to %q (%s), want %s to %s by digest:\n%s", res.Booted, res.Target, res.Payload, ver("2"), ver("5"), b.files["agent.json"])
		v.agentPayload = res.Payload
	})

	v.step("v5 boots from the agent's staged deployment; status shows the agent's state; podman's metadata command", func() {
		b := v.boot(bootSpec{firmware: "uefi", publish: "v4", want: "5", then: "poweroff", step: `
bootc status --format json > status.json
# Podman Machine's check, as an unprivileged user: the real ostree CLI dispatches "container"
# to /usr/libexec/libostree/ext/ostree-container, which is bootc.
runuser -u nobody -- ostree container image metadata --repo /ostree/repo docker://` + v.agentPayload + ` > metadata.json
`})
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("5") && version(st.Status.Rollback) == ver("2"),
			"booted %s, rollback %s", version(st.Status.Booted), version(st.Status.Rollback))
		a := st.Status.UpdateAgent
		v.want(a != nil && a.State == "rebooting" && a.Target == ver("5"), "status.updateAgent is %+v, want the agent's last run: rebooting to %s", a, ver("5"))
		var stored struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
		}
		if err := json.Unmarshal([]byte(b.files["metadata.json"]), &stored); err != nil {
			t.Fatalf("ostree container image metadata: %v\n%s\nstep log:\n%s", err, b.files["metadata.json"], b.files["step.log"])
		}
		v.want(stored.Config.Digest != "" && stored.Config.Digest == v.publishedConfig["v5"],
			"ostree container image metadata says config %q; the registry's manifest of v5 has %q", stored.Config.Digest, v.publishedConfig["v5"])
	})

	v.ignitionSteps()

	v.step("the disks' repositories pass ostree fsck", func() {
		// Outside the VM, read-only: the deployments and objects the guest wrote are sound.
		for _, d := range v.installed {
			mnt := v.t.TempDir()
			testutil.Run(v.t, "mount", "-o", "ro,loop,offset="+strconv.FormatInt(d.rootOffset, 10), d.path, mnt)
			out := testutil.Run(v.t, "ostree", "fsck", "--repo", filepath.Join(mnt, "ostree/repo"))
			exec.Command("umount", mnt).Run()
			v.want(!strings.Contains(out, "corrupt"), "fsck of %s:\n%s", d.path, out)
		}
	})
}

// publishReleases starts a registry on the host's loopback (the guest reaches it as 10.0.2.2,
// through qemu's user network and a registries.conf mirror), pushes the images and publishes
// them, in order, as the releases of stream "vmtest". It returns the registry's host:port.
func (v *vm) publishReleases(names ...string) string {
	reg := testutil.Registry(v.t)
	bootc := filepath.Join(v.dir, "bootc")
	for _, name := range names {
		ref := "docker://" + reg + "/vmtest/os:" + name
		testutil.Run(v.t, "skopeo", "copy", "--quiet", "--dest-tls-verify=false", "oci-archive:"+v.images[name], ref)
		testutil.Run(v.t, bootc, "release", "add", "--stream", "vmtest", ref)
		// The registry stops with this step: keep what later steps compare with.
		var m struct {
			Config struct {
				Digest string `json:"digest"`
			} `json:"config"`
		}
		raw := testutil.Run(v.t, "skopeo", "inspect", "--raw", "--tls-verify=false", ref)
		if err := json.Unmarshal([]byte(raw), &m); err != nil || m.Config.Digest == "" {
			v.t.Fatalf("the manifest of %s: %v\n%s", ref, err, raw)
		}
		v.publishedConfig[name] = m.Config.Digest
	}
	fmt.Printf("vm-test: published %v as stream vmtest in %s:\n%s", names, reg,
		testutil.Run(v.t, bootc, "release", "list", "--stream", "vmtest", "docker://"+reg+"/vmtest/os"))
	return reg
}

// agentStep is the guest's side of the agent step: the network up (static: qemu's user network
// is 10.0.2.0/24), the registry reached through a mirror, the agent configured for stream
// "vmtest" with strategy immediate, and run once. It stages the update and asks for the reboot;
// the step ends first (the test unit's stop waits for it).
func agentStep(reg string) string {
	_, port, _ := strings.Cut(reg, ":")
	return fmt.Sprintf(`dev=$(ls /sys/class/net | grep -v '^lo$' | head -n1)
ip link set "$dev" up
ip addr add 10.0.2.15/24 dev "$dev"
ip route add default via 10.0.2.2
mkdir -p /etc/containers/registries.conf.d /etc/bootc/update.d
cat > /etc/containers/registries.conf.d/50-vmtest.conf <<EOF
[[registry]]
location = "%[1]s"
insecure = true
[[registry.mirror]]
location = "10.0.2.2:%[2]s"
insecure = true
EOF
cat > /etc/bootc/update.d/50-vmtest.toml <<EOF
[updates]
strategy = "immediate"
stream = "vmtest"
releases = "%[1]s/vmtest/os"
EOF
bootc update-agent --once --format json > agent.json
# Off again before the reboot (the edit reaches the staged deployment): the agent's service
# would run at the next boot, without the network, and record that run instead.
rm /etc/bootc/update.d/50-vmtest.toml
`, reg, port)
}

// mountData mounts the data disk where the installed host's origin points:
// /run/vmtest-data/os.ociarchive is the published image.
const mountData = `mkdir -p /run/vmtest-data && mount -o ro /dev/disk/by-id/virtio-vmtest-data /run/vmtest-data
`

// finalizeStarts is on the console while the shutdown waits for the finalization of a staged
// deployment (systemd's "Job bootc-finalize-staged.service/stop running (4s / 5min 1s)",
// shown from a few seconds in). The finalization itself takes a few seconds under TCG, so a
// step that cuts the power on it holds the stop job first (holdFinalization): the cut then
// lands before bootc's commit point whatever the machine's speed (the kill -9 tests of
// tests/crash_finalize_test.go cut bootc's finalization itself at random points).
const finalizeStarts = "Job bootc-finalize-staged.service/stop running"

// holdFinalization makes the finalization's stop job wait 60 s before bootc runs (a runtime
// drop-in, gone with the boot).
const holdFinalization = `mkdir -p /run/systemd/system/bootc-finalize-staged.service.d
printf '[Service]\nExecStop=\nExecStop=/bin/sleep 60\nExecStop=/usr/bin/bootc internals finalize-staged\n' > /run/systemd/system/bootc-finalize-staged.service.d/hold.conf
systemctl daemon-reload
`

const ovmf = "/usr/share/ovmf/OVMF.fd"

// step runs one numbered step; a failure stops the scenario.
func (v *vm) step(name string, f func()) {
	v.t.Helper()
	n := v.passed + 1
	start := time.Now()
	fmt.Printf("vm-test: step %d/%d: %s\n", n, v.total, name)
	ok := v.t.Run(fmt.Sprintf("%d", n), func(t *testing.T) {
		saved := v.t
		v.t = t
		defer func() { v.t = saved }()
		f()
	})
	if !ok {
		fmt.Printf("vm-test: step %d FAILED after %s\n", n, time.Since(start).Round(time.Second))
		v.t.FailNow()
	}
	v.passed++
	fmt.Printf("vm-test: step %d passed in %s\n", n, time.Since(start).Round(time.Second))
}

func (v *vm) want(ok bool, format string, args ...any) {
	v.t.Helper()
	if !ok {
		v.t.Fatalf(format, args...)
	}
}

// repoRoot is the repository's top directory (tests run in their package directory).
func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// baseTree returns the cached root filesystem images/debian-bootable/build.sh makes, building
// it when the script changed.
func baseTree(t *testing.T) string {
	script := filepath.Join(repoRoot(t), "images/debian-bootable/build.sh")
	data, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	cache := testutil.CacheDir()
	name := "debian-bootable-" + hex.EncodeToString(sum[:6])
	tree := filepath.Join(cache, name)
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := testutil.LockFile(t.Context(), filepath.Join(cache, "debian-bootable.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(tree, "usr/bin/systemctl")); err == nil {
		return tree
	}
	// Older builds (of other script versions) and a half-built tree go.
	old, _ := filepath.Glob(filepath.Join(cache, "debian-bootable-*"))
	for _, o := range old {
		os.RemoveAll(o)
	}
	tmp := tree + ".tmp"
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), script, tmp)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(tmp)
		t.Fatalf("%s: %v", script, err)
	}
	if err := os.Rename(tmp, tree); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("vm-test: built the base tree in %s\n", time.Since(start).Round(time.Second))
	return tree
}

// put writes a file into a tree made with cp -al without touching the shared inode.
func put(t *testing.T, root, rel string, data []byte, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Remove(p)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
}

// buildImages composes the images into oci-archives: v1 (the base, our bootc with its units
// as images/debian-bootable/add-bootc.sh adds them, and the guest side of the test); v2 (a new
// version: a changed file, a changed and a new /etc default); v3a (v2 without its initramfs: the
// kernel panics); v3b (v2 with a required health check that fails); v4 (a good update).
func (v *vm) buildImages() map[string]string {
	t := v.t
	base := baseTree(t)
	bootc := filepath.Join(v.dir, "bootc")
	build := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", bootc, "./cmd/bootc")
	build.Dir = repoRoot(t)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	script, err := os.ReadFile("guest/bootc-vmtest")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("guest/bootc-vmtest.service")
	if err != nil {
		t.Fatal(err)
	}
	versions := []string{"1", "2", "3a", "3b", "4", "5"}
	images := map[string]string{}
	for _, ver := range versions {
		tree := filepath.Join(v.dir, "tree-v"+ver)
		testutil.Run(t, "cp", "-al", base, tree)
		testutil.Run(t, filepath.Join(repoRoot(t), "images/debian-bootable/add-bootc.sh"), tree, bootc)
		put(t, tree, "usr/libexec/bootc-vmtest", script, 0o755)
		put(t, tree, "usr/lib/systemd/system/bootc-vmtest.service", unit, 0o644)
		testutil.Run(t, "systemctl", "--root="+tree, "enable", "bootc-vmtest.service")
		put(t, tree, "usr/share/bootc-vmtest/version", []byte(ver+"\n"), 0o644)
		shipped := "1"
		if ver != "1" {
			shipped = "2"
			put(t, tree, "etc/bootc-vmtest-defaults.conf", []byte("added-in=2\n"), 0o644)
		}
		put(t, tree, "etc/bootc-vmtest.conf", []byte("shipped="+shipped+"\n"), 0o644)
		switch ver {
		case "3a":
			initrds, _ := filepath.Glob(filepath.Join(tree, "boot/initrd.img-*"))
			more, _ := filepath.Glob(filepath.Join(tree, "boot/initramfs-*"))
			if len(initrds)+len(more) == 0 {
				t.Fatalf("the base tree has no initramfs in /boot")
			}
			for _, f := range append(initrds, more...) {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
		case "3b":
			put(t, tree, "usr/lib/bootc/health.d/required.d/50-vmtest-fails", []byte(failingCheck), 0o755)
			// The image's own configuration: two boot attempts instead of the default three.
			put(t, tree, "usr/lib/bootc/config.toml", []byte("[boot]\nattempts = 2\n"), 0o644)
		}
		start := time.Now()
		archive := filepath.Join(v.dir, "v"+ver+".ociarchive")
		testutil.Run(t, bootc, "compose", "image", "--rootfs", tree, "--output", "oci-archive:"+archive,
			"--version", "2026."+ver, "--timestamp", "2026-12-01T00:00:00Z", "-q")
		st, _ := os.Stat(archive)
		fmt.Printf("vm-test: composed v%s (%d MiB) in %s\n", ver, st.Size()>>20, time.Since(start).Round(time.Second))
		images["v"+ver] = archive
		os.RemoveAll(tree)
	}
	return images
}

// failingCheck is v3b's required health check: it says so on the console (with the version, as
// the marker does: the machine reboots before the test unit runs) and fails.
const failingCheck = `#!/bin/sh
echo "BOOTC-VMTEST: health check fails on version $(cat /usr/share/bootc-vmtest/version)" > /dev/console
echo "vmtest: this check always fails" >&2
exit 3
`

// install writes a new disk v.dir/NAME with `bootc install to-disk`, GRUB from the image
// included, and boots from it from now on; the installed host follows the image the data disk
// publishes.
func (v *vm) install(image, name string) {
	v.disk = filepath.Join(v.dir, name)
	start := time.Now()
	out := testutil.Run(v.t, filepath.Join(v.dir, "bootc"), "install", "to-disk", "--source-imgref", "oci-archive:"+image,
		"--target-imgref", "oci-archive:/run/vmtest-data/os.ociarchive",
		"--stateroot", stateroot, "--karg", "console=ttyS0", "--size", "8G", v.disk)
	fmt.Printf("vm-test: install to-disk in %s:\n%s", time.Since(start).Round(time.Second), out)
	var table struct {
		PartitionTable struct {
			Partitions []struct {
				Start int64  `json:"start"`
				Type  string `json:"type"`
			} `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err := json.Unmarshal([]byte(testutil.Run(v.t, "sfdisk", "--json", v.disk)), &table); err != nil {
		v.t.Fatal(err)
	}
	parts := table.PartitionTable.Partitions
	v.want(len(parts) == 3, "the disk has %d partitions, want BIOS boot, ESP and root: %+v", len(parts), parts)
	v.rootOffset = parts[2].Start * 512
	v.installed = append(v.installed, installedDisk{path: v.disk, rootOffset: v.rootOffset})
}

// dataDisk returns an ext4 disk holding the image as os.ociarchive (made once per image).
func (v *vm) dataDisk(name string) string {
	if d, ok := v.published[name]; ok {
		return d
	}
	img := v.images[name]
	if img == "" {
		v.t.Fatalf("no image %q", name)
	}
	dir := filepath.Join(v.dir, "data-"+name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Link(img, filepath.Join(dir, "os.ociarchive")); err != nil {
		v.t.Fatal(err)
	}
	st, _ := os.Stat(img)
	disk := filepath.Join(v.dir, "data-"+name+".img")
	size := (st.Size()*5/4 + 64<<20) >> 20
	testutil.Run(v.t, "mkfs.ext4", "-q", "-L", "vmtest-data", "-d", dir, disk, strconv.FormatInt(size, 10)+"M")
	v.published[name] = disk
	return disk
}

// debugfs runs a debugfs request against the root filesystem of the disk image.
func (v *vm) debugfs(req string) string {
	v.t.Helper()
	cmd := exec.Command("debugfs", "-R", req, v.disk+"?offset="+strconv.FormatInt(v.rootOffset, 10))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		v.t.Fatalf("debugfs %s: %v\n%s", req, err, stderr.Bytes())
	}
	return string(out)
}

// grubenv reads /boot/grub/grubenv off the disk with GRUB's own grub-editenv.
func (v *vm) grubenv() map[string]string {
	v.t.Helper()
	f := filepath.Join(v.dir, "grubenv")
	os.Remove(f)
	v.debugfs("dump /boot/grub/grubenv " + f)
	env := map[string]string{}
	for _, line := range strings.Split(testutil.Run(v.t, "grub-editenv", f, "list"), "\n") {
		if k, val, ok := strings.Cut(line, "="); ok {
			env[k] = val
		}
	}
	return env
}

// checkGrubConfig runs grub-script-check on a grub.cfg read off the disk.
func (v *vm) checkGrubConfig(cfg string) {
	v.t.Helper()
	cmd := exec.Command("grub-script-check")
	cmd.Stdin = strings.NewReader(cfg)
	if out, err := cmd.CombinedOutput(); err != nil {
		v.t.Fatalf("grub-script-check refuses the disk's grub.cfg: %v\n%s\n%s", err, out, cfg)
	}
}

// titleVersion finds the image version in an entry title: "PRETTY_NAME VERSION (ostree:N)".
var titleVersion = regexp.MustCompile(`(\S+) \(ostree(?::[^:)]+)?:\d+\)$`)

// entries reads the BLS entries of the disk, default (highest version) first.
func (v *vm) entries() []bootEntry {
	v.t.Helper()
	var list []bootEntry
	for _, line := range strings.Split(v.debugfs("ls -p /boot/loader/entries"), "\n") {
		// ls -p: /inode/mode/uid/gid/name/size/
		f := strings.Split(line, "/")
		if len(f) < 7 || !strings.HasSuffix(f[5], ".conf") {
			continue
		}
		e := bootEntry{file: f[5]}
		for _, l := range strings.Split(v.debugfs("cat /boot/loader/entries/"+f[5]), "\n") {
			key, val, _ := strings.Cut(l, " ")
			val = strings.TrimSpace(val)
			switch key {
			case "title":
				e.title = val
			case "version":
				e.version, _ = strconv.Atoi(val)
			case "linux":
				e.linux = val
			case "initrd":
				e.initrd = val
			case "options":
				e.options = val
			}
		}
		if m := titleVersion.FindStringSubmatch(e.title); m != nil {
			e.osVersion = m[1]
		}
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].version > list[j].version })
	if len(list) == 0 {
		v.t.Fatal("the disk has no boot entries")
	}
	return list
}

// marker is the guest's line once userspace is up (or v3b's failing health check runs).
var marker = regexp.MustCompile(`BOOTC-VMTEST: (?:userspace is up,|health check fails on) version ([^\s,]+)`)

// boot powers the machine on from its disk: the firmware loads GRUB from the disk, GRUB picks
// the entry; no -kernel. It waits until qemu exits (the guest reboots or powers off; -no-reboot
// makes either end the run), or cuts the power at spec.killOn, and checks that the version
// spec.want came up.
func (v *vm) boot(spec bootSpec) *bootResult {
	t := v.t
	t.Helper()
	v.boots++
	name := fmt.Sprintf("boot%d-%s", v.boots, spec.firmware)
	kdir := filepath.Join(v.dir, name)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	// One vCPU: with two, multi-threaded TCG sometimes livelocks the guest kernel's int3-based
	// code patching (an RCU stall with a CPU spinning in asm_exc_int3, seen once in about 6
	// runs); a single vCPU cannot race with itself.
	args := []string{"-accel", "tcg", "-m", "1536", "-smp", "1", "-nodefaults", "-net", "none", "-display", "none",
		"-serial", "stdio", "-no-reboot",
		"-drive", "file=" + v.disk + ",format=raw,if=none,id=root", "-device", "virtio-blk-pci,drive=root,serial=vmtest-root,bootindex=0",
		"-drive", "file=" + v.dataDisk(spec.publish) + ",format=raw,if=none,id=data,readonly=on", "-device", "virtio-blk-pci,drive=data,serial=vmtest-data"}
	if spec.firmware == "uefi" {
		args = append(args, "-bios", ovmf)
	}
	if spec.net {
		args = append(args, "-nic", "user,model=virtio-net-pci")
	}
	if spec.ignition != "" {
		args = append(args, "-fw_cfg", "name=opt/com.coreos/config,file="+spec.ignition)
	}
	var ctl string
	if spec.step != "" {
		ctl = v.controlDisk(name, "set -e\n"+spec.step, spec.then)
		args = append(args, "-drive", "file="+ctl+",format=raw,if=none,id=ctl", "-device", "virtio-blk-pci,drive=ctl,serial=vmtest-ctl")
	}
	fmt.Printf("vm-test: %s: power on (%s firmware, %s published), expecting %s\n", name, spec.firmware, spec.publish, orPanic(spec))

	ctx, cancel := context.WithTimeout(t.Context(), bootTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	logPath := filepath.Join(kdir, "console.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	res := &bootResult{}
	var console strings.Builder
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sc.Split(scanConsoleLines)
	for sc.Scan() {
		line := sc.Text()
		console.WriteString(line + "\n")
		logf.WriteString(line + "\n")
		at := time.Since(start)
		switch {
		case strings.Contains(line, "GNU GRUB") && !res.grub:
			res.grub = true
			fmt.Printf("vm-test: %s: GRUB after %s\n", name, at.Round(100*time.Millisecond))
		case marker.MatchString(line) && res.version == "":
			res.version = marker.FindStringSubmatch(line)[1]
			fmt.Printf("vm-test: %s: version %s up after %s\n", name, res.version, at.Round(time.Second))
		case strings.Contains(line, " login: ") || strings.HasSuffix(strings.TrimSpace(line), " login:"):
			if _, ok := v.login[spec.firmware]; !ok {
				if v.login == nil {
					v.login = map[string]time.Duration{}
				}
				v.login[spec.firmware] = at
				fmt.Printf("vm-test: %s: login prompt after %s\n", name, at.Round(100*time.Millisecond))
			}
		case strings.Contains(line, "Kernel panic - not syncing"):
			res.panic = true
			fmt.Printf("vm-test: %s: %s\n", name, strings.TrimSpace(line))
		}
		if spec.killOn != "" && strings.Contains(line, spec.killOn) && !res.killed {
			res.killed = true
			fmt.Printf("vm-test: %s: power cut at %q after %s\n", name, strings.TrimSpace(ansiEscape.ReplaceAllString(line, "")), at.Round(100*time.Millisecond))
			cmd.Process.Kill()
		}
	}
	err = cmd.Wait()
	res.elapsed = time.Since(start)
	res.console = console.String()
	if ctx.Err() != nil {
		t.Fatalf("%s: no end within %s; console tail:\n%s", name, bootTimeout, tail(res.console, 40))
	}
	if err != nil && !res.killed {
		t.Fatalf("%s: qemu: %v; console tail:\n%s", name, err, tail(res.console, 40))
	}
	res.rebooted = !res.killed && (strings.Contains(res.console, "reboot: Restarting system") ||
		res.panic && strings.Contains(res.console, "Rebooting in"))
	fmt.Printf("vm-test: %s: ended after %s (rebooted %v, console log %s)\n", name, res.elapsed.Round(time.Second), res.rebooted, logPath)
	if spec.panic != res.panic {
		t.Fatalf("%s: kernel panic %v, want %v; console tail:\n%s", name, res.panic, spec.panic, tail(res.console, 40))
	}
	if spec.want != "" && res.version != spec.want {
		t.Fatalf("%s: version %q came up, want %q; console tail:\n%s", name, res.version, spec.want, tail(res.console, 40))
	}
	if ctl == "" || res.killed {
		return res
	}
	res.files = readControlDisk(t, ctl)
	for name, body := range res.files {
		os.WriteFile(filepath.Join(kdir, "result-"+name), []byte(body), 0o644)
	}
	if res.files["rc"] != "0\n" {
		t.Fatalf("%s: the step failed (exit %q):\n%s", name, res.files["rc"], res.files["step.log"])
	}
	return res
}

// ansiEscape matches the terminal escape sequences of systemd's status lines.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)

func orPanic(s bootSpec) string {
	if s.panic {
		return "a kernel panic"
	}
	return "version " + s.want
}

// scanConsoleLines splits the console at newlines and carriage returns: GRUB's menu redraws
// lines with escape sequences and CRs but few newlines.
func scanConsoleLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexAny(data, "\r\n"); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// wantFailure checks the status's record of the failed update: image version ver, and a reason
// naming check (when not empty).
func (v *vm) wantFailure(st *hostStatus, ver, check string) {
	v.t.Helper()
	f := st.Status.FailedUpdate
	v.want(f != nil, "status records no failed update")
	v.want(f.Version == "2026."+ver && strings.HasPrefix(f.ImageDigest, "sha256:") && f.Reason != "",
		"the failed update is %+v, want version 2026.%s with a digest and a reason", f, ver)
	v.want(check == "" || strings.Contains(f.Reason, check), "the reason %q does not name the health check %s", f.Reason, check)
}

// controlDisk writes a control disk image: a tar archive with step.sh, name and then.
func (v *vm) controlDisk(name, step, then string) string {
	path := filepath.Join(v.dir, name+"-ctl.img")
	f, err := os.Create(path)
	if err != nil {
		v.t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, file := range []struct{ name, body string }{{"step.sh", step}, {"name", name}, {"then", then}} {
		if err := tw.WriteHeader(&tar.Header{Name: file.name, Mode: 0o644, Size: int64(len(file.body)), Typeflag: tar.TypeReg}); err != nil {
			v.t.Fatal(err)
		}
		if _, err := io.WriteString(tw, file.body); err != nil {
			v.t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		v.t.Fatal(err)
	}
	if err := f.Truncate(ctlSize); err != nil {
		v.t.Fatal(err)
	}
	return path
}

func readControlDisk(t *testing.T, path string) map[string]string {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the results from the control disk: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(h.Name)] = string(data)
	}
	if _, ok := files["rc"]; !ok {
		t.Fatalf("the control disk holds no results: %v", files)
	}
	return files
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// hostStatus is the part of `bootc status --format json` the test reads.
type hostStatus struct {
	Status struct {
		Staged, Booted, Rollback *entryStatus
		RollbackQueued           bool          `json:"rollbackQueued"`
		FailedUpdate             *failedUpdate `json:"failedUpdate"`
		UpdateAgent              *agentState   `json:"updateAgent"`
	} `json:"status"`
}

// agentState is the status's record of the update agent's last run.
type agentState struct {
	State  string `json:"state"`
	Target string `json:"targetVersion"`
}

// failedUpdate is the status's record of an update that did not boot.
type failedUpdate struct {
	Version     string `json:"version"`
	ImageDigest string `json:"imageDigest"`
	Reason      string `json:"reason"`
}

type entryStatus struct {
	Image *struct {
		Version *string `json:"version"`
	} `json:"image"`
	Ostree *struct {
		Checksum     string `json:"checksum"`
		DeploySerial int    `json:"deploySerial"`
	} `json:"ostree"`
}

// ver is the version image vN carries (not "N": ostree leaves a version out of the boot entry
// title when PRETTY_NAME contains it, and "Debian GNU/Linux 12" contains 1 and 2).
func ver(n string) string { return "2026." + n }

func version(e *entryStatus) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return "<none>"
	}
	return *e.Image.Version
}

func (v *vm) status(b *bootResult, file string) *hostStatus {
	v.t.Helper()
	var st hostStatus
	if err := json.Unmarshal([]byte(b.files[file]), &st); err != nil || st.Status.Booted == nil {
		v.t.Fatalf("%s: %v\n%s\nstep log:\n%s", file, err, b.files[file], b.files["step.log"])
	}
	return &st
}

// adminLine is a deployment line of `ostree admin status`: "* debian 0123….0 (pending)".
var adminLine = regexp.MustCompile(`^([* ]) (\S+) ([0-9a-f]{64})\.(\d+)(?: \((\w+)\))?`)

// agree checks `ostree admin status` (run in the same boot) against our status: the same
// booted deployment (marked *); ostree's "pending" one (ahead of the booted one) is our staged
// one, or our rollback when rollbackQueued says it is ahead; ostree's "rollback" is our
// rollback otherwise.
func (v *vm) agree(b *bootResult, st *hostStatus, file string) {
	v.t.Helper()
	text := b.files[file]
	var booted, pending, rollback string
	n := 0
	for _, line := range strings.Split(text, "\n") {
		m := adminLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		n++
		id := m[3] + "." + m[4]
		if m[1] == "*" {
			booted = id
		}
		switch m[5] {
		case "pending", "staged":
			pending = id
		case "rollback":
			rollback = id
		}
	}
	id := func(e *entryStatus) string {
		if e == nil || e.Ostree == nil {
			return ""
		}
		return fmt.Sprintf("%s.%d", e.Ostree.Checksum, e.Ostree.DeploySerial)
	}
	v.want(booted != "" && booted == id(st.Status.Booted), "booted: ostree admin status says %q, we say %q\n%s", booted, id(st.Status.Booted), text)
	ahead, behind := id(st.Status.Staged), id(st.Status.Rollback)
	if st.Status.RollbackQueued {
		if ahead == "" {
			ahead = behind
		}
		behind = ""
	}
	v.want(pending == ahead, "pending: ostree admin status says %q, we say %q (staged %q, rollback %q, queued %v)\n%s",
		pending, ahead, id(st.Status.Staged), id(st.Status.Rollback), st.Status.RollbackQueued, text)
	v.want(rollback == behind, "rollback: ostree admin status says %q, we say %q\n%s", rollback, behind, text)
	fmt.Printf("vm-test: ostree admin status agrees (%d deployments, booted %s)\n", n, booted[:12])
}
