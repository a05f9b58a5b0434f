package install_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/health"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/install"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sfdiskTable is what `sfdisk --json` prints.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		Partitions []struct {
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// mountPartition mounts the partition at offset of a disk image read-only through a loop device
// and returns the mount point; it is unmounted when the test ends.
func mountPartition(t *testing.T, disk string, offset int64) string {
	t.Helper()
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "ro,loop,offset="+strconv.FormatInt(offset, 10), disk, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// checkDisk checks the partition table, the filesystem and the installation on disk against
// what ToDisk returned.
func checkDisk(t *testing.T, disk string, res *install.Result, size int64) {
	t.Helper()
	var tab sfdiskTable
	must(t, json.Unmarshal([]byte(testutil.Run(t, "sfdisk", "--json", disk)), &tab))
	pt := tab.PartitionTable
	grub := res.Bootloader == "grub"
	rootStart := int64(2048) // sectors
	if grub {
		// BIOS boot 1 MiB and EFI system 64 MiB, then the root.
		if pt.Label != "gpt" || len(pt.Partitions) != 3 || res.RootPartition != 3 {
			t.Fatalf("partition table: %+v; result %+v", pt, res)
		}
		if p := pt.Partitions[0]; p.Start != 2048 || p.Size != 2048 || p.Type != install.BIOSBootPartitionType || p.Name != "BIOS-BOOT" {
			t.Errorf("BIOS boot partition %+v", p)
		}
		if p := pt.Partitions[1]; p.Start != 4096 || p.Size != 64<<11 || p.Type != install.ESPPartitionType || p.Name != "EFI-SYSTEM" {
			t.Errorf("EFI system partition %+v", p)
		}
		rootStart = 66 << 11
	} else if pt.Label != "gpt" || len(pt.Partitions) != 1 || res.RootPartition != 1 {
		t.Fatalf("partition table: %+v; result %+v", pt, res)
	}
	p := pt.Partitions[len(pt.Partitions)-1]
	end := (p.Start + p.Size) * 512
	if p.Start != rootStart || p.Name != "root" || p.Type != install.RootPartitionType() || end > size-33*512 || end < size-(1<<20)-33*512 || end%(1<<20) != 0 || p.Size*512 != res.PartitionSize {
		t.Errorf("root partition %+v on a disk of %d bytes; result %+v", p, size, res)
	}
	// sfdisk --verify reads both GPT copies: the filesystem must not overwrite the backup.
	if out, err := exec.Command("sfdisk", "--verify", disk).CombinedOutput(); err != nil || strings.Contains(string(out), "corrupt") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}

	mnt := mountPartition(t, disk, rootStart*512)
	if got := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "FSTYPE", mnt)); got != res.Filesystem {
		t.Errorf("filesystem is %s, want %s", got, res.Filesystem)
	}
	if uuid := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "UUID", mnt)); uuid != res.UUID {
		t.Errorf("filesystem UUID %s, result %s", uuid, res.UUID)
	}
	entries, _ := filepath.Glob(filepath.Join(mnt, "boot/loader/entries/*.conf"))
	if len(entries) != 1 {
		t.Fatalf("boot entries: %v", entries)
	}
	entry, err := os.ReadFile(entries[0])
	must(t, err)
	kargs := " rw console=ttyS0 "
	if grub {
		kargs = " rw panic=10 rd.shell=0 rd.emergency=reboot console=ttyS0 "
	}
	if !regexp.MustCompile(`(?m)^options root=UUID=` + regexp.QuoteMeta(res.UUID) + kargs + `ostree=/ostree/boot\.1/default/[0-9a-f]{64}/0$`).Match(entry) {
		t.Errorf("boot entry does not name the filesystem UUID %s first, then%s:\n%s", res.UUID, kargs, entry)
	}
	// The kernel and initramfs the entry names are on the filesystem.
	for _, key := range []string{"linux", "initrd"} {
		m := regexp.MustCompile(`(?m)^` + key + ` (\S+)$`).FindSubmatch(entry)
		if m == nil {
			t.Errorf("entry has no %s line", key)
			continue
		}
		if _, err := os.Stat(filepath.Join(mnt, string(m[1]))); err != nil {
			t.Errorf("%s %s: %v", key, m[1], err)
		}
	}
	// The real ostree reads the sysroot and checks the repository, and agrees with Status.
	admin := testutil.Run(t, "ostree", "admin", "status", "--sysroot="+mnt)
	d := res.Install.Deployed.Deployment
	if strings.Count(admin, "default "+d.Commit.String()+"."+"0") != 1 {
		t.Errorf("ostree admin status does not list %s.0 once:\n%s", d.Commit, admin)
	}
	testutil.Run(t, "ostree", "fsck", "--repo", filepath.Join(mnt, "ostree/repo"))
	st, err := host.Status(t.Context(), mnt)
	must(t, err)
	if st.Status.Booted == nil || st.Status.Booted.Image == nil || *st.Status.Booted.Image.Version != "1.0" || st.Status.Booted.Ostree.Checksum != d.Commit.String() {
		t.Errorf("status: %+v", st.Status)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "ostree/deploy/default/var/lib/demo/seed")); err != nil || string(data) != "seed 1.0\n" {
		t.Errorf("/var not seeded: %q %v", data, err)
	}
	// libostree never runs grub-mkconfig on this sysroot.
	if bl := strings.TrimSpace(testutil.Run(t, "ostree", "config", "--repo", filepath.Join(mnt, "ostree/repo"), "get", "sysroot.bootloader")); bl != "none" {
		t.Errorf("sysroot.bootloader=%s", bl)
	}
	if grub {
		checkGRUB(t, disk, mnt, res)
	} else if _, err := os.Lstat(filepath.Join(mnt, "boot/grub")); err == nil {
		t.Error("--bootloader none made boot/grub")
	}
}

