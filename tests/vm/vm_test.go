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
	// partOffset is where `bootc install to-disk --bootloader none` puts the root partition.
	partOffset  = 1 << 20
	bootTimeout = 5 * time.Minute
	ctlSize     = 16 << 20
	stateroot   = "debian"
)

// vm is one test machine: its disks and what the harness learnt so far.
type vm struct {
	t          *testing.T
	dir        string
	disk, data string
	boots      int
	passed     int
	total      int
	start      time.Time
}

// bootEntry is a BLS entry read from the disk.
type bootEntry struct {
	file                 string
	version              int
	title, linux, initrd string
	options              string
	osVersion            string // the image version, from the title
}

// bootResult is what one boot left: the console log and the files the step saved.
type bootResult struct {
	console string
	files   map[string]string
	panic   bool
	elapsed time.Duration
}

// TestVM is the whole scenario; each numbered step must pass for the next to run.
func TestVM(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "qemu-system-x86_64", "debugfs", "mkfs.ext4", "sfdisk", "debootstrap", "cp")
	// The work directory survives a failure, with every boot's console log and results.
	dir, err := os.MkdirTemp("", "vm-test-")
	if err != nil {
		t.Fatal(err)
	}
	v := &vm{t: t, dir: dir, start: time.Now(), total: 9}
	defer func() {
		if t.Failed() {
			fmt.Printf("vm-test: console logs and results kept in %s\n", dir)
		} else {
			os.RemoveAll(dir)
		}
		fmt.Printf("vm-test: %d/%d steps passed in %s\n", v.passed, v.total, time.Since(v.start).Round(time.Second))
	}()

	var images map[string]string
	v.step("build the OS images and the disk", func() {
		images = v.buildImages()
		v.install(images["v1"])
		v.makeDataDisk(images["v2"], images["v3"])
	})

	var b1 *bootResult
	v.step("boot v1 to the marker; status agrees with ostree admin status", func() {
		b1 = v.boot("v1", 0, `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
cat /proc/cmdline > cmdline
# Local state: an edited and an added /etc file, and data in /var.
echo "edited=by-the-operator" >> /etc/bootc-vmtest.conf
echo "local=1" > /etc/bootc-vmtest-local.conf
mkdir -p /var/lib/bootc-vmtest && echo kept > /var/lib/bootc-vmtest/data
# Step 3 reads what the switch to v2 leaves, in this same boot.
mkdir -p /run/vmtest-data && mount -o ro /dev/disk/by-id/virtio-vmtest-data /run/vmtest-data
bootc switch --transport oci-archive /run/vmtest-data/v2.ociarchive > switch.log
umount /run/vmtest-data
bootc status --format json > status-switched.json
ostree admin status > ostree-admin-status-switched.txt
`, "poweroff")
		st := v.status(b1, "status.json")
		v.want(version(st.Status.Booted) == ver("1") && st.Status.Staged == nil && st.Status.Rollback == nil,
			"after install: booted %s, staged %v, rollback %v", version(st.Status.Booted), st.Status.Staged, st.Status.Rollback)
		v.agree(b1, st, "ostree-admin-status.txt")
		v.want(strings.Contains(b1.files["cmdline"], "ostree=/ostree/boot."), "kernel command line: %q", b1.files["cmdline"])
	})

	v.step("switch to v2 from an oci-archive on a second disk; status shows it staged", func() {
		st := v.status(b1, "status-switched.json")
		v.want(version(st.Status.Staged) == ver("2") && version(st.Status.Booted) == ver("1"),
			"after switch: staged %s, booted %s", version(st.Status.Staged), version(st.Status.Booted))
		v.agree(b1, st, "ostree-admin-status-switched.txt")
	})

	v.step("reboot into v2: booted, v1 is the rollback, /etc edits and /var kept", func() {
		b := v.boot("v2", 0, `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
cp /etc/bootc-vmtest.conf /etc/bootc-vmtest-local.conf /usr/share/bootc-vmtest/version /var/lib/bootc-vmtest/data . 
cp /etc/bootc-vmtest-defaults.conf . || true
bootc rollback > rollback.log
bootc status --format json > status-rolledback.json
`, "reboot")
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("2") && version(st.Status.Rollback) == ver("1") && st.Status.Staged == nil,
			"booted %s, rollback %s, staged %v", version(st.Status.Booted), version(st.Status.Rollback), st.Status.Staged)
		v.agree(b, st, "ostree-admin-status.txt")
		v.want(b.files["version"] == "2\n", "/usr/share/bootc-vmtest/version is %q", b.files["version"])
		v.want(b.files["bootc-vmtest.conf"] == "shipped=1\nedited=by-the-operator\n", "the edited /etc file: %q", b.files["bootc-vmtest.conf"])
		v.want(b.files["bootc-vmtest-local.conf"] == "local=1\n", "the added /etc file: %q", b.files["bootc-vmtest-local.conf"])
		v.want(b.files["bootc-vmtest-defaults.conf"] == "added-in=2\n", "v2's new /etc default: %q", b.files["bootc-vmtest-defaults.conf"])
		v.want(b.files["data"] == "kept\n", "/var data: %q", b.files["data"])
		st = v.status(b, "status-rolledback.json")
		v.want(version(st.Status.Booted) == ver("2") && version(st.Status.Rollback) == ver("1") && st.Status.RollbackQueued,
			"after rollback: booted %s, rollback %s, queued %v", version(st.Status.Booted), version(st.Status.Rollback), st.Status.RollbackQueued)
	})

	v.step("rollback and reboot into v1: booted, v2 is the rollback, /etc edits kept", func() {
		b := v.boot("v1", 0, `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
cp /etc/bootc-vmtest.conf /usr/share/bootc-vmtest/version .
mkdir -p /run/vmtest-data && mount -o ro /dev/disk/by-id/virtio-vmtest-data /run/vmtest-data
bootc switch --transport oci-archive /run/vmtest-data/v3.ociarchive > switch.log
umount /run/vmtest-data
`, "reboot")
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("1") && version(st.Status.Rollback) == ver("2"),
			"booted %s, rollback %s", version(st.Status.Booted), version(st.Status.Rollback))
		v.agree(b, st, "ostree-admin-status.txt")
		v.want(b.files["version"] == "1\n", "version %q", b.files["version"])
		v.want(b.files["bootc-vmtest.conf"] == "shipped=1\nedited=by-the-operator\n", "the edited /etc file: %q", b.files["bootc-vmtest.conf"])
		v.want(b.files["rc"] == "0\n", "the switch to v3 failed:\n%s", b.files["step.log"])
	})

	v.step("the broken v3 (no initramfs) fails to boot", func() {
		entries := v.entries()
		v.want(entries[0].osVersion == ver("3") && entries[0].initrd == "", "the default entry is not v3 without an initramfs: %+v", entries[0])
		b := v.boot("v3", 0, "true\n", "poweroff")
		v.want(b.panic, "v3 booted instead of failing")
	})

	v.step("the previous entry still boots v1; rollback makes it the default again", func() {
		entries := v.entries()
		v.want(len(entries) == 2 && entries[1].osVersion == ver("1"), "entries: %+v", entries)
		b := v.boot("v1", 1, `
bootc status --format json > status.json
ostree admin status > ostree-admin-status.txt
bootc rollback > rollback.log
`, "poweroff")
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("1") && version(st.Status.Rollback) == ver("3") && st.Status.RollbackQueued,
			"booted %s, rollback %s (queued %v)", version(st.Status.Booted), version(st.Status.Rollback), st.Status.RollbackQueued)
		v.agree(b, st, "ostree-admin-status.txt")
		after := v.entries()
		v.want(after[0].osVersion == ver("1") && after[0].initrd != "" && len(after) == 2 && after[1].osVersion == ver("3"),
			"after rollback the entries are %+v; want v1 first, v3 second", after)
	})

	v.step("reboot: the default entry boots v1 again", func() {
		b := v.boot("v1", 0, "bootc status --format json > status.json\n", "poweroff")
		st := v.status(b, "status.json")
		v.want(version(st.Status.Booted) == ver("1"), "booted %s", version(st.Status.Booted))
	})

	v.step("the disk's repository passes ostree fsck", func() {
		// Outside the VM, read-only: the deployments and objects the guest wrote are sound.
		mnt := t.TempDir()
		testutil.Run(t, "mount", "-o", "ro,loop,offset="+strconv.Itoa(partOffset), v.disk, mnt)
		defer exec.Command("umount", mnt).Run()
		out := testutil.Run(t, "ostree", "fsck", "--repo", filepath.Join(mnt, "ostree/repo"))
		v.want(!strings.Contains(out, "corrupt"), "fsck:\n%s", out)
	})
}

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

