package sysroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// localEtcEdits makes the same local changes to a deployment's /etc: a.conf modified, new.conf
// and the directory newdir/ (with a file) added, c.conf removed, and a mode change on motd.
func localEtcEdits(t *testing.T, etc string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(etc, "a.conf"), []byte("a=local\n"), 0o644))
	must(os.WriteFile(filepath.Join(etc, "new.conf"), []byte("new\n"), 0o600))
	must(os.MkdirAll(filepath.Join(etc, "newdir"), 0o750))
	must(os.WriteFile(filepath.Join(etc, "newdir", "x"), []byte("x\n"), 0o644))
	must(os.Symlink("../a.conf", filepath.Join(etc, "newdir", "link")))
	must(os.Remove(filepath.Join(etc, "c.conf")))
	must(os.Chmod(filepath.Join(etc, "motd"), 0o600))
}

// TestEtcMerge deploys v1, edits its /etc, deploys v2 (which changes a.conf, b.conf and c.conf
// defaults) in our sysroot and with `ostree admin deploy`, and compares: local edits win, the
// untouched b.conf follows the image, the counts match ostree's "Copying /etc changes" line.
func TestEtcMerge(t *testing.T) {
	ours, real := sysrootPair(t)
	v1 := commitTree(t, ours, "1", baseTree())
	v2 := commitTree(t, ours, "2", with(baseTree(), map[string]string{
		"usr/etc/a.conf": "a=2\n", "usr/etc/b.conf": "b=2\n", "usr/etc/c.conf": "c=2\n"}))
	// ostree admin deploy prunes what no ref holds: pull each commit just before deploying it.
	run(t, "ostree", "pull-local", "--repo", real+"/ostree/repo", ours.Path()+"/ostree/repo", v1.String())

	d1, _ := deployAndWrite(t, ours, v1, DeployOptions{})
	run(t, "ostree", "admin", "deploy", "--sysroot="+real, "--os=myos", v1.String())
	localEtcEdits(t, filepath.Join(ours.Path(), d1.Dir(), "etc"))
	localEtcEdits(t, filepath.Join(real, d1.Dir(), "etc"))

	d2, st := deployAndWrite(t, ours, v2, DeployOptions{})
	run(t, "ostree", "pull-local", "--repo", real+"/ostree/repo", ours.Path()+"/ostree/repo", v2.String())
	out := run(t, "ostree", "admin", "deploy", "--sysroot="+real, "--os=myos", v2.String())
	want := fmt.Sprintf("Copying /etc changes: %d modified, %d removed, %d added", st.EtcModified, st.EtcRemoved, st.EtcAdded)
	if !strings.Contains(out, want) {
		t.Errorf("ostree admin deploy said:\n%s\nwe counted: %s", out, want)
	}
	// modified: a.conf, motd; removed: c.conf; added: new.conf, newdir, newdir/link, newdir/x.
	if st.EtcModified != 2 || st.EtcRemoved != 1 || st.EtcAdded != 4 {
		t.Errorf("stats %+v, want 2 modified, 1 removed, 4 added", *st)
	}
	etc := filepath.Join(ours.Path(), d2.Dir(), "etc")
	for name, want := range map[string]string{"a.conf": "a=local\n", "b.conf": "b=2\n", "new.conf": "new\n", "newdir/x": "x\n", "d/inner.conf": "inner=1\n"} {
		if got, err := os.ReadFile(filepath.Join(etc, name)); err != nil || string(got) != want {
			t.Errorf("etc/%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(etc, "c.conf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("etc/c.conf, removed locally, came back: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(etc, "motd")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("etc/motd mode: %v %v, want 0600", fi.Mode(), err)
	}
	if wantL, gotL := treeListing(t, filepath.Join(real, d2.Dir(), "etc")), treeListing(t, etc); wantL != gotL {
		t.Errorf("merged /etc differs from ostree's: %s", testutil.FirstDiff("ostree", wantL, "ours", gotL))
	}
	// /etc is a copy, not hardlinks into the repository.
	var st1 os.FileInfo
	if st1, _ = os.Stat(filepath.Join(etc, "b.conf")); st1 == nil || linkCount(st1) != 1 {
		t.Errorf("etc/b.conf is hardlinked (%v links): /etc must be a copy", linkCount(st1))
	}
}

// TestEtcMergeNewDefaultDirectory: a local file where the new image has a directory cannot be
// merged; Deploy fails and leaves nothing behind.
func TestEtcMergeNewDefaultDirectory(t *testing.T) {
	s := newSysroot(t)
	v1 := commitTree(t, s, "1", baseTree())
	d1, _ := deployAndWrite(t, s, v1, DeployOptions{})
	if err := os.WriteFile(filepath.Join(s.Path(), d1.Dir(), "etc", "conflict"), []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"usr/etc/conflict/": ""}))
	_, _, err := s.Deploy(t.Context(), v2, DeployOptions{Stateroot: "myos"})
	if err == nil || !strings.Contains(err.Error(), "newly defaults to a directory") {
		t.Fatalf("Deploy: %v, want a newly-defaults-to-directory error", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.Path(), "ostree/deploy/myos/deploy"))
	ents2, _ := os.ReadDir(filepath.Join(s.Path(), "ostree/deploy/myos"))
	if len(ents) != 1 || len(ents2) != 2 { // d1 (no origin); deploy and var
		t.Errorf("leftovers after a failed Deploy: %v %v", ents, ents2)
	}
	// NoMerge deploys it all the same.
	if _, _, err := s.Deploy(t.Context(), v2, DeployOptions{Stateroot: "myos", NoMerge: true}); err != nil {
		t.Fatalf("Deploy with NoMerge: %v", err)
	}
}

// TestEtcOnlyTree: a tree with /etc and no /usr/etc has it moved to usr/etc; both is an error.
func TestEtcOnlyTree(t *testing.T) {
	s := newSysroot(t)
	files := map[string]string{}
	for k, v := range baseTree() {
		if rest, ok := strings.CutPrefix(k, "usr/etc/"); ok {
			k = "etc/" + rest
		}
		files[k] = v
	}
	d, _ := deployAndWrite(t, s, commitTree(t, s, "1", files), DeployOptions{})
	for _, p := range []string{"etc/motd", "usr/etc/motd"} {
		if got, err := os.ReadFile(filepath.Join(s.Path(), d.Dir(), p)); err != nil || string(got) != "hello\n" {
			t.Errorf("%s: %q %v", p, got, err)
		}
	}
	both := commitTree(t, s, "2", with(baseTree(), map[string]string{"etc/x": "x"}))
	if _, _, err := s.Deploy(t.Context(), both, DeployOptions{Stateroot: "myos"}); err == nil || !strings.Contains(err.Error(), "both /etc and /usr/etc") {
		t.Errorf("Deploy of a tree with /etc and /usr/etc: %v", err)
	}
}

// TestVarSeededOnce: the first deployment fills the empty stateroot /var from the image
// (copies, owners and modes kept); later ones leave it alone.
func TestVarSeededOnce(t *testing.T) {
	s := newSysroot(t)
	v1 := commitTree(t, s, "1", baseTree())
	_, st := deployAndWrite(t, s, v1, DeployOptions{})
	if !st.VarSeeded {
		t.Error("first deployment did not seed /var")
	}
	data := filepath.Join(s.Path(), "ostree/deploy/myos/var/lib/something/data")
	got, err := os.ReadFile(data)
	if err != nil || string(got) != "seed\n" {
		t.Fatalf("seeded /var: %q %v", got, err)
	}
	if fi, _ := os.Stat(data); linkCount(fi) != 1 {
		t.Error("/var/lib/something/data is hardlinked into the repository; /var must be a copy")
	}
	if err := os.WriteFile(data, []byte("local\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"var/lib/something/data": "seed 2\n", "var/lib/other": "o"}))
	_, st = deployAndWrite(t, s, v2, DeployOptions{})
	if st.VarSeeded {
		t.Error("second deployment seeded a populated /var")
	}
	if got, _ := os.ReadFile(data); string(got) != "local\n" {
		t.Errorf("/var changed by a later deployment: %q", got)
	}
	if _, err := os.Lstat(filepath.Join(s.Path(), "ostree/deploy/myos/var/lib/other")); err == nil {
		t.Error("new /var content of a later image was copied")
	}
}

// TestWriteDeploymentsCrash stops WriteDeployments just before the swap, as a crash would:
// the old list still loads (ours and ostree's status agree), and the next successful write
// and cleanup leave no trace of the attempt. The fault is a real one: a non-empty directory
// where the swap makes its temporary symlink (/ostree/boot.0.tmp), so that the swap, the first
// step after everything else is written and synced, fails.
func TestWriteDeploymentsCrash(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	s := newSysroot(t)
	v1 := commitTree(t, s, "1", baseTree())
	v2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL2"}))
	d1, _ := deployAndWrite(t, s, v1, DeployOptions{Origin: NewContainerOrigin("ostree-unverified-registry:x:1")})
	before := bootState(t, s.Path())
	statusBefore := run(t, "ostree", "admin", "status", "--sysroot="+s.Path())

	d2, _, err := s.Deploy(t.Context(), v2, DeployOptions{Stateroot: "myos"})
	if err != nil {
		t.Fatal(err)
	}
	blocker := filepath.Join(s.Path(), "ostree/boot.0.tmp")
	if err := os.MkdirAll(filepath.Join(blocker, "in-the-way"), 0o755); err != nil {
		t.Fatal(err)
	}
	err = s.WriteDeployments(t.Context(), s.Place(d2, PlaceOptions{}), WriteOptions{})
	if err == nil || !strings.Contains(err.Error(), "swapping") || !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("WriteDeployments: %v, want the swap to fail", err)
	}
	if target, err := os.Readlink(filepath.Join(s.Path(), "ostree/boot.0")); err == nil {
		t.Errorf("/ostree/boot.0 was swapped (-> %s) though the swap failed", target)
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	// The new boot version was written up to the swap.
	if _, err := os.Stat(filepath.Join(s.Path(), "boot/loader.0/entries/ostree-2-myos.conf")); err != nil {
		t.Errorf("the interrupted write had not written its entries: %v", err)
	}
	s2, err := Open(t.Context(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Deployments(); len(got) != 1 || !got[0].Equal(d1) {
		t.Errorf("after the crash Load gives:\n%s\nwant only %s", summary(got), d1.Dir())
	}
	if got := run(t, "ostree", "admin", "status", "--sysroot="+s.Path()); got != statusBefore {
		t.Errorf("ostree admin status after the crash:\n%s\nbefore:\n%s", got, statusBefore)
	}
	if ok, _ := s.Repo().HasObject(ostree.ObjectName{Checksum: v2, Type: ostree.ObjectCommit}); !ok {
		t.Error("the commit being deployed was pruned")
	}

	// A later write (from a fresh process's view) succeeds and cleans up.
	if err := s2.WriteDeployments(t.Context(), s2.Place(d2, PlaceOptions{}), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	after := bootState(t, s.Path())
	if after == before {
		t.Fatal("the boot state did not change")
	}
	for _, bad := range []string{".tmp", "loader.1", "boot.1"} {
		if strings.Contains(after, bad) {
			t.Errorf("leftover %q after a successful write:\n%s", bad, after)
		}
	}
	if got := s2.Deployments(); len(got) != 2 || !got[0].Equal(d2) || !got[1].Equal(d1) {
		t.Errorf("after the write:\n%s", summary(got))
	}
	run(t, "ostree", "fsck", "--repo", s.Path()+"/ostree/repo")
}

// TestCleanupAfterCrashedDeploy: a deployment Deploy made but no write listed, and a staging
// directory from a crash inside Deploy, are removed by Cleanup with their kernels and objects.
func TestCleanupAfterCrashedDeploy(t *testing.T) {
	s := newSysroot(t)
	v1 := commitTree(t, s, "1", baseTree())
	deployAndWrite(t, s, v1, DeployOptions{})
	v2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL2"}))
	if err := s.Repo().DeleteRef("test"); err != nil {
		t.Fatal(err)
	}
	orphan, _, err := s.Deploy(t.Context(), v2, DeployOptions{Stateroot: "myos", Origin: NewContainerOrigin("x")})
	if err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(s.Path(), "ostree/deploy/myos", stagingPrefix+"abc.0")
	if err := os.MkdirAll(filepath.Join(staging, "usr"), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := s.Cleanup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Deployments != 1 {
		t.Errorf("removed %d deployments, want 1", st.Deployments)
	}
	for _, p := range []string{orphan.Dir(), orphan.Dir() + ".origin", staging} {
		if _, err := os.Lstat(filepath.Join(s.Path(), p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived Cleanup (%v)", p, err)
		}
	}
	if ok, _ := s.Repo().HasObject(ostree.ObjectName{Checksum: v2, Type: ostree.ObjectCommit}); ok {
		t.Error("the orphan's commit survived pruning")
	}
	if st.Prune == nil || st.Prune.Deleted == 0 {
		t.Errorf("prune stats %+v, want objects deleted", st.Prune)
	}
	if len(s.Deployments()) != 1 {
		t.Errorf("Cleanup changed the deployments: %s", summary(s.Deployments()))
	}
}

// TestRetentionRollbackPinned deploys four times, the first deployment pinned: each new one
// comes first, the previous default is kept, older unpinned ones go, the pinned one stays.
// Then a rollback reorders, and NotDefault and Retain place as documented.
func TestRetentionRollbackPinned(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	s := newSysroot(t)
	pinned := NewContainerOrigin("img:1")
	pinned.Set("libostree-transient", "pinned", "true")
	var ds []*Deployment
	for i := 1; i <= 4; i++ {
		o := NewContainerOrigin(fmt.Sprintf("img:%d", i))
		if i == 1 {
			o = pinned
		}
		c := commitTree(t, s, fmt.Sprint(i), with(baseTree(), map[string]string{"usr/etc/motd": fmt.Sprintf("v%d\n", i)}))
		d, _ := deployAndWrite(t, s, c, DeployOptions{Origin: o})
		ds = append(ds, d)
	}
	want := []*Deployment{ds[3], ds[2], ds[0]}
	checkOrder(t, s, want)
	if !s.Deployments()[2].Pinned() || s.Deployments()[0].Pinned() {
		t.Error("Pinned() wrong")
	}
	if b := s.Booted(); !b.Equal(ds[3]) {
		t.Errorf("Booted in a directory = %v, want index 0", b)
	}
	if rb := s.Rollback(); !rb.Equal(ds[2]) {
		t.Errorf("Rollback = %v, want %s", rb, ds[2].Dir())
	}

	// Rollback: the rollback deployment first.
	list := []*Deployment{s.Rollback()}
	for _, d := range s.Deployments() {
		if !d.Equal(list[0]) {
			list = append(list, d)
		}
	}
	if err := s.WriteDeployments(t.Context(), list, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, s, []*Deployment{ds[2], ds[3], ds[0]})

	// Order now: ds2, ds3, ds0. With the default booted, the target is the next one; a
	// machine started from an older entry rolls back to the one after it, as rpm-ostree does,
	// and from the last entry, by making the booted deployment the default again (undoing
	// the pending ones ahead of it).
	if d, undo := s.RollbackTarget(); !d.Equal(ds[3]) || undo {
		t.Errorf("RollbackTarget with index 0 booted = %v, %v", d, undo)
	}
	s.booted = s.deployments[1]
	if d, undo := s.RollbackTarget(); !d.Equal(ds[0]) || undo {
		t.Errorf("RollbackTarget with index 1 booted = %v, %v", d, undo)
	}
	s.booted = s.deployments[2]
	if d, undo := s.RollbackTarget(); !d.Equal(ds[0]) || !undo {
		t.Errorf("RollbackTarget with the last booted = %v, %v; want it, undoing the pending ones", d, undo)
	}
	if err := s.Load(t.Context()); err != nil {
		t.Fatal(err)
	}

	// NotDefault: after the booted (index 0) one; Retain keeps everything.
	c5 := commitTree(t, s, "5", with(baseTree(), map[string]string{"usr/etc/motd": "v5\n"}))
	d5, _, err := s.Deploy(t.Context(), c5, DeployOptions{Stateroot: "myos"})
	if err != nil {
		t.Fatal(err)
	}
	placed := s.Place(d5, PlaceOptions{NotDefault: true})
	if got, want := dirs(placed), dirs([]*Deployment{ds[2], d5, ds[0]}); got != want {
		t.Errorf("Place NotDefault:\n%s\nwant\n%s", got, want)
	}
	placed = s.Place(d5, PlaceOptions{Retain: true})
	if got, want := dirs(placed), dirs([]*Deployment{d5, ds[2], ds[3], ds[0]}); got != want {
		t.Errorf("Place Retain:\n%s\nwant\n%s", got, want)
	}
	if err := s.WriteDeployments(t.Context(), placed, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	checkOrder(t, s, []*Deployment{d5, ds[2], ds[3], ds[0]})
}

// checkOrder checks Deployments() and `ostree admin status` against want, in order.
func checkOrder(t *testing.T, s *Sysroot, want []*Deployment) {
	t.Helper()
	got := s.Deployments()
	if dirs(got) != dirs(want) {
		t.Errorf("deployments:\n%s\nwant\n%s", dirs(got), dirs(want))
	}
	for i, d := range got {
		if d.Index != i {
			t.Errorf("%s has Index %d at position %d", d.Dir(), d.Index, i)
		}
	}
	var fromStatus []string
	for _, l := range strings.Split(run(t, "ostree", "admin", "status", "--sysroot="+s.Path()), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "myos" {
			fromStatus = append(fromStatus, "ostree/deploy/myos/deploy/"+f[1])
		}
	}
	if got := strings.Join(fromStatus, "\n"); got != dirs(want) {
		t.Errorf("ostree admin status order:\n%s\nwant\n%s", got, dirs(want))
	}
}

func dirs(list []*Deployment) string {
	var out []string
	for _, d := range list {
		out = append(out, d.Dir())
	}
	return strings.Join(out, "\n")
}

// TestMergeDeploymentAndKargs: kargs are inherited from the merge deployment unless given;
// another stateroot neither merges nor is dropped, and titles then name the stateroot.
func TestMergeDeploymentAndKargs(t *testing.T) {
	s := newSysroot(t)
	c := commitTree(t, s, "1", baseTree())
	d1, _ := deployAndWrite(t, s, c, DeployOptions{Kargs: []string{"root=UUID=x", "rw"}})
	d2, _ := deployAndWrite(t, s, c, DeployOptions{})
	if strings.Join(d2.Kargs, " ") != "root=UUID=x rw" || d2.Serial != 1 {
		t.Errorf("second deployment: kargs %q serial %d", d2.Kargs, d2.Serial)
	}
	if err := s.InitStateroot("other"); err != nil {
		t.Fatal(err)
	}
	if m := s.MergeDeployment("other"); m != nil {
		t.Errorf("MergeDeployment(other) = %s", m.Dir())
	}
	// PRETTY_NAME "Test OS 1" contains the version "1": the title does not repeat it.
	d3, _ := deployAndWrite(t, s, c, DeployOptions{Stateroot: "other"})
	if len(d3.Kargs) != 0 || d3.Serial != 0 {
		t.Errorf("other stateroot: kargs %q serial %d", d3.Kargs, d3.Serial)
	}
	checkDirs := dirs(s.Deployments())
	if want := dirs([]*Deployment{d3, d2, d1}); checkDirs != want {
		t.Errorf("deployments:\n%s\nwant\n%s", checkDirs, want)
	}
	data, err := os.ReadFile(filepath.Join(s.Path(), "boot/loader/entries/ostree-3-other.conf"))
	if err != nil || !strings.Contains(string(data), "title Test OS 1 (ostree:other:0)\n") {
		t.Errorf("entry of a multi-stateroot sysroot: %q %v", data, err)
	}
	if m := s.MergeDeployment("myos"); !m.Equal(d2) {
		t.Errorf("MergeDeployment(myos) = %v, want %s", m, d2.Dir())
	}
}

// TestNoKernel: a commit without a kernel is refused with ErrNoKernel, leaving nothing.
func TestNoKernel(t *testing.T) {
	s := newSysroot(t)
	c := commitTree(t, s, "1", with(baseTree(), map[string]string{"usr/lib/modules/6.1.0-test/vmlinuz": ""}))
	if _, _, err := s.Deploy(t.Context(), c, DeployOptions{Stateroot: "myos"}); !errors.Is(err, ErrNoKernel) {
		t.Fatalf("Deploy: %v, want ErrNoKernel", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Path(), "ostree/deploy/myos")); len(ents) != 2 {
		t.Errorf("leftovers: %v", ents)
	}
	if _, _, err := s.Deploy(t.Context(), c, DeployOptions{Stateroot: "nope"}); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Deploy into a missing stateroot: %v", err)
	}
}

// TestLock: a second locker waits until its context ends and gets ErrLocked; the lock is the
// file libostree locks, so flock(1) sees it too; after unlock it can be taken.
func TestLock(t *testing.T) {
	s := newSysroot(t)
	unlock, err := s.Lock(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	other, err := Open(t.Context(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := other.Lock(ctxTimeout(t, 300*time.Millisecond)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Lock: %v, want ErrLocked", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Errorf("second Lock gave up after %v, before its context ended", waited)
	}
	if _, err := os.Stat("/usr/bin/flock"); err == nil {
		if out, err := runCode("flock", "-n", filepath.Join(s.Path(), "ostree/lock"), "true"); err == nil {
			t.Errorf("flock -n got the lock we hold: %s", out)
		}
	}
	unlock()
	unlock2, err := other.Lock(ctxTimeout(t, time.Second))
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}

// TestOpenNotSysroot: a directory without ostree/repo is ErrNotSysroot.
func TestOpenNotSysroot(t *testing.T) {
	if _, err := Open(t.Context(), t.TempDir()); !errors.Is(err, ErrNotSysroot) {
		t.Errorf("Open: %v, want ErrNotSysroot", err)
	}
}

// TestInitIdempotent: Init of an existing sysroot opens it as it is, with its deployments.
func TestInitIdempotent(t *testing.T) {
	s := newSysroot(t)
	deployAndWrite(t, s, commitTree(t, s, "1", baseTree()), DeployOptions{})
	s2, err := Init(t.Context(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if len(s2.Deployments()) != 1 {
		t.Errorf("Init of an existing sysroot: %s", summary(s2.Deployments()))
	}
	cfg, err := s2.Repo().Config()
	if err != nil || cfg["sysroot"]["bootloader"] != "none" || cfg["sysroot"]["bootprefix"] != "true" || cfg["core"]["mode"] != "bare" {
		t.Errorf("repo config %v %v", cfg, err)
	}
}

// TestDeploymentAt: the booted deployment of a live system is found by resolving ostree=
// through /ostree/boot.N and comparing device and inode (tested here on a sysroot directory).
func TestDeploymentAt(t *testing.T) {
	s := newSysroot(t)
	c := commitTree(t, s, "1", baseTree())
	deployAndWrite(t, s, c, DeployOptions{})
	d2, _ := deployAndWrite(t, s, c, DeployOptions{})
	list := s.Deployments()
	for _, d := range list {
		link := fmt.Sprintf("/ostree/boot.%d/myos/%s/%d", s.bootversion, d.BootCsum, d.BootSerial)
		if got := s.deploymentAt(link, s.Path()); !got.Equal(d) {
			t.Errorf("deploymentAt(%s) = %v, want %s", link, got, d.Dir())
		}
	}
	if !list[0].Equal(d2) || list[1].BootSerial != 1 {
		t.Errorf("deployments: %s", summary(list))
	}
	if got := s.deploymentAt("/ostree/boot.0/myos/nope/0", s.Path()); got != nil {
		t.Errorf("deploymentAt of a missing link = %s", got.Dir())
	}
	// The running root (a deployment directory, bind-mounted on /) names the booted
	// deployment whatever the boot links say after later writes.
	for _, d := range list {
		if got := s.deploymentWithRoot(filepath.Join(s.Path(), d.Dir())); !got.Equal(d) {
			t.Errorf("deploymentWithRoot(%s) = %v", d.Dir(), got)
		}
	}
	if got := s.deploymentWithRoot(s.Path()); got != nil {
		t.Errorf("deploymentWithRoot of the sysroot itself = %s", got.Dir())
	}
	if s.IsLive() {
		t.Error("a sysroot directory is live")
	}
}

// TestWriteKeepsImageRefs: refs under ostree/ that are not deployment refs (the image store's
// ostree/container/image/... and .../blob/...) survive writes and cleanup.
func TestWriteKeepsImageRefs(t *testing.T) {
	s := newSysroot(t)
	v1 := commitTree(t, s, "1", baseTree())
	for _, ref := range []string{"ostree/container/image/x", "ostree/container/blob/sha256_3A_00", "ostree/9/9/x"} {
		if err := s.Repo().SetRef(ref, v1); err != nil {
			t.Fatal(err)
		}
	}
	deployAndWrite(t, s, v1, DeployOptions{})
	deployAndWrite(t, s, v1, DeployOptions{})
	for _, ref := range []string{"ostree/container/image/x", "ostree/container/blob/sha256_3A_00", "ostree/9/9/x"} {
		if _, err := s.Repo().ReadRef(ref); err != nil {
			t.Errorf("ref %s was deleted by a deployment write: %v", ref, err)
		}
	}
}