// checkGRUB checks the bootloader on a disk: the MBR code, core.img in the BIOS boot partition
// (with its block list set for that place), BOOTX64.EFI on the ESP, and /boot/grub on the root
// filesystem mounted at mnt. The images are built again here from the host's GRUB, which the test
// image holds (grub-mkimage's output is reproducible).
func checkGRUB(t *testing.T, disk, mnt string, res *install.Result) {
	t.Helper()
	im, err := grub.MakeImages(t.Context(), runTool, filepath.Join(mnt, res.Install.Deployed.Deployment.Dir(), grub.LibDir), res.UUID, t.TempDir())
	must(t, err)
	data, err := os.ReadFile(disk)
	must(t, err)
	mbr := data[:512]
	if !bytes.Equal(mbr[:3], im.Boot[:3]) || !bytes.Equal(mbr[0x68:0x1b8], im.Boot[0x68:0x1b8]) {
		t.Error("the MBR code is not boot.img's")
	}
	if lba := binary.LittleEndian.Uint64(mbr[0x5c:]); lba != 2048 || mbr[0x64] != 0xff || mbr[0x66] != 0x90 || mbr[0x67] != 0x90 {
		t.Errorf("MBR: core.img at sector %d, boot drive %#x, drive check % x", lba, mbr[0x64], mbr[0x66:0x68])
	}
	if mbr[0x1c2] != 0xee || mbr[0x1fe] != 0x55 || mbr[0x1ff] != 0xaa {
		t.Errorf("the protective partition table is gone: % x", mbr[0x1be:])
	}
	core := data[1<<20 : 2<<20]
	sectors := (len(im.Core) + 511) / 512
	if start, n, seg := binary.LittleEndian.Uint64(core[0x1f4:]), binary.LittleEndian.Uint16(core[0x1fc:]), binary.LittleEndian.Uint16(core[0x1fe:]); start != 2049 || int(n) != sectors-1 || seg != 0x820 {
		t.Errorf("core.img's block list {%d, %d, %#x}, want {2049, %d, 0x820}", start, n, seg, sectors-1)
	}
	if !bytes.Equal(core[:0x1e8], im.Core[:0x1e8]) || !bytes.Equal(core[512:len(im.Core)], im.Core[512:]) || !bytes.Equal(core[0x1e8:0x1f4], make([]byte, 12)) {
		t.Error("core.img in the BIOS boot partition differs from grub-mkimage's (outside its block list)")
	}
	// The ESP, read where it lies on the disk.
	esp := fmt.Sprintf("%s@@%d", disk, 2<<20)
	if out := testutil.Run(t, "mdir", "-i", esp, "-b", "::/EFI/BOOT"); strings.TrimSpace(out) != "::/EFI/BOOT/BOOTX64.EFI" {
		t.Errorf("ESP: %q", out)
	}
	efi := filepath.Join(t.TempDir(), "BOOTX64.EFI")
	testutil.Run(t, "mcopy", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI", efi)
	if fileSum(t, efi) != fileSum(t, im.EFI) {
		t.Error("BOOTX64.EFI differs from grub-mkimage's")
	}
	// /boot/grub: the menu link, the environment block, every module of both platforms.
	if link, err := os.Readlink(filepath.Join(mnt, "boot/grub/grub.cfg")); err != nil || link != "../loader/grub.cfg" {
		t.Errorf("boot/grub/grub.cfg: %q %v", link, err)
	}
	if st, err := os.Stat(filepath.Join(mnt, "boot/grub/grubenv")); err != nil || st.Size() != 1024 {
		t.Errorf("boot/grub/grubenv: %v", err)
	}
	for _, p := range []string{grub.PlatformBIOS, grub.PlatformEFI} {
		want, _ := filepath.Glob(filepath.Join("/usr/lib/grub", p, "*.mod"))
		got, _ := filepath.Glob(filepath.Join(mnt, "boot/grub", p, "*.mod"))
		if len(got) != len(want) || len(want) < 100 {
			t.Errorf("boot/grub/%s has %d modules, the image %d", p, len(got), len(want))
		}
		if _, err := os.Stat(filepath.Join(mnt, "boot/grub", p, "command.lst")); err != nil {
			t.Error(err)
		}
	}
}

func runTool(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return string(out), err
}

// archiveImage composes the test image, with the host's GRUB platform directories in
// usr/lib/grub when withGRUB.
func archiveImage(t *testing.T, withGRUB bool, edits ...func(tree string)) host.Install {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "os.ociarchive")
	tree := testimage.TinyOS(t, "1.0", nil)
	if withGRUB {
		testimage.AddGRUB(t, tree)
	}
	for _, edit := range edits {
		edit(tree)
	}
	testimage.Compose(t, tree, "oci-archive:"+archive)
	ref, err := host.ParseImage("oci-archive:"+archive, imgref.Parse, false)
	must(t, err)
	return host.Install{Source: ref, Kargs: []string{"console=ttyS0"}}
}

