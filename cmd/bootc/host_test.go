package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// tinyOS writes a small bootable tree: a stand-in kernel and initramfs, /etc defaults and /var
// content. extra files (path -> content) are added or override.
func tinyOS(t *testing.T, version string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"usr/lib/modules/6.1.0-test/vmlinuz":       "KERNEL",
		"usr/lib/modules/6.1.0-test/initramfs.img": "INITRD",
		"usr/bin/tool":           "#!/bin/sh\necho " + version + "\n",
		"etc/os-release":         "ID=tinyos\nVERSION_ID=" + version + "\nPRETTY_NAME=\"Tiny OS " + version + "\"\n",
		"etc/demo/theme.conf":    "colour=blue\n",
		"etc/demo/defaults.conf": "level=" + version + "\n",
		"etc/motd":               "welcome\n",
		"var/lib/demo/seed":      "seed " + version + "\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	for p, content := range files {
		path := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// hostStatusJSON runs `bootc --sysroot S status --format json`.
func hostStatusJSON(t *testing.T, sys string) *hostStatus {
	t.Helper()
	var st hostStatus
	if err := json.Unmarshal([]byte(mustRun(t, "--sysroot", sys, "status", "--format", "json")), &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func entryVersion(e *bootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return "<none>"
	}
	return *e.Image.Version
}

var adminDeployRe = regexp.MustCompile(`(?m)^[* ] (\S+) ([0-9a-f]{64})\.(\d+)`)

// adminStatus returns "commit.serial" of each deployment `ostree admin status` lists, in order,
// and its whole output.
func adminStatus(t *testing.T, sys string) ([]string, string) {
	t.Helper()
	out := testutil.Run(t, "ostree", "admin", "status", "--sysroot="+sys)
	var ids []string
	for _, m := range adminDeployRe.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[2]+"."+m[3])
	}
	return ids, out
}

func statusIDs(st *hostStatus) []string {
	// In a sysroot directory the booted entry is the default, so boot order is booted first.
	var ids []string
	for _, e := range append([]*bootEntry{st.Status.Staged, st.Status.Booted, st.Status.Rollback}, st.Status.OtherDeployments...) {
		if e != nil {
			ids = append(ids, e.Ostree.Checksum+"."+strconv.Itoa(e.Ostree.DeploySerial))
		}
	}
	return ids
}

// checkBootEntries checks every BLS entry names a kernel and initramfs that exist.
func checkBootEntries(t *testing.T, sys string) {
	t.Helper()
	entries, err := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no boot entries in %s/boot/loader/entries (%v)", sys, err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(line, " ")
			if k != "linux" && k != "initrd" {
				continue
			}
			// With sysroot.bootprefix the path is relative to the physical root, else to /boot.
			p := filepath.Join(sys, "boot", v)
			if strings.HasPrefix(v, "/boot/") {
				p = filepath.Join(sys, v)
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %s %s does not exist: %v", filepath.Base(e), k, v, err)
			}
		}
	}
}

