package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
)

// busyboxRootfs writes a tiny bootable OS: busybox as the shell, a stand-in kernel, os-release.
func busyboxRootfs(t *testing.T) string {
	t.Helper()
	testutil.RequireTool(t, "busybox")
	root := filepath.Join(t.TempDir(), "rootfs")
	for _, d := range []string{"usr/bin", "etc", "boot", "usr/lib/modules/6.1.0-1-amd64", "var/lib/demo"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	busybox, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"usr/bin/busybox":            string(busybox),
		"etc/os-release":             "ID=tiny\nVERSION_ID=1.0\nPRETTY_NAME=\"Tiny 1.0\"\n",
		"etc/motd":                   "hello from tiny\n",
		"boot/vmlinuz-6.1.0-1-amd64": "kernel",
		"var/lib/demo/state":         "state\n",
	}
	for p, c := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"sh", "cat", "ls", "rm", "test"} {
		if err := os.Symlink("busybox", filepath.Join(root, "usr/bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("usr/bin", filepath.Join(root, "bin")); err != nil {
		t.Fatal(err)
	}
	return root
}

// A registry on loopback takes our image over plain HTTP with no extra flag, skopeo reads its
// labels, and a second build to the same place keeps the layer assignment it finds there.
func TestComposeImageToRegistry(t *testing.T) {
	testutil.RequireTool(t, "skopeo")
	addr := testutil.Registry(t)
	rootfs := busyboxRootfs(t)
	target := "docker://" + addr + "/tiny:1"
	out, errs, code := run(t, "compose", "image", "--rootfs", rootfs, "--output", target, "--timestamp", "@1700000000", "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	digest := lastLine(out)
	var inspect struct {
		Digest string
		Labels map[string]string
	}
	raw := testutil.Run(t, "skopeo", "inspect", "--tls-verify=false", "docker://"+addr+"/tiny:1")
	if err := json.Unmarshal([]byte(raw), &inspect); err != nil {
		t.Fatal(err)
	}
	if inspect.Digest != digest || inspect.Labels["containers.bootc"] != "1" || inspect.Labels["ostree.linux"] != "6.1.0-1-amd64" || inspect.Labels["org.opencontainers.image.version"] != "1.0" {
		t.Errorf("skopeo inspect: digest %s (we printed %s), labels %v", inspect.Digest, digest, inspect.Labels)
	}
	// Not -q: --quiet leaves only errors and the result, and the note on the layout is neither.
	out2, errs2, code := run(t, "compose", "image", "--rootfs", rootfs, "--output", target, "--timestamp", "@1700000000")
	if code != 0 {
		t.Fatalf("second build: exit %d: %s", code, errs2)
	}
	if !strings.Contains(errs2, "keeping the layer assignment") {
		t.Errorf("second build did not reuse the previous layout: %s", errs2)
	}
	if lastLine(out2) != digest {
		t.Errorf("same input gave %s, then %s", digest, lastLine(out2))
	}
}

// containers-storage as a target; podman builds FROM it; and compose image --from flattens the
// derived image, whiteouts included, into a new bootable image that podman runs.
func TestComposeImageStorageAndFrom(t *testing.T) {
	pm := testutil.NewPodman(t)
	rootfs := busyboxRootfs(t)
	_, errs, code := run(t, "compose", "image", "--rootfs", rootfs, "--output", "containers-storage:"+pm.StorageRef("localhost/tiny:1"), "-q")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	labels := pm.MustRun("image", "inspect", "--format", "{{index .Labels \"containers.bootc\"}}", "localhost/tiny:1")
	if strings.TrimSpace(labels) != "1" {
		t.Errorf("containers.bootc label in storage = %q", labels)
	}
	ctxDir := t.TempDir()
	containerfile := "FROM localhost/tiny:1\nRUN rm /etc/motd && echo derived > /etc/derived && mkdir -p /usr/share/derived && echo data > /usr/share/derived/file\n"
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(containerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	pm.MustRun("build", "--isolation", "chroot", "-t", "localhost/derived:1", ctxDir)
	archive := filepath.Join(t.TempDir(), "derived.tar")
	pm.MustRun("save", "--format", "oci-archive", "-o", archive, "localhost/derived:1")
	final := filepath.Join(t.TempDir(), "final.ociarchive")
	_, errs, code = run(t, "compose", "image", "--from", "oci-archive:"+archive, "--output", "oci-archive:"+final, "-q")
	if code != 0 {
		t.Fatalf("compose --from: exit %d: %s", code, errs)
	}
	got := pm.MustRun("run", "--rm", "--network", "none", "oci-archive:"+final, "/bin/sh", "-c",
		"cat /etc/derived /usr/share/derived/file; test -e /etc/motd && echo motd-still-there; test -e /sysroot/ostree/repo/config && echo has-repo; cat /etc/os-release | head -1")
	if want := "derived\ndata\nhas-repo\nID=tiny\n"; got != want {
		t.Errorf("flattened image shows:\n%s\nwant:\n%s", got, want)
	}
}

// Two builds of the same tree with the same SOURCE_DATE_EPOCH give the same manifest digest.
func TestComposeImageReproducibleWithSourceDateEpoch(t *testing.T) {
	rootfs := busyboxRootfs(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	for _, comp := range []string{"gzip", "zstd"} {
		var digests []string
		for i := 0; i < 2; i++ {
			layout := filepath.Join(t.TempDir(), "out")
			out, errs, code := run(t, "compose", "image", "--rootfs", rootfs, "--compression", comp, "--output", "oci:"+layout+":1", "-q")
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", comp, code, errs)
			}
			digests = append(digests, lastLine(out))
			img, err := transport.Read(context.Background(), imgref.Ref{Transport: imgref.OCI, Name: layout, Tag: "1"}, transport.DefaultPlatform())
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			img.Close()
			if err != nil {
				t.Fatal(err)
			}
			if got := cf.Created.Time.UTC().Format(time.RFC3339); got != "2023-11-14T22:13:20Z" {
				t.Errorf("%s: image created %s, want SOURCE_DATE_EPOCH's 2023-11-14T22:13:20Z", comp, got)
			}
		}
		if digests[0] != digests[1] || !strings.HasPrefix(digests[0], "sha256:") {
			t.Errorf("%s: two builds gave %v", comp, digests)
		}
	}
}