// TestToDisk installs onto disk image files both ways (filesystem filled from a staging
// directory; ext4 and xfs made on a loop device and mounted) and onto a block device, with GRUB
// and without a bootloader, and checks each with sfdisk, a read-only mount, `ostree admin
// status`, `ostree fsck`, Status, and for GRUB the MBR, core.img, the ESP and /boot/grub.
func TestToDisk(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "sfdisk", "mkfs.ext4", "mkfs.xfs", "losetup", "mount", "findmnt",
		"grub-mkimage", "mkfs.vfat", "mmd", "mcopy", "mdir")
	in := archiveImage(t, true)
	none := install.WithBootloader("none")
	for _, tc := range []struct {
		name string
		fs   string
		opts []install.Option
	}{
		{"ext4-from-directory", "ext4", nil},
		{"xfs-via-loopback", "xfs", []install.Option{install.ViaLoopback(), install.WithFilesystem("xfs")}},
		{"block-device", "ext4", nil},
		{"no-bootloader-from-directory", "ext4", []install.Option{none}},
		{"no-bootloader-via-loopback", "ext4", []install.Option{install.ViaLoopback(), none}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			disk := filepath.Join(dir, "disk.img")
			target := disk
			opts := tc.opts
			if tc.name == "block-device" {
				// A loop device stands for a disk: partitioned and installed through its own
				// loop devices for the partition; Wipe since it is not created here.
				must(t, os.WriteFile(disk, nil, 0o644))
				must(t, os.Truncate(disk, 1<<30))
				target = strings.TrimSpace(testutil.Run(t, "losetup", "--find", "--show", disk))
				opts = append(opts, install.Wipe())
			} else {
				opts = append(opts, install.WithSize(1<<30))
			}
			var events []install.Event
			res, err := install.ToDisk(t.Context(), target, in, append(opts, install.WithProgress(func(e install.Event) { events = append(events, e) }))...)
			if target != disk {
				testutil.Run(t, "losetup", "--detach", target)
			}
			must(t, err)
			if res.Path != target || res.Filesystem != tc.fs || res.Install == nil {
				t.Errorf("result %+v", res)
			}
			var installed, partitioned, bootloader bool
			for _, e := range events {
				switch e := e.(type) {
				case install.Installed:
					installed = e.Result == res.Install
				case install.Partitioning:
					partitioned = e.Path == target && e.PartitionSize == res.PartitionSize
				case install.InstallingBootloader:
					bootloader = e.Bootloader == "grub"
				}
			}
			if !installed || !partitioned || bootloader != (res.Bootloader == "grub") {
				t.Errorf("events %+v", events)
			}
			checkDisk(t, disk, res, 1<<30)
			// Nothing is left behind: staging directories, loop devices.
			if left, _ := filepath.Glob(filepath.Join(dir, ".bootc-install-*")); len(left) != 0 {
				t.Errorf("staging left behind: %v", left)
			}
			if loops := testutil.Run(t, "losetup", "--associated", disk); strings.Count(loops, disk) > 1 {
				t.Errorf("loop devices left attached:\n%s", loops) // one is the test's own mount
			}
		})
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	must(t, err)
	return sha256.Sum256(data)
}

