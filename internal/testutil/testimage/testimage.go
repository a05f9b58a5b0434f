// Package testimage builds small bootable images for tests and examples, the way `bootc compose
// image` does (a bootable commit of a root filesystem, encapsulated in chunk layers, written to a
// containers-transports target), without the CLI.
package testimage

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sign"
)

// Timestamp is the commit and image time of every image built here.
var Timestamp = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// WriteTinyOS writes a small bootable tree into dir: a stand-in kernel and initramfs, /etc
// defaults (os-release with VERSION_ID=version) and /var content. extra files (path -> content)
// are added or override.
func WriteTinyOS(dir, version string, extra map[string]string) error {
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
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// TinyOS writes WriteTinyOS's tree into a temporary directory and returns it.
func TinyOS(t testing.TB, version string, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := WriteTinyOS(dir, version, extra); err != nil {
		t.Fatal(err)
	}
	return dir
}

// AddBusybox puts the host's static busybox into the tree as /usr/bin/busybox, with sh, cat,
// echo, mkdir, rm and test linked to it and /bin -> usr/bin, so that `podman build` can RUN
// commands in an image built from it.
func AddBusybox(t testing.TB, root string) {
	t.Helper()
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skipf("no static busybox: %v", err)
	}
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755))
	must(os.WriteFile(filepath.Join(root, "usr/bin/busybox"), data, 0o755))
	for _, name := range []string{"sh", "cat", "echo", "mkdir", "rm", "test"} {
		must(os.Symlink("busybox", filepath.Join(root, "usr/bin", name)))
	}
	must(os.Symlink("usr/bin", filepath.Join(root, "bin")))
}

// AddGRUB copies the host's GRUB platform directories, /usr/lib/grub/i386-pc and x86_64-efi
// (their files, not the signed images under monolithic/), into the tree, as grub-pc-bin and
// grub-efi-amd64-bin install them in an image, so that `bootc install to-disk` can install GRUB
// from it. Without them on the host the test is skipped (failed under CI=true).
func AddGRUB(t testing.TB, root string) {
	t.Helper()
	for _, platform := range []string{"i386-pc", "x86_64-efi"} {
		src := filepath.Join("/usr/lib/grub", platform)
		ents, err := os.ReadDir(src)
		if err != nil {
			msg := fmt.Sprintf("no GRUB for %s on the host (install grub-pc-bin and grub-efi-amd64-bin): %v", platform, err)
			if testutil.IsCI() {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
		dst := filepath.Join(root, "usr/lib/grub", platform)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !e.Type().IsRegular() {
				continue
			}
			data, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err == nil {
				err = os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Option configures Build.
type Option func(*config)

type config struct {
	signKey string
}

// WithSignKey signs the image with a cosign private key (passphrase in COSIGN_PASSWORD, or
// none); target must be a registry.
func WithSignKey(path string) Option { return func(c *config) { c.signKey = path } }

// Build commits rootfs and writes it as an image to target (containers-transports syntax:
// oci:DIR:TAG, docker://HOST/NAME:TAG, ...), keeping the chunk layout of an image already at
// target as `bootc compose image` does, and returns the manifest digest.
func Build(ctx context.Context, rootfs, target string, opts ...Option) (v1.Hash, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	ref, err := imgref.Parse(target)
	if err != nil {
		return v1.Hash{}, err
	}
	var signer *sign.Signer
	if cfg.signKey != "" {
		if signer, err = sign.LoadKey(cfg.signKey, []byte(os.Getenv("COSIGN_PASSWORD"))); err != nil {
			return v1.Hash{}, err
		}
		defer signer.Close()
	}
	res, err := compose.Image(ctx, compose.Source{Rootfs: rootfs}, ref, compose.WithTimestamp(Timestamp), compose.WithSigner(signer))
	if err != nil {
		return v1.Hash{}, err
	}
	return res.Digest, nil
}

// Compose is Build for a test: it fails the test on error.
func Compose(t testing.TB, rootfs, target string, opts ...Option) v1.Hash {
	t.Helper()
	d, err := Build(t.Context(), rootfs, target, opts...)
	if err != nil {
		t.Fatalf("building %s from %s: %v", target, rootfs, err)
	}
	return d
}

// ProvisioningFiles are extra files for TinyOS that Ignition configs act on: a user database as
// Debian's base-passwd makes it (root, daemon, sudo and users groups), login.defs, /etc/skel
// and a vendor unit with an [Install] section.
var ProvisioningFiles = map[string]string{
	"etc/passwd":                            "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
	"etc/shadow":                            "root:*:20000:0:99999:7:::\ndaemon:*:20000:0:99999:7:::\n",
	"etc/group":                             "root:x:0:\ndaemon:x:1:\nsudo:x:27:\nusers:x:100:\n",
	"etc/gshadow":                           "root:*::\ndaemon:*::\nsudo:*::\nusers:*::\n",
	"etc/login.defs":                        "UID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\nHOME_MODE 0700\n",
	"etc/skel/.bashrc":                      "# .bashrc\n",
	"usr/lib/systemd/system/vendor.service": "[Unit]\nDescription=vendor\n[Service]\nExecStart=/usr/bin/tool\n[Install]\nWantedBy=multi-user.target\n",
	"var/roothome/.profile":                 "# root\n",
}

// AddHomeLinks makes /root a link to var/roothome and /home one to var/home in the tree, as in
// bootc images.
func AddHomeLinks(t testing.TB, root string) {
	t.Helper()
	for name, target := range map[string]string{"root": "var/roothome", "home": "var/home"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
}
