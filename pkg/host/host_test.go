package host_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/kargs"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// TestLifecycle runs install, upgrade (check, download-only, from-downloaded), switch and
// rollback on a sysroot directory, with images in OCI layouts, and checks each step's result
// against Status, the real `ostree admin status` and `ostree fsck`.
func TestLifecycle(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	ctx := t.Context()
	images := t.TempDir()
	layout := filepath.Join(images, "layout")
	stable := "oci:" + layout + ":stable"
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), stable)

	sys, in := install(t, stable, host.Install{Kargs: []string{"console=ttyS0"}})
	if in.Stateroot != "default" || in.Pulled.LayersFetched == 0 || !in.Deployed.VarSeeded || in.Deployed.Deployment.Index != 0 ||
		in.Deployed.Image.Version != "1.0" || in.Target.String() != "ostree-unverified-image:"+stable {
		t.Errorf("install result: %+v, pulled %+v, deployed %+v", in, in.Pulled, in.Deployed)
	}
	st := status(t, sys)
	if entryVersion(st.Status.Booted) != "1.0" || st.Status.Rollback != nil || st.Spec.Image == nil || st.Spec.Image.Transport != "oci" {
		t.Fatalf("after install: %+v", st.Status)
	}
	if st.Status.Type == nil || *st.Status.Type != "bootcHost" || st.Status.Booted.Image.Image.Signature != nil {
		t.Errorf("status type/signature wrong: %+v", st.Status.Booted.Image)
	}
	if !st.Status.Booted.Deployment().Equal(in.Deployed.Deployment) {
		t.Errorf("booted %+v, installed %+v", st.Status.Booted.Deployment(), in.Deployed.Deployment)
	}
	ids := checkAdminStatus(t, sys)
	if len(ids) != 1 {
		t.Fatalf("ostree admin status lists %v", ids)
	}
	// ostree 2022.7 prints container origins as "<unknown origin type>"; the file is what counts.
	origin, err := os.ReadFile(filepath.Join(sys, "ostree/deploy/default/deploy", ids[0]+".origin"))
	if err != nil || !strings.Contains(string(origin), "container-image-reference=ostree-unverified-image:"+stable+"\n") {
		t.Errorf("origin file: %q, %v", origin, err)
	}
	checkBootEntries(t, sys)
	if got := bootOptions(t, sys); !strings.HasPrefix(got, "console=ttyS0 ") {
		t.Errorf("boot entry lacks the karg: options %q", got)
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
	h := open(t, sys)
	if uc, err := h.CheckUpgrade(ctx); err != nil || uc.UpdateAvailable || uc.Download.Layers != 0 {
		t.Errorf("check with no new image: %+v, %v", uc, err)
	}
	if res, err := h.Upgrade(ctx, host.UpgradeDeploy); err != nil || !res.NoUpdate || res.Deployed != nil || res.Pulled.LayersFetched != 0 {
		t.Errorf("upgrade with no new image: %+v, %v", res, err)
	}
	h.Close()

	testimage.Compose(t, testimage.TinyOS(t, "2.0", map[string]string{"usr/bin/newtool": "new\n"}), stable)
	var ev events
	h = open(t, sys, host.WithProgress(ev.add))
	uc, err := h.CheckUpgrade(ctx)
	if err != nil || !uc.UpdateAvailable || uc.Available.Version != "2.0" || uc.Current == nil || uc.Current.Version != "1.0" ||
		uc.Download.Layers == 0 || uc.Download.Layers >= uc.Total.Layers || uc.Download.Bytes <= 0 {
		t.Errorf("check: %+v, %v", uc, err)
	}
	if got := status(t, sys); entryVersion(got.Status.Booted) != "1.0" || got.Status.Rollback != nil {
		t.Fatalf("the check changed the deployments: %+v", got.Status)
	}
	up, err := h.Upgrade(ctx, host.UpgradeDeploy)
	must(t, err)
	h.Close()
	// The kernel layer did not change: it must come from the repository, not the image.
	if up.NoUpdate || up.Deployed == nil || up.Pulled.LayersReused == 0 || up.Pulled.LayersFetched != uc.Download.Layers ||
		up.FromImage.Version != "1.0" || up.Next.Version != "2.0" || !up.From.Equal(st.Status.Booted.Deployment()) {
		t.Errorf("upgrade: %+v, pulled %+v", up, up.Pulled)
	}
	if d := up.Deployed; d.EtcModified != 1 || d.EtcAdded != 1 || d.EtcRemoved != 1 || d.VarSeeded {
		t.Errorf("upgrade's /etc merge and /var: %+v", d)
	}
	if ev.pullProgress() == 0 {
		t.Error("the upgrade reported no pull progress")
	}
	if last, ok := ev.all[len(ev.all)-1].(host.PullDone); !ok || last.Pulled != up.Pulled {
		t.Errorf("the upgrade's last event is %#v, want PullDone with its result", ev.all[len(ev.all)-1])
	}
	st = status(t, sys)
	if st.Status.Rollback != nil && st.Status.Rollback.CachedUpdate != nil {
		t.Errorf("the rollback entry lists the booted image as a downloaded update: %+v", st.Status.Rollback.CachedUpdate)
	}
	if entryVersion(st.Status.Booted) != "2.0" || entryVersion(st.Status.Rollback) != "1.0" || !st.Status.Booted.Deployment().Equal(up.Deployed.Deployment) {
		t.Fatalf("after upgrade: booted %s rollback %s", entryVersion(st.Status.Booted), entryVersion(st.Status.Rollback))
	}
	ids = checkAdminStatus(t, sys)
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
	fsck(t, sys)

	// Download now, deploy later, with the image source gone in between.
	testimage.Compose(t, testimage.TinyOS(t, "3.0", nil), stable)
	h = open(t, sys)
	if _, err := h.Upgrade(ctx, host.UpgradeFromDownloaded); !errors.Is(err, host.ErrNoDownloadedUpdate) {
		t.Errorf("from-downloaded before download-only: %v, want ErrNoDownloadedUpdate", err)
	}
	dl, err := h.Upgrade(ctx, host.UpgradeDownloadOnly)
	must(t, err)
	h.Close()
	if dl.NoUpdate || dl.Deployed != nil || dl.Next.Version != "3.0" || dl.Pulled == nil {
		t.Errorf("download-only: %+v", dl)
	}
	st = status(t, sys)
	if entryVersion(st.Status.Booted) != "2.0" || st.Status.Booted.CachedUpdate == nil || *st.Status.Booted.CachedUpdate.Version != "3.0" {
		t.Fatalf("after download-only: booted %s, cachedUpdate %+v", entryVersion(st.Status.Booted), st.Status.Booted.CachedUpdate)
	}
	must(t, os.Rename(layout, layout+".away"))
	h = open(t, sys)
	fd, err := h.Upgrade(ctx, host.UpgradeFromDownloaded)
	h.Close()
	must(t, os.Rename(layout+".away", layout))
	must(t, err)
	if fd.Pulled != nil || fd.Deployed == nil || fd.Deployed.Image.Version != "3.0" || fd.FromImage.Version != "2.0" {
		t.Errorf("from-downloaded: %+v", fd)
	}
	if st = status(t, sys); entryVersion(st.Status.Booted) != "3.0" || entryVersion(st.Status.Rollback) != "2.0" {
		t.Fatalf("after from-downloaded: booted %s rollback %s", entryVersion(st.Status.Booted), entryVersion(st.Status.Rollback))
	}
	if ids, _ := adminStatus(t, sys); len(ids) != 2 {
		t.Errorf("retention: %d deployments after the second upgrade, want 2 (new and rollback)", len(ids))
	}

	// Rollback and back again.
	h = open(t, sys)
	rb, err := h.Rollback(ctx)
	h.Close()
	must(t, err)
	if rb.UndoPending || rb.Image == nil || rb.Image.Version != "2.0" {
		t.Errorf("rollback: %+v", rb)
	}
	st = status(t, sys)
	if entryVersion(st.Status.Booted) != "2.0" || entryVersion(st.Status.Rollback) != "3.0" || !st.Status.Booted.Deployment().Equal(rb.Deployment) {
		t.Fatalf("after rollback: booted %s rollback %s", entryVersion(st.Status.Booted), entryVersion(st.Status.Rollback))
	}
	checkAdminStatus(t, sys)

	// Switch to another image, keeping everything.
	other := filepath.Join(images, "other")
	testimage.Compose(t, testimage.TinyOS(t, "9.0", nil), "oci:"+other)
	otherRef := image(t, "oci:"+other, false)
	h = open(t, sys)
	sw, err := h.Switch(ctx, otherRef, host.Retain())
	h.Close()
	must(t, err)
	if sw.Unchanged || sw.Deployed == nil || sw.Deployed.Image.Version != "9.0" || sw.Deployed.EtcModified != 1 {
		t.Errorf("switch: %+v, deployed %+v", sw, sw.Deployed)
	}
	st = status(t, sys)
	if entryVersion(st.Status.Booted) != "9.0" || st.Spec.Image.Image != other || len(st.Status.OtherDeployments) != 1 {
		t.Fatalf("after switch with Retain: booted %s, spec %+v, others %d", entryVersion(st.Status.Booted), st.Spec.Image, len(st.Status.OtherDeployments))
	}
	if ids := checkAdminStatus(t, sys); len(ids) != 3 {
		t.Errorf("switch with Retain: %d deployments, want 3", len(ids))
	}
	h = open(t, sys)
	if sw, err := h.Switch(ctx, otherRef); err != nil || !sw.Unchanged || sw.Deployed != nil {
		t.Errorf("switch to the same image: %+v, %v", sw, err)
	}
	h.Close()
	checkBootEntries(t, sys)
	fsck(t, sys)
}

