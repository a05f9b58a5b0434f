package sysroot

import (
	"fmt"
	"os"
	"path/filepath"
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