// buildImages composes v1 (the base, our bootc and the guest side of the test), v2 (a new
// version: a changed file, a changed and a new /etc default) and v3 (v2 without its
// initramfs) into oci-archives.
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
	bin, err := os.ReadFile(bootc)
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("guest/bootc-vmtest")
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("guest/bootc-vmtest.service")
	if err != nil {
		t.Fatal(err)
	}
	trees := map[string]string{}
	for _, ver := range []string{"1", "2", "3"} {
		tree := filepath.Join(v.dir, "tree-v"+ver)
		testutil.Run(t, "cp", "-al", base, tree)
		put(t, tree, "usr/bin/bootc", bin, 0o755)
		put(t, tree, "usr/libexec/bootc-vmtest", script, 0o755)
		put(t, tree, "usr/lib/systemd/system/bootc-vmtest.service", unit, 0o644)
		wants := filepath.Join(tree, "usr/lib/systemd/system/multi-user.target.wants")
		if err := os.MkdirAll(wants, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("../bootc-vmtest.service", filepath.Join(wants, "bootc-vmtest.service")); err != nil {
			t.Fatal(err)
		}
		put(t, tree, "usr/share/bootc-vmtest/version", []byte(ver+"\n"), 0o644)
		shipped := "1"
		if ver != "1" {
			shipped = "2"
			put(t, tree, "etc/bootc-vmtest-defaults.conf", []byte("added-in=2\n"), 0o644)
		}
		put(t, tree, "etc/bootc-vmtest.conf", []byte("shipped="+shipped+"\n"), 0o644)
		if ver == "3" {
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
		}
		trees["v"+ver] = tree
	}
	images := map[string]string{}
	for _, ver := range []string{"1", "2", "3"} {
		start := time.Now()
		archive := filepath.Join(v.dir, "v"+ver+".ociarchive")
		testutil.Run(t, bootc, "compose", "image", "--rootfs", trees["v"+ver], "--output", "oci-archive:"+archive,
			"--version", "2026."+ver, "--timestamp", "2026-12-01T00:00:00Z", "-q")
		st, _ := os.Stat(archive)
		fmt.Printf("vm-test: composed v%s (%d MiB) in %s\n", ver, st.Size()>>20, time.Since(start).Round(time.Second))
		images["v"+ver] = archive
		os.RemoveAll(trees["v"+ver])
	}
	return images
}