// TestHostLifecycle runs install, upgrade (check, download-only, from-downloaded), switch and
// rollback on a sysroot directory, with images in OCI layouts, and checks each step against
// the real `ostree admin status` and `ostree fsck`.
func TestHostLifecycle(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	images := t.TempDir()
	layout := filepath.Join(images, "layout")
	compose := func(rootfs, tag string) {
		t.Helper()
		mustRun(t, "compose", "image", "--rootfs", rootfs, "--output", "oci:"+layout+":"+tag, "--timestamp", "2026-01-01T00:00:00Z", "-q")
	}
	compose(tinyOS(t, "1.0", nil), "stable")
	sys := testutil.SysrootDir(t)

	out := mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout+":stable", "--karg", "console=ttyS0", sys)
	if !strings.Contains(out, "Installed") {
		t.Errorf("install printed %q", out)
	}
	st := hostStatusJSON(t, sys)
	if entryVersion(st.Status.Booted) != "1.0" || st.Status.Rollback != nil || st.Spec.Image == nil || st.Spec.Image.Transport != "oci" {
		t.Fatalf("after install: %+v", st.Status)
	}
	if st.Status.Type == nil || *st.Status.Type != "bootcHost" || st.Status.Booted.Image.Image.Signature != "insecure" {
		t.Errorf("status type/signature wrong: %+v", st.Status.Booted.Image)
	}
	ids, admin := adminStatus(t, sys)
	if len(ids) != 1 || ids[0] != statusIDs(st)[0] {
		t.Fatalf("ostree admin status lists %v, we list %v:\n%s", ids, statusIDs(st), admin)
	}
	// ostree 2022.7 prints container origins as "<unknown origin type>"; the file is what counts.
	origin, err := os.ReadFile(filepath.Join(sys, "ostree/deploy/default/deploy", ids[0]+".origin"))
	if err != nil || !strings.Contains(string(origin), "container-image-reference=ostree-unverified-image:oci:"+layout+":stable\n") {
		t.Errorf("origin file: %q, %v", origin, err)
	}
	checkBootEntries(t, sys)
	entry, _ := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	if data, _ := os.ReadFile(entry[0]); !strings.Contains(string(data), "console=ttyS0") {
		t.Errorf("boot entry lacks the --karg:\n%s", data)
	}
	if data, err := os.ReadFile(filepath.Join(sys, "ostree/deploy/default/var/lib/demo/seed")); err != nil || string(data) != "seed 1.0\n" {
		t.Errorf("/var not seeded: %q %v", data, err)
	}

	// Local /etc edits: modified, added, deleted.
	dep := filepath.Join(sys, "ostree/deploy/default/deploy", ids[0])
	must(t, os.WriteFile(filepath.Join(dep, "etc/demo/theme.conf"), []byte("colour=green\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(dep, "etc/demo/local.conf"), []byte("mine\n"), 0o644))
	must(t, os.Remove(filepath.Join(dep, "etc/motd")))

	// Nothing new yet.
	if out := mustRun(t, "--sysroot", sys, "upgrade", "--check"); !strings.Contains(out, "No changes") {
		t.Errorf("upgrade --check with no new image: %q", out)
	}
	if out := mustRun(t, "--sysroot", sys, "upgrade"); !strings.Contains(out, "No update available") {
		t.Errorf("upgrade with no new image: %q", out)
	}

	compose(tinyOS(t, "2.0", map[string]string{"usr/bin/newtool": "new\n"}), "stable")
	out = mustRun(t, "--sysroot", sys, "upgrade", "--check")
	if !strings.Contains(out, "Update available") || !strings.Contains(out, "1.0 -> 2.0") || !strings.Contains(out, "Download:") {
		t.Errorf("upgrade --check: %q", out)
	}
	var uc updateCheck
	must(t, json.Unmarshal([]byte(mustRun(t, "--sysroot", sys, "upgrade", "--check", "--format", "json")), &uc))
	if !uc.UpdateAvailable || uc.Available.Version != "2.0" || uc.Current == nil || uc.Current.Version != "1.0" ||
		uc.Download.Layers == 0 || uc.Download.Layers >= uc.Total.Layers || uc.Download.Bytes <= 0 {
		t.Errorf("upgrade --check --format json: %+v", uc)
	}
	if got := hostStatusJSON(t, sys); entryVersion(got.Status.Booted) != "1.0" || got.Status.Rollback != nil {
		t.Fatalf("upgrade --check changed the deployments: %+v", got.Status)
	}
	out = mustRun(t, "--sysroot", sys, "upgrade")
	// The kernel layer did not change: it must come from the repository, not the image.
	if !strings.Contains(out, "Upgraded") || !strings.Contains(out, "1 modified, 1 added, 1 removed") || !regexp.MustCompile(`reused [1-9]`).MatchString(out) {
		t.Errorf("upgrade printed %q", out)
	}
	st = hostStatusJSON(t, sys)
	if st.Status.Rollback != nil && st.Status.Rollback.CachedUpdate != nil {
		t.Errorf("the rollback entry lists the booted image as a downloaded update: %+v", st.Status.Rollback.CachedUpdate)
	}
	if entryVersion(st.Status.Booted) != "2.0" || entryVersion(st.Status.Rollback) != "1.0" {
		t.Fatalf("after upgrade: booted %s rollback %s", entryVersion(st.Status.Booted), entryVersion(st.Status.Rollback))
	}
	ids, admin = adminStatus(t, sys)
	if strings.Join(ids, " ") != strings.Join(statusIDs(st), " ") {
		t.Fatalf("ostree admin status order %v, ours %v:\n%s", ids, statusIDs(st), admin)
	}
	newDep := filepath.Join(sys, "ostree/deploy/default/deploy", ids[0])
	for p, want := range map[string]string{"etc/demo/theme.conf": "colour=green\n", "etc/demo/local.conf": "mine\n", "etc/demo/defaults.conf": "level=2.0\n", "usr/bin/newtool": "new\n"} {
		if data, err := os.ReadFile(filepath.Join(newDep, p)); err != nil || string(data) != want {
			t.Errorf("new deployment %s = %q, %v; want %q", p, data, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(newDep, "etc/motd")); !os.IsNotExist(err) {
		t.Errorf("locally deleted etc/motd is back: %v", err)
	}
	if data, _ := os.ReadFile(filepath.Join(sys, "ostree/deploy/default/var/lib/demo/seed")); string(data) != "seed 1.0\n" {
		t.Errorf("/var was overwritten by the upgrade: %q", data)
	}
	checkBootEntries(t, sys)
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))

	// Download now, deploy later, with the image source gone in between.
	compose(tinyOS(t, "3.0", nil), "stable")
	out = mustRun(t, "--sysroot", sys, "upgrade", "--download-only")
	if !strings.Contains(out, "Downloaded") {
		t.Errorf("upgrade --download-only: %q", out)
	}
	st = hostStatusJSON(t, sys)
	if entryVersion(st.Status.Booted) != "2.0" || st.Status.Booted.CachedUpdate == nil || *st.Status.Booted.CachedUpdate.Version != "3.0" {
		t.Fatalf("after --download-only: booted %s, cachedUpdate %+v", entryVersion(st.Status.Booted), st.Status.Booted.CachedUpdate)
	}
	must(t, os.Rename(layout, layout+".away"))
	out = mustRun(t, "--sysroot", sys, "upgrade", "--from-downloaded")
	must(t, os.Rename(layout+".away", layout))
	if st = hostStatusJSON(t, sys); entryVersion(st.Status.Booted) != "3.0" || entryVersion(st.Status.Rollback) != "2.0" {
		t.Fatalf("after --from-downloaded (%q): booted %s rollback %s", out, entryVersion(st.Status.Booted), entryVersion(st.Status.Rollback))
	}
	if ids, _ := adminStatus(t, sys); len(ids) != 2 {
		t.Errorf("retention: %d deployments after the second upgrade, want 2 (new and rollback)", len(ids))
	}

	// Rollback and back again.
	mustRun(t, "--sysroot", sys, "rollback")
	st = hostStatusJSON(t, sys)
	if entryVersion(st.Status.Booted) != "2.0" || entryVersion(st.Status.Rollback) != "3.0" {
		t.Fatalf("after rollback: booted %s rollback %s", entryVersion(st.Status.Booted), entryVersion(st.Status.Rollback))
	}
	ids, admin = adminStatus(t, sys)
	if strings.Join(ids, " ") != strings.Join(statusIDs(st), " ") {
		t.Fatalf("after rollback ostree admin status order %v, ours %v:\n%s", ids, statusIDs(st), admin)
	}

	// Switch to another image, keeping everything.
	other := filepath.Join(images, "other")
	mustRun(t, "compose", "image", "--rootfs", tinyOS(t, "9.0", nil), "--output", "oci:"+other, "--timestamp", "2026-01-01T00:00:00Z", "-q")
	mustRun(t, "--sysroot", sys, "switch", "--transport", "oci", "--retain", other)
	st = hostStatusJSON(t, sys)
	if entryVersion(st.Status.Booted) != "9.0" || st.Spec.Image.Image != other || len(st.Status.OtherDeployments) != 1 {
		t.Fatalf("after switch --retain: booted %s, spec %+v, others %d", entryVersion(st.Status.Booted), st.Spec.Image, len(st.Status.OtherDeployments))
	}
	if ids, _ := adminStatus(t, sys); len(ids) != 3 {
		t.Errorf("switch --retain: %d deployments, want 3", len(ids))
	}
	if out := mustRun(t, "--sysroot", sys, "switch", "--transport", "oci", other); !strings.Contains(out, "unchanged") {
		t.Errorf("switch to the same image: %q", out)
	}
	checkBootEntries(t, sys)
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))

	// Human-readable and YAML forms render the same deployments.
	human := mustRun(t, "--sysroot", sys, "status", "--format", "humanreadable")
	if !strings.Contains(human, "● Booted image: oci:"+other) || !strings.Contains(human, "Version:") {
		t.Errorf("humanreadable status:\n%s", human)
	}
	if y := mustRun(t, "--sysroot", sys, "status"); !strings.Contains(y, "apiVersion: org.containers.bootc/v1") || !strings.Contains(y, "kind: BootcHost") {
		t.Errorf("default (yaml) status:\n%s", y)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestHostUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--sysroot", dir, "status"}, "not installed by bootc", 1},
		{[]string{"--sysroot", dir, "status", "--format", "xml"}, "unknown --format", 2},
		{[]string{"--sysroot", dir, "upgrade", "--check", "--apply"}, "--check only looks", 2},
		{[]string{"--sysroot", dir, "upgrade", "--download-only", "--from-downloaded"}, "two steps", 2},
		{[]string{"--sysroot", dir, "switch"}, "expected one IMAGE", 2},
		{[]string{"--sysroot", dir, "upgrade", "--format", "json"}, "--check only", 2},
		{[]string{"--sysroot", dir, "switch", "--transport", "ftp", "x"}, "--transport", 2},
		{[]string{"--sysroot", dir, "rollback", "extra"}, "no arguments", 2},
		{[]string{"install", "to-filesystem", "--source-imgref", "nowhere", dir}, "no transport", 2},
		{[]string{"install", "to-filesystem", "--source-imgref", "oci:/x", filepath.Join(dir, "missing")}, "not a directory", 2},
	} {
		_, errs, code := run(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}

func TestHostApplyRefusedOnSysrootDir(t *testing.T) {
	testutil.Root(t)
	sys := testutil.SysrootDir(t)
	layout := filepath.Join(t.TempDir(), "layout")
	mustRun(t, "compose", "image", "--rootfs", tinyOS(t, "1.0", nil), "--output", "oci:"+layout, "-q")
	mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, sys)
	for _, args := range [][]string{{"upgrade", "--apply"}, {"rollback", "--apply"}, {"switch", "--apply", "--transport", "oci", layout}} {
		_, errs, code := run(t, append([]string{"--sysroot", sys}, args...)...)
		if code != 2 || !strings.Contains(errs, "sysroot directory") {
			t.Errorf("%v: exit %d, %q; want a refusal naming the sysroot directory", args, code, errs)
		}
	}
	if _, errs, code := run(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, sys); code != 1 || !strings.Contains(errs, "already holds an installation") {
		t.Errorf("second install: exit %d, %q", code, errs)
	}
}

func TestHostHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{{"status"}, {"switch"}, {"upgrade"}, {"rollback"}, {"install", "to-filesystem"}} {
		out := mustRun(t, append(args, "--help")...)
		if !strings.Contains(out, "Examples:") || !strings.Contains(out, "bootc "+args[0]) {
			t.Errorf("bootc %s --help lacks examples:\n%s", strings.Join(args, " "), out)
		}
	}
}

