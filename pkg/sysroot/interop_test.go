package sysroot

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// TestInteropWithOstreeAdmin deploys the same commits into two sysroots, one with this package
// and one with the real `ostree admin deploy`, and compares what a bootloader and ostree see:
// the BLS entries, the kernels in /boot/ostree, the /ostree/boot.N.M links, the deployment
// directories and origins, the deployment refs, `ostree admin status`, and our Load of both.
// The steps: a first deployment, the same commit again (serial .1), a new commit (the oldest
// is dropped), a commit with the same kernel and version, and that one again, which gives the
// same boot entries as before: ostree then swaps only the subboot version.
func TestInteropWithOstreeAdmin(t *testing.T) {
	ours, b := sysrootPair(t)
	a := ours.Path()

	origin, err := ParseOrigin([]byte("[origin]\nrefspec=test\n"))
	if err != nil {
		t.Fatal(err)
	}
	c1 := commitTree(t, ours, "42.1", baseTree())
	c2 := commitTree(t, ours, "42.2", with(baseTree(), map[string]string{
		"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL2", "usr/etc/motd": "hello 2\n"}))
	c3 := commitTree(t, ours, "42.2", with(baseTree(), map[string]string{
		"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL2", "usr/etc/motd": "hello 3\n"}))
	for i, c := range []ostree.Checksum{c1, c2, c3} { // keep them from our cleanup's prune
		if err := ours.Repo().SetRef(fmt.Sprintf("keep/%d", i), c); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name   string
		commit ostree.Checksum
		kargs  []string
		want   int // deployments after the step
	}{
		{"first", c1, []string{"root=LABEL=root", "rw"}, 1},
		{"same commit again", c1, nil, 2},
		{"new commit", c2, nil, 2},
		{"new commit, same kernel and version", c3, nil, 2},
		// Same entries as before, position by position: only the subboot version changes.
		{"same commit again, same entries", c3, nil, 2},
	}
	for _, step := range steps {
		t.Run(step.name, func(t *testing.T) {
			// Ours.
			deployAndWrite(t, ours, step.commit, DeployOptions{Origin: origin, Kargs: step.kargs})
			// The real one, from the same commit pulled under the same ref.
			run(t, "ostree", "pull-local", "--repo", b+"/ostree/repo", a+"/ostree/repo", step.commit.String())
			run(t, "ostree", "refs", "--repo", b+"/ostree/repo", "--create=test", "--force", step.commit.String())
			args := []string{"admin", "deploy", "--sysroot=" + b, "--os=myos"}
			for _, k := range step.kargs {
				args = append(args, "--karg="+k)
			}
			run(t, "ostree", append(args, "test")...)
			run(t, "ostree", "refs", "--repo", b+"/ostree/repo", "--delete", "test")

			if got := len(ours.Deployments()); got != step.want {
				t.Errorf("%d deployments, want %d:\n%s", got, step.want, summary(ours.Deployments()))
			}
			want, got := bootState(t, b), bootState(t, a)
			if want != got {
				t.Errorf("boot state differs from ostree admin deploy's: %s\nostree:\n%s\nours:\n%s",
					testutil.FirstDiff("ostree", want, "ours", got), want, got)
			}
			if want, got := deploymentRefs(t, b+"/ostree/repo"), deploymentRefs(t, a+"/ostree/repo"); want != got {
				t.Errorf("deployment refs differ:\nostree:\n%s\nours:\n%s", want, got)
			}
			wantStatus := run(t, "ostree", "admin", "status", "--sysroot="+b)
			gotStatus := run(t, "ostree", "admin", "status", "--sysroot="+a)
			if wantStatus != gotStatus {
				t.Errorf("ostree admin status differs: %s", testutil.FirstDiff("ostree", wantStatus, "ours", gotStatus))
			}
			if !strings.Contains(gotStatus, "origin refspec: test") {
				t.Errorf("ostree admin status does not show the origin:\n%s", gotStatus)
			}
			// Our Load of the real sysroot gives the same list as ours.
			real, err := Open(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			if want, got := summary(real.Deployments()), summary(ours.Deployments()); want != got {
				t.Errorf("Load of the ostree-written sysroot:\n%s\nours:\n%s", want, got)
			}
			// The /etc of each deployment is the same as ostree's.
			for _, d := range ours.Deployments() {
				if want, got := treeListing(t, filepath.Join(b, d.Dir(), "etc")), treeListing(t, filepath.Join(a, d.Dir(), "etc")); want != got {
					t.Errorf("%s/etc differs: %s", d.Dir(), testutil.FirstDiff("ostree", want, "ours", got))
				}
			}
			checkEntriesExist(t, a)
			run(t, "ostree", "fsck", "--repo", a+"/ostree/repo")
		})
	}
	// ostree's own cleanup finds nothing it objects to in our sysroot.
	run(t, "ostree", "admin", "cleanup", "--sysroot="+a)
	if want, got := bootState(t, b), bootState(t, a); want != got {
		t.Errorf("ostree admin cleanup changed our sysroot: %s", testutil.FirstDiff("real", want, "ours", got))
	}
}

// TestInteropNoInitramfs compares the boot entry of a kernel without initramfs, which gets an
// init= argument instead of an initrd line.
func TestInteropNoInitramfs(t *testing.T) {
	ours, b := sysrootPair(t)
	a := ours.Path()
	c := commitTree(t, ours, "", with(baseTree(), map[string]string{
		"usr/lib/modules/6.1.0-test/initramfs.img": "", "usr/lib/os-release": "ID=plain\n"}))
	origin, _ := ParseOrigin([]byte("[origin]\nrefspec=test\n"))
	deployAndWrite(t, ours, c, DeployOptions{Origin: origin, Kargs: []string{"quiet", "init=/sbin/init"}})
	run(t, "ostree", "pull-local", "--repo", b+"/ostree/repo", a+"/ostree/repo", "test")
	run(t, "ostree", "admin", "deploy", "--sysroot="+b, "--os=myos", "--karg=quiet", "--karg=init=/sbin/init", "test")
	if want, got := bootState(t, b), bootState(t, a); want != got {
		t.Errorf("boot state differs from ostree admin deploy's: %s", testutil.FirstDiff("ostree", want, "ours", got))
	}
}

// TestBootprefix checks the /boot/ prefix of sysroot.bootprefix=true (Init's default, as bootc
// install sets it) and that the paths resolve with and without a separate /boot.
func TestBootprefix(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	s := newSysroot(t)
	c := commitTree(t, s, "1", baseTree())
	d, _ := deployAndWrite(t, s, c, DeployOptions{Origin: NewContainerOrigin("ostree-unverified-registry:quay.io/x/y:tag")})
	data, err := os.ReadFile(filepath.Join(s.Path(), "boot/loader/entries/ostree-1-myos.conf"))
	if err != nil {
		t.Fatal(err)
	}
	e := parseBLS(data)
	want := "/boot/ostree/myos-" + d.BootCsum + "/vmlinuz-6.1.0-test"
	if e.get("linux") != want {
		t.Errorf("linux %q, want %q", e.get("linux"), want)
	}
	checkEntriesExist(t, s.Path())
	status := run(t, "ostree", "admin", "status", "--sysroot="+s.Path())
	// ostree 2022.7 does not know container origins; it lists the deployment all the same.
	if !strings.Contains(status, "myos "+d.Commit.String()+".0") || !strings.Contains(status, "origin: <unknown origin type>") {
		t.Errorf("ostree admin status:\n%s", status)
	}
	run(t, "ostree", "fsck", "--repo", s.Path()+"/ostree/repo")
}

// TestStagedInteropBooted checks the staged state against the real libostree on a "booted"
// system: in a private mount and PID namespace, it chroots into the booted deployment (v1, the
// default) with the sysroot bind-mounted at /sysroot, /ostree -> sysroot/ostree, /boot, the
// runtime directory's parent at /run (with /run/ostree-booted), /dev, /proc, and the host's /usr
// for the ostree binary. libostree then finds the booted deployment as on a real machine (the
// deployment directory that is "/") and reads /run/ostree/staged-deployment. We stage and
// `ostree admin status` must list our deployment "(staged)" first; then `ostree admin deploy
// --stage` stages, and we must read its state (and write the same bytes from it) and finalize
// its staged deployment.
func TestStagedInteropBooted(t *testing.T) {
	testutil.RequireTool(t, "ostree", "unshare", "chroot", "chattr", "mount")
	s, v1, rt := stagingSysroot(t)
	c2 := commitTree(t, s, "2", v2Tree())
	d := stage(t, s, c2, StageOptions{DeployOptions: DeployOptions{Origin: NewContainerOrigin("ostree-unverified-image:oci:/v2")}})

	booted := filepath.Join(s.Path(), v1.Dir())
	setImmutable(t, booted, false)
	for link, target := range map[string]string{"ostree": "sysroot/ostree", "lib": "usr/lib", "lib64": "usr/lib64", "bin": "usr/bin", "sbin": "usr/sbin"} {
		if err := os.RemoveAll(filepath.Join(booted, link)); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, filepath.Join(booted, link)); err != nil {
			t.Fatal(err)
		}
	}
	runDir := filepath.Dir(rt)
	if err := os.WriteFile(filepath.Join(runDir, "ostree-booted"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	inBooted := func(args ...string) string {
		t.Helper()
		script := `set -e
mount --make-rprivate /
mount --bind "$1" "$2/sysroot"
mount --bind "$1/boot" "$2/boot"
mount --bind /usr "$2/usr"
mount --bind "$3" "$2/run"
mount --bind /dev "$2/dev"
mount -t proc proc "$2/proc"
root=$2
shift 3
exec chroot "$root" "$@"`
		return run(t, "unshare", append([]string{"--mount", "--pid", "--fork", "sh", "-c", script, "sh", s.Path(), booted, runDir}, args...)...)
	}

	status := inBooted("ostree", "admin", "status")
	want := regexp.MustCompile(`(?m)^  myos ` + d.name() + ` \(staged\)\n(.*\n)*\* myos ` + v1.name() + `\n`)
	if !want.MatchString(status) {
		t.Fatalf("ostree admin status on the booted system does not show %s staged before the booted %s:\n%s", d.name(), v1.name(), status)
	}

	// libostree stages; we read it, write the same bytes, and finalize it.
	if err := s.DiscardStaged(); err != nil {
		t.Fatal(err)
	}
	inBooted("ostree", "admin", "deploy", "--stage", "--os=myos", "--karg-append=extra", "test")
	data, err := os.ReadFile(rt + "/staged-deployment")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStaged(data)
	if err != nil || st == nil {
		t.Fatalf("parsing libostree's state: %v", err)
	}
	if again, err := st.marshal(); err != nil || !bytes.Equal(again, data) {
		t.Errorf("our serialization of libostree's state differs (%v):\nours   %x\nostree %x", err, again, data)
	}
	s2, err := Open(t.Context(), s.Path(), WithRuntimeDir(rt))
	if err != nil {
		t.Fatal(err)
	}
	theirs := s2.Staged()
	if theirs == nil || theirs.Commit != c2 || theirs.merge == nil || !theirs.merge.Equal(v1) || !strings.HasSuffix(strings.Join(theirs.Kargs, " "), " extra") {
		t.Fatalf("libostree's staged deployment as we load it: %+v (state %+v)", theirs, st)
	}
	f, err := s2.FinalizeStaged(t.Context(), WriteOptions{})
	if err != nil || f.Deployment == nil || !f.Deployment.Equal(theirs) {
		t.Fatalf("finalizing libostree's staged deployment: %+v, %v", f, err)
	}
	if got := strings.Join(f.Deployment.Kargs, " "); got != "root=x quiet extra" {
		t.Errorf("kernel arguments of the finalized deployment: %q", got)
	}
	if got := readFile(t, filepath.Join(s.Path(), theirs.Dir(), "etc/a.conf")); got != "a=local\n" {
		t.Errorf("finalized etc/a.conf = %q, want the local edit", got)
	}
	status = run(t, "ostree", "admin", "status", "--sysroot="+s.Path())
	if i, j := strings.Index(status, theirs.name()), strings.Index(status, v1.name()); i < 0 || j < i {
		t.Errorf("ostree admin status after finalization:\n%s", status)
	}
	checkEntriesExist(t, s.Path())
}

// sysrootPair makes our sysroot and, next to it, one made by `ostree admin init-fs --modern`
// and `os-init`, both with stateroot myos and the same config. ostree 2022.7 does not know
// sysroot.bootprefix, so ours has it off (TestBootprefix tests it on).
func sysrootPair(t *testing.T) (ours *Sysroot, real string) {
	t.Helper()
	testutil.RequireTool(t, "ostree")
	ours = newSysroot(t)
	if err := ours.Repo().SetConfig("sysroot", "bootprefix", "false"); err != nil {
		t.Fatal(err)
	}
	real = filepath.Join(filepath.Dir(ours.Path()), "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "ostree", "admin", "init-fs", "--modern", real)
	run(t, "ostree", "admin", "os-init", "--sysroot="+real, "myos")
	run(t, "ostree", "config", "--repo", real+"/ostree/repo", "set", "sysroot.bootloader", "none")
	return ours, real
}