// install writes the disk with `bootc install to-disk`, without a bootloader: the harness boots
// the entries itself, from the root partition at partOffset.
func (v *vm) install(image string) {
	v.disk = filepath.Join(v.dir, "disk.img")
	start := time.Now()
	out := testutil.Run(v.t, filepath.Join(v.dir, "bootc"), "install", "to-disk", "--source-imgref", "oci-archive:"+image,
		"--stateroot", stateroot, "--karg", "console=ttyS0", "--size", "8G", "--bootloader", "none", v.disk)
	fmt.Printf("vm-test: install to-disk in %s:\n%s", time.Since(start).Round(time.Second), out)
}

// makeDataDisk puts v2 and v3 on an ext4 disk the guest mounts (no network needed).
func (v *vm) makeDataDisk(images ...string) {
	dir := filepath.Join(v.dir, "data")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		v.t.Fatal(err)
	}
	var total int64
	for _, img := range images {
		if err := os.Link(img, filepath.Join(dir, filepath.Base(img))); err != nil {
			v.t.Fatal(err)
		}
		st, _ := os.Stat(img)
		total += st.Size()
	}
	v.data = filepath.Join(v.dir, "data.img")
	size := (total*5/4 + 64<<20) >> 20
	testutil.Run(v.t, "mkfs.ext4", "-q", "-L", "vmtest-data", "-d", dir, v.data, strconv.FormatInt(size, 10)+"M")
}