// TestHostSwitchToPodmanDerivedImage: an image built by the real podman FROM ours, read from
// podman's storage (switch --transport containers-storage), deploys with its derived layers
// applied as ostree-ext does (/etc to /usr/etc, whiteouts, other top-level dirs dropped), and
// local /etc edits survive the switch.
func TestHostSwitchToPodmanDerivedImage(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	pm := testutil.NewPodman(t)
	mustRun(t, "compose", "image", "--rootfs", busyboxRootfs(t), "--output", "containers-storage:"+pm.StorageRef("localhost/base:1"), "-q")
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "containers-storage:"+pm.StorageRef("localhost/base:1"), sys)
	ids, _ := adminStatus(t, sys)
	dep := filepath.Join(sys, "ostree/deploy/default/deploy", ids[0])
	must(t, os.WriteFile(filepath.Join(dep, "etc/local.conf"), []byte("mine\n"), 0o644))

	ctxDir := t.TempDir()
	containerfile := "FROM localhost/base:1\n" +
		"RUN rm /etc/motd && echo derived > /etc/derived.conf && mkdir -p /usr/share/derived /opt/dropped && echo data > /usr/share/derived/file && echo x > /opt/dropped/x\n"
	must(t, os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644))
	pm.MustRun("build", "--isolation", "chroot", "-t", "localhost/derived:1", ctxDir)

	out := mustRun(t, "--sysroot", sys, "switch", "--transport", "containers-storage", pm.StorageRef("localhost/derived:1"))
	if !strings.Contains(out, "Deployed") {
		t.Fatalf("switch printed %q", out)
	}
	st := hostStatusJSON(t, sys)
	if st.Spec.Image == nil || st.Spec.Image.Transport != "containers-storage" || st.Status.Rollback == nil {
		t.Fatalf("after switch: spec %+v, rollback %v", st.Spec.Image, st.Status.Rollback)
	}
	ids, admin := adminStatus(t, sys)
	if len(ids) != 2 {
		t.Fatalf("ostree admin status:\n%s", admin)
	}
	newDep := filepath.Join(sys, "ostree/deploy/default/deploy", ids[0])
	for p, want := range map[string]string{"etc/derived.conf": "derived\n", "usr/etc/derived.conf": "derived\n", "usr/share/derived/file": "data\n", "etc/local.conf": "mine\n"} {
		if data, err := os.ReadFile(filepath.Join(newDep, p)); err != nil || string(data) != want {
			t.Errorf("%s = %q, %v; want %q", p, data, err, want)
		}
	}
	for _, p := range []string{"etc/motd", "usr/etc/motd", "opt/dropped"} {
		if _, err := os.Lstat(filepath.Join(newDep, p)); !os.IsNotExist(err) {
			t.Errorf("%s exists in the derived deployment: %v", p, err)
		}
	}
	checkBootEntries(t, sys)
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
}