// TestRefusals: the states a lifecycle call refuses, as sentinel errors, changing nothing.
func TestRefusals(t *testing.T) {
	testutil.Root(t)
	ctx := t.Context()
	if _, err := host.Open(ctx, t.TempDir()); !errors.Is(err, sysroot.ErrNotSysroot) {
		t.Errorf("Open of an empty directory: %v, want ErrNotSysroot", err)
	}
	if _, err := host.Status(ctx, t.TempDir()); !errors.Is(err, sysroot.ErrNotSysroot) {
		t.Errorf("Status of an empty directory: %v, want ErrNotSysroot", err)
	}
	// A sysroot without deployments.
	empty := testutil.SysrootDir(t)
	_, err := sysroot.Init(ctx, empty)
	must(t, err)
	h := open(t, empty)
	if _, err := h.Upgrade(ctx, host.UpgradeDeploy); !errors.Is(err, host.ErrNoBootedDeployment) {
		t.Errorf("Upgrade without deployments: %v", err)
	}
	if _, err := h.Switch(ctx, image(t, "oci:/nowhere", false)); !errors.Is(err, host.ErrNoBootedDeployment) {
		t.Errorf("Switch without deployments: %v", err)
	}
	if _, err := h.Rollback(ctx); !errors.Is(err, host.ErrNothingToRollBack) {
		t.Errorf("Rollback without deployments: %v", err)
	}
	h.Close()
	if _, err := host.Open(ctx, empty, host.RequireLive()); !errors.Is(err, host.ErrNotLive) {
		t.Errorf("Open with RequireLive of a directory: %v", err)
	}

	layout := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), "oci:"+layout)
	sys, _ := install(t, "oci:"+layout, host.Install{})
	h = open(t, sys)
	if _, err := h.Rollback(ctx); !errors.Is(err, host.ErrNothingToRollBack) {
		t.Errorf("Rollback with one deployment: %v", err)
	}
	h.Close()
	var already *host.AlreadyInstalledError
	if _, err := host.InstallToFilesystem(ctx, sys, host.Install{Source: image(t, "oci:"+layout, false)}); !errors.As(err, &already) || already.Deployments != 1 || !errors.Is(err, host.ErrAlreadyInstalled) {
		t.Errorf("second install: %v", err)
	}
	// A deployment that follows no image (as `ostree admin deploy` makes them).
	originPath := filepath.Join(sys, status(t, sys).Status.Booted.Deployment().Dir()+".origin")
	must(t, os.WriteFile(originPath, []byte("[origin]\nrefspec=os:x\n"), 0o644))
	h = open(t, sys)
	var noImage *host.NoImageError
	if _, err := h.Upgrade(ctx, host.UpgradeDeploy); !errors.As(err, &noImage) || !errors.Is(err, host.ErrNoImage) {
		t.Errorf("Upgrade of a deployment without an image: %v", err)
	}
	if _, err := h.CheckUpgrade(ctx); !errors.Is(err, host.ErrNoImage) {
		t.Errorf("CheckUpgrade of a deployment without an image: %v", err)
	}
}