// debugfs runs a debugfs request against the root filesystem of the disk image.
func (v *vm) debugfs(req string) string {
	v.t.Helper()
	cmd := exec.Command("debugfs", "-R", req, v.disk+"?offset="+strconv.Itoa(partOffset))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		v.t.Fatalf("debugfs %s: %v\n%s", req, err, stderr.Bytes())
	}
	return string(out)
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

// boot starts the machine from entry index (0: the default, 1: the next one in the menu)
// with a control disk holding the step, and waits until qemu exits: the guest reboots or
// powers off after the step, or the kernel panics. then is reboot or poweroff.
func (v *vm) boot(want string, index int, step, then string) *bootResult {
	t := v.t
	t.Helper()
	v.boots++
	entries := v.entries()
	if index >= len(entries) {
		t.Fatalf("no boot entry %d: %+v", index, entries)
	}
	e := entries[index]
	if e.osVersion != ver(strings.TrimPrefix(want, "v")) {
		t.Fatalf("boot entry %d is %q, not %s: %+v", index, e.title, want, entries)
	}
	name := fmt.Sprintf("boot%d-%s", v.boots, want)
	ctl := v.controlDisk(name, "set -e\n"+step, then)

	kdir := filepath.Join(v.dir, name)
	if err := os.MkdirAll(kdir, 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(kdir, "vmlinuz")
	v.debugfs(fmt.Sprintf("dump %s %s", e.linux, kernel))
	// One vCPU: with two, multi-threaded TCG sometimes livelocks the guest kernel's int3-based
	// code patching (an RCU stall with a CPU spinning in asm_exc_int3, seen once in about 6
	// runs); a single vCPU cannot race with itself.
	args := []string{"-accel", "tcg", "-m", "2048", "-smp", "1", "-nodefaults", "-display", "none",
		"-serial", "stdio", "-no-reboot", "-kernel", kernel, "-append", e.options,
		"-drive", "file=" + v.disk + ",format=raw,if=none,id=root", "-device", "virtio-blk-pci,drive=root,serial=vmtest-root",
		"-drive", "file=" + v.data + ",format=raw,if=none,id=data,readonly=on", "-device", "virtio-blk-pci,drive=data,serial=vmtest-data",
		"-drive", "file=" + ctl + ",format=raw,if=none,id=ctl", "-device", "virtio-blk-pci,drive=ctl,serial=vmtest-ctl"}
	if e.initrd != "" {
		initrd := filepath.Join(kdir, "initrd")
		v.debugfs(fmt.Sprintf("dump %s %s", e.initrd, initrd))
		args = append(args, "-initrd", initrd)
	}
	fmt.Printf("vm-test: booting entry %d (%s) expecting %s\n", index, e.title, want)

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
	markerAt := time.Duration(0)
	for sc.Scan() {
		line := sc.Text()
		console.WriteString(line + "\n")
		logf.WriteString(line + "\n")
		if strings.Contains(line, "BOOTC-VMTEST: userspace is up") && markerAt == 0 {
			markerAt = time.Since(start)
			fmt.Printf("vm-test: %s: marker after %s\n", name, markerAt.Round(time.Second))
		}
		if strings.Contains(line, "Kernel panic - not syncing") {
			res.panic = true
			fmt.Printf("vm-test: %s: %s\n", name, strings.TrimSpace(line))
			cmd.Process.Kill()
		}
	}
	err = cmd.Wait()
	res.elapsed = time.Since(start)
	res.console = console.String()
	if ctx.Err() != nil {
		t.Fatalf("%s: no end within %s; console tail:\n%s", name, bootTimeout, tail(res.console, 40))
	}
	if err != nil && !res.panic {
		t.Fatalf("%s: qemu: %v; console tail:\n%s", name, err, tail(res.console, 40))
	}
	fmt.Printf("vm-test: %s: ended after %s (console log %s)\n", name, res.elapsed.Round(time.Second), logPath)
	if res.panic {
		return res
	}
	if markerAt == 0 {
		t.Fatalf("%s: the marker never came; console tail:\n%s", name, tail(res.console, 40))
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
		RollbackQueued           bool `json:"rollbackQueued"`
	} `json:"status"`
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