// bootOptions returns the options line of the default boot entry.
func bootOptions(t *testing.T, sys string) string {
	t.Helper()
	entries, _ := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	for _, e := range entries {
		data, err := os.ReadFile(e)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), "(ostree:0)") {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "options "); ok {
				return v
			}
		}
	}
	t.Fatalf("no default boot entry with options in %s", sys)
	return ""
}

// TestHostKargsFromImage: the image's /usr/lib/bootc/kargs.d arguments land in the boot entry
// on install, and an upgrade drops the ones the new image no longer has and adds its new ones,
// keeping the ones given by hand.
func TestHostKargsFromImage(t *testing.T) {
	testutil.Root(t)
	layout := filepath.Join(t.TempDir(), "layout")
	compose := func(version, toml string) {
		t.Helper()
		mustRun(t, "compose", "image", "--rootfs", tinyOS(t, version, map[string]string{"usr/lib/bootc/kargs.d/10-test.toml": toml}), "--output", "oci:"+layout+":stable", "-q")
	}
	compose("1.0", `kargs = ["console=ttyS0", "quiet"]`)
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout+":stable", "--karg", "rw", sys)
	if got := bootOptions(t, sys); !strings.HasPrefix(got, "rw console=ttyS0 quiet ostree=") {
		t.Errorf("after install: options %q; want rw, then the image's console=ttyS0 quiet", got)
	}
	compose("2.0", `kargs = ["console=ttyS0", "splash"]`)
	mustRun(t, "--sysroot", sys, "upgrade")
	if got := bootOptions(t, sys); !strings.HasPrefix(got, "rw console=ttyS0 splash ostree=") {
		t.Errorf("after upgrade: options %q; want rw console=ttyS0 splash (quiet dropped)", got)
	}
	compose("3.0", `kargs = [1]`)
	if _, errs, code := run(t, "--sysroot", sys, "upgrade"); code != 1 || !strings.Contains(errs, "kargs.d") {
		t.Errorf("upgrade to an image with a bad kargs.d file: exit %d, %q", code, errs)
	}
}