// TestToDiskRefusals: wrong targets and options are ErrInvalidTarget, bad images the pull's
// error and images without GRUB grub.ErrNoGRUB; all leave the target as it was, and a file the
// call created is removed again.
func TestToDiskRefusals(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "sfdisk", "mkfs.ext4", "losetup", "grub-mkimage", "mkfs.vfat", "mmd", "mcopy")
	in := archiveImage(t, true)
	noGRUB := archiveImage(t, false)
	// A health-check directory that cannot be searched: its checks could never run.
	badHealth := archiveImage(t, true, func(tree string) {
		d := filepath.Join(tree, "usr/lib/bootc/health.d/required.d")
		must(t, os.MkdirAll(d, 0o755))
		must(t, os.WriteFile(filepath.Join(d, "10-ok"), []byte("#!/bin/sh\ntrue\n"), 0o755))
		must(t, os.Chmod(d, 0o644))
	})
	dir := t.TempDir()
	used := filepath.Join(dir, "used.img")
	must(t, os.WriteFile(used, []byte("an old partition table"), 0o644))
	must(t, os.Truncate(used, 600<<20))
	before := fileSum(t, used)
	badArchive := filepath.Join(dir, "bad.ociarchive")
	must(t, os.WriteFile(badArchive, []byte("not a tar archive"), 0o644))
	badRef, err := host.ParseImage("oci-archive:"+badArchive, imgref.Parse, false)
	must(t, err)
	bad := host.Install{Source: badRef}
	x := filepath.Join(dir, "x.img")
	const grubFix = "install grub-pc-bin and grub-efi-amd64-bin in the image"
	for _, tc := range []struct {
		name   string
		in     host.Install
		target string
		opts   []install.Option
		is     error  // nil: the pull's error naming badArchive
		say    string // in the message
	}{
		{"holds-data", in, used, nil, install.ErrInvalidTarget, "add --wipe"},
		{"directory", in, dir, nil, install.ErrInvalidTarget, "install to-filesystem"},
		{"xfs-needs-loopback", in, x, []install.Option{install.WithFilesystem("xfs")}, install.ErrInvalidTarget, "--via-loopback"},
		{"bad-filesystem", in, x, []install.Option{install.WithFilesystem("btrfs")}, install.ErrInvalidTarget, "ext4 or xfs"},
		{"bad-bootloader", in, x, []install.Option{install.WithBootloader("lilo")}, install.ErrInvalidTarget, "use grub"},
		{"bad-bootloader-wiped-file", in, used, []install.Option{install.Wipe(), install.WithBootloader("")}, install.ErrInvalidTarget, "use grub"},
		{"too-small", in, x, []install.Option{install.WithSize(100 << 20)}, install.ErrInvalidTarget, "at least 512MiB"},
		{"too-small-no-bootloader", in, x, []install.Option{install.WithSize(100 << 20), install.WithBootloader("none")}, install.ErrInvalidTarget, "at least 512MiB"},
		{"shrink", in, used, []install.Option{install.Wipe(), install.WithSize(512 << 20)}, install.ErrInvalidTarget, "never shrunk"},
		{"bad-image-new-file", bad, x, nil, nil, badArchive},
		{"bad-image-wiped-file", bad, used, []install.Option{install.Wipe()}, nil, badArchive},
		{"no-grub-new-file", noGRUB, x, nil, grub.ErrNoGRUB, grubFix},
		{"no-grub-wiped-file", noGRUB, used, []install.Option{install.Wipe()}, grub.ErrNoGRUB, "--bootloader none"},
		{"no-grub-via-loopback-new-file", noGRUB, x, []install.Option{install.ViaLoopback(), install.WithSize(600 << 20)}, grub.ErrNoGRUB, grubFix},
		{"health-dir-not-executable-new-file", badHealth, x, nil, health.ErrNotExecutable, "required.d"},
		{"health-dir-not-executable-wiped-file", badHealth, used, []install.Option{install.Wipe()}, health.ErrNotExecutable, "required.d"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := install.ToDisk(t.Context(), tc.target, tc.in, tc.opts...)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Errorf("%v, want %v", err, tc.is)
			case tc.is == nil && errors.Is(err, install.ErrInvalidTarget):
				t.Errorf("%v, want the pull's error", err)
			case !strings.Contains(err.Error(), tc.say):
				t.Errorf("%v, want a message saying %q", err, tc.say)
			}
			if _, err := os.Stat(x); err == nil {
				t.Error("a refused install left x.img behind")
			}
			// Even with Wipe, a refused image leaves the target as it was: the image is
			// pulled, deployed and checked for GRUB in a staging directory before the disk is
			// written.
			if fileSum(t, used) != before {
				t.Fatal("a refused install changed the target")
			}
		})
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".bootc-install-*")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
	// With Wipe the install goes through, and the file keeps its size; without a bootloader,
	// an image without GRUB installs.
	res, err := install.ToDisk(t.Context(), used, noGRUB, install.Wipe(), install.WithBootloader("none"))
	must(t, err)
	if out := testutil.Run(t, "sfdisk", "--dump", used); !strings.Contains(out, "name=\"root\"") {
		t.Errorf("after Wipe:\n%s", out)
	}
	if st, _ := os.Stat(used); st.Size() != 600<<20 || res.PartitionSize != 598<<20 {
		t.Errorf("size changed to %d; partition %d", st.Size(), res.PartitionSize)
	}
}