// TestKargsFromImage: the image's /usr/lib/bootc/kargs.d arguments land in the boot entry on
// install, and an upgrade drops the ones the new image no longer has and adds its new ones,
// keeping the ones given by hand.
func TestKargsFromImage(t *testing.T) {
	testutil.Root(t)
	layout := "oci:" + filepath.Join(t.TempDir(), "layout") + ":stable"
	compose := func(version, toml string) {
		t.Helper()
		testimage.Compose(t, testimage.TinyOS(t, version, map[string]string{"usr/lib/bootc/kargs.d/10-test.toml": toml}), layout)
	}
	compose("1.0", `kargs = ["console=ttyS0", "quiet"]`)
	sys, _ := install(t, layout, host.Install{Kargs: []string{"rw"}})
	if got := bootOptions(t, sys); !strings.HasPrefix(got, "rw console=ttyS0 quiet ostree=") {
		t.Errorf("after install: options %q; want rw, then the image's console=ttyS0 quiet", got)
	}
	compose("2.0", `kargs = ["console=ttyS0", "splash"]`)
	h := open(t, sys)
	_, err := h.Upgrade(t.Context(), host.UpgradeDeploy)
	h.Close()
	must(t, err)
	if got := bootOptions(t, sys); !strings.HasPrefix(got, "rw console=ttyS0 splash ostree=") {
		t.Errorf("after upgrade: options %q; want rw console=ttyS0 splash (quiet dropped)", got)
	}
	compose("3.0", `kargs = [1]`)
	h = open(t, sys)
	if _, err := h.Upgrade(t.Context(), host.UpgradeDeploy); !errors.Is(err, kargs.ErrInvalid) || !strings.Contains(err.Error(), "kargs.d") {
		t.Errorf("upgrade to an image with a bad kargs.d file: %v", err)
	}
}

