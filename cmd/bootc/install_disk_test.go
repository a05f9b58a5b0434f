package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
)

// The install itself is tested in pkg/install; this checks the flags, exit codes and output.

// TestInstallToDiskCLI: wrong targets and options are usage errors (exit 2), a bad image or one
// without GRUB exits 1, and an install prints the disk's layout and boot options.
func TestInstallToDiskCLI(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "sfdisk", "mkfs.ext4", "grub-mkimage", "mkfs.vfat", "mmd", "mcopy")
	archive := filepath.Join(t.TempDir(), "os.ociarchive")
	tree := testimage.TinyOS(t, "1.0", nil)
	testimage.AddGRUB(t, tree)
	testimage.Compose(t, tree, "oci-archive:"+archive)
	noGRUB := filepath.Join(t.TempDir(), "nogrub.ociarchive")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), "oci-archive:"+noGRUB)
	dir := t.TempDir()
	used := filepath.Join(dir, "used.img")
	must(t, os.WriteFile(used, []byte("an old partition table"), 0o644))
	must(t, os.Truncate(used, 600<<20))
	bad := filepath.Join(dir, "bad.ociarchive")
	must(t, os.WriteFile(bad, []byte("not a tar archive"), 0o644))
	src := "oci-archive:" + archive
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no-target", []string{"--source-imgref", src}, 2, "expected the DEVICE or FILE"},
		{"holds-data", []string{"--source-imgref", src, used}, 2, "holds data"},
		{"directory", []string{"--source-imgref", src, dir}, 2, "install to-filesystem"},
		{"xfs-needs-loopback", []string{"--source-imgref", src, "--filesystem", "xfs", filepath.Join(dir, "x.img")}, 2, "--via-loopback"},
		{"bad-filesystem", []string{"--source-imgref", src, "--filesystem", "btrfs", filepath.Join(dir, "x.img")}, 2, "ext4 or xfs"},
		{"too-small", []string{"--source-imgref", src, "--size", "100M", filepath.Join(dir, "x.img")}, 2, "too small"},
		{"bad-size", []string{"--source-imgref", src, "--size", "lots", filepath.Join(dir, "x.img")}, 2, "--size"},
		{"shrink", []string{"--source-imgref", src, "--wipe", "--size", "512M", used}, 2, "never shrunk"},
		{"bad-image", []string{"--source-imgref", "oci-archive:" + bad, filepath.Join(dir, "x.img")}, 1, bad},
		{"bad-bootloader", []string{"--source-imgref", src, "--bootloader", "lilo", filepath.Join(dir, "x.img")}, 2, `--bootloader "lilo": use grub`},
		{"no-grub", []string{"--source-imgref", "oci-archive:" + noGRUB, filepath.Join(dir, "x.img")}, 1, "install grub-pc-bin and grub-efi-amd64-bin in the image"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := run(t, append([]string{"install", "to-disk"}, tc.args...)...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d (want %d), stderr %q (want %q)", code, tc.code, errs, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.img")); err == nil {
				t.Error("a refused install left x.img behind")
			}
		})
	}
	out := mustRun(t, "install", "to-disk", "--source-imgref", src, "--karg", "console=ttyS0", "--wipe", used)
	for _, want := range []string{
		"Pulled ", "Installed oci-archive:" + archive + " version 1.0 (", "into the staging directory (stateroot default)\n",
		"Partitioning " + used + " (600MiB): GPT, root partition 533MiB\n",
		"Writing the ext4 filesystem (533MiB) into partition 3\n",
		"Installing GRUB: core.img into partition 1 and the MBR, EFI/BOOT/BOOTX64.EFI onto partition 2\n",
		"Installed to " + used + ": GPT, partition 3 ext4 root filesystem UUID=",
		"Boots with GRUB (BIOS and UEFI) (options: root=UUID=",
		" rw panic=10 rd.shell=0 rd.emergency=reboot console=ttyS0 ostree=…)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("install to-disk output lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "install", "to-disk", "--source-imgref", "oci-archive:"+noGRUB, "--bootloader", "none", "--wipe", used)
	for _, want := range []string{
		"Writing the ext4 filesystem (598MiB) into partition 1\n",
		"Installed to " + used + ": GPT, partition 1 ext4 root filesystem UUID=",
		"Boot with the default entry in /boot/loader/entries (options: root=UUID=",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("install to-disk --bootloader none output lacks %q:\n%s", want, out)
		}
	}
}
