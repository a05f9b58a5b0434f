package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"github.com/bootc-go/bootc/pkg/transport"
)

// debianWithKernel copies the cached Debian tree and adds a stand-in kernel, so that it commits
// as bootable.
func debianWithKernel(t *testing.T) string {
	t.Helper()
	src := testutil.DebianTree(t)
	dst := filepath.Join(t.TempDir(), "rootfs")
	testutil.Run(t, "cp", "-a", src, dst)
	kver := "6.1.0-99-amd64"
	if err := os.MkdirAll(filepath.Join(dst, "usr/lib/modules", kver), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"boot/vmlinuz-" + kver: "not really a kernel", "boot/initrd.img-" + kver: "not really an initramfs"} {
		if err := os.WriteFile(filepath.Join(dst, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Our image of a real Debian tree runs under podman with the tree's content, modes, owners,
// symlinks and hardlinks, and skopeo sees its labels.
func TestEncapsulateDebianRunsInPodman(t *testing.T) {
	testutil.RequireTool(t, "skopeo")
	pm := testutil.NewPodman(t)
	ctx := context.Background()
	rootfs := debianWithKernel(t)
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "repo"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	c, err := bootable.Commit(ctx, repo, rootfs, bootable.WithBranch("debian"), bootable.WithTimestamp(time.Unix(1700000000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	img, err := encapsulate.Build(ctx, repo, c.String())
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	archive := filepath.Join(t.TempDir(), "debian.ociarchive")
	if _, err := transport.Write(ctx, img, imgref.Ref{Transport: imgref.OCIArchive, Name: archive}); err != nil {
		t.Fatal(err)
	}

	// skopeo: labels, and ostree.components on every layer after the first.
	var inspect struct {
		Labels map[string]string
	}
	if err := json.Unmarshal([]byte(testutil.Run(t, "skopeo", "inspect", "oci-archive:"+archive)), &inspect); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{ostreecontainer.LabelCommit: c.String(), ostreecontainer.LabelBootable: "true", ostreecontainer.LabelBootc: "1", ostreecontainer.LabelLinux: "6.1.0-99-amd64"} {
		if inspect.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, inspect.Labels[k], v)
		}
	}
	var manifest struct {
		Layers []struct{ Annotations map[string]string }
	}
	if err := json.Unmarshal([]byte(testutil.Run(t, "skopeo", "inspect", "--raw", "oci-archive:"+archive)), &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest.Layers) < 10 {
		t.Errorf("only %d layers for a Debian tree", len(manifest.Layers))
	}
	for i, l := range manifest.Layers[1:] {
		if _, ok := l.Annotations["ostree.components"]; !ok {
			t.Errorf("layer %d lacks ostree.components", i+1)
		}
	}

	// podman: run programs from it and compare what they see with the source tree.
	var hardA, hardB string
	filepath.Walk(filepath.Join(rootfs, "usr/bin"), func(p string, info os.FileInfo, err error) error {
		if err == nil && hardA == "" && info.Mode().IsRegular() && info.Sys().(*syscall.Stat_t).Nlink > 1 {
			hardA = p
		}
		return nil
	})
	if hardA != "" {
		ino := mustStat(t, hardA).Ino
		filepath.Walk(filepath.Join(rootfs, "usr"), func(p string, info os.FileInfo, err error) error {
			if err == nil && p != hardA && info.Mode().IsRegular() && info.Sys().(*syscall.Stat_t).Ino == ino {
				hardB = p
			}
			return nil
		})
	}
	script := `set -e
sha256sum /usr/bin/bash | cut -d' ' -f1
stat -c '%a %u %g' /usr/bin/su /usr/bin/chage /var/mail
readlink /bin /lib64/ld-linux-x86-64.so.2
cat /etc/debian_version
bash -c 'echo programs run'
`
	if hardA != "" && hardB != "" {
		script += fmt.Sprintf("[ $(stat -c %%i %s) = $(stat -c %%i %s) ] && echo hardlinked\n", strings.TrimPrefix(hardA, rootfs), strings.TrimPrefix(hardB, rootfs))
	}
	out := pm.MustRun("run", "--rm", "--network", "none", "oci-archive:"+archive, "/bin/sh", "-c", script)
	want := []string{fileSHA(t, filepath.Join(rootfs, "usr/bin/bash"))}
	for _, p := range []string{"usr/bin/su", "usr/bin/chage", "var/mail"} {
		st := mustStat(t, filepath.Join(rootfs, p))
		want = append(want, fmt.Sprintf("%o %d %d", st.Mode&0o7777, st.Uid, st.Gid))
	}
	for _, p := range []string{"bin", "lib64/ld-linux-x86-64.so.2"} {
		target, err := os.Readlink(filepath.Join(rootfs, p))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, target)
	}
	debVersion, _ := os.ReadFile(filepath.Join(rootfs, "etc/debian_version"))
	want = append(want, strings.TrimSpace(string(debVersion)), "programs run")
	if hardA != "" && hardB != "" {
		want = append(want, "hardlinked")
	} else {
		t.Log("the Debian tree has no hardlinked files under /usr/bin")
	}
	if got := strings.Split(strings.TrimSpace(out), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("in the container:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(want[1], "4755") {
		t.Errorf("/usr/bin/su is not setuid in the source tree: %s", want[1])
	}
}

func mustStat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

func fileSHA(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil))
}