// TestSwitchToPodmanDerivedImage: an image built by the real podman FROM ours, read from
// podman's storage, deploys with its derived layers applied as ostree-ext does (/etc to
// /usr/etc, whiteouts, other top-level dirs dropped), and local /etc edits survive the switch.
func TestSwitchToPodmanDerivedImage(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	pm := testutil.NewPodman(t)
	rootfs := testimage.TinyOS(t, "1.0", nil)
	testimage.AddBusybox(t, rootfs)
	base := "containers-storage:" + pm.StorageRef("localhost/base:1")
	testimage.Compose(t, rootfs, base)
	sys, _ := install(t, base, host.Install{})
	ids, _ := adminStatus(t, sys)
	must(t, os.WriteFile(filepath.Join(sys, "ostree/deploy/default/deploy", ids[0], "etc/local.conf"), []byte("mine\n"), 0o644))

	ctxDir := t.TempDir()
	containerfile := "FROM localhost/base:1\n" +
		"RUN rm /etc/motd && echo derived > /etc/derived.conf && mkdir -p /usr/share/derived /opt/dropped && echo data > /usr/share/derived/file && echo x > /opt/dropped/x\n"
	must(t, os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644))
	pm.MustRun("build", "--isolation", "chroot", "-t", "localhost/derived:1", ctxDir)

	h := open(t, sys)
	sw, err := h.Switch(t.Context(), image(t, "containers-storage:"+pm.StorageRef("localhost/derived:1"), false))
	h.Close()
	must(t, err)
	if sw.Deployed == nil || sw.Pulled.LayersReused == 0 {
		t.Fatalf("switch: %+v", sw)
	}
	st := status(t, sys)
	if st.Spec.Image == nil || st.Spec.Image.Transport != "containers-storage" || st.Status.Rollback == nil {
		t.Fatalf("after switch: spec %+v, rollback %v", st.Spec.Image, st.Status.Rollback)
	}
	ids = checkAdminStatus(t, sys)
	if len(ids) != 2 {
		t.Fatalf("deployments %v", ids)
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
	fsck(t, sys)
}
