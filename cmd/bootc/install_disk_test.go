package main

import (
	"crypto/sha256"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// sfdiskTable is what `sfdisk --json` prints.
type sfdiskTable struct {
	PartitionTable struct {
		Label      string `json:"label"`
		LastLBA    int64  `json:"lastlba"`
		SectorSize int64  `json:"sectorsize"`
		Partitions []struct {
			Start int64  `json:"start"`
			Size  int64  `json:"size"`
			Type  string `json:"type"`
			Name  string `json:"name"`
		} `json:"partitions"`
	} `json:"partitiontable"`
}

// mountPartition mounts partition 1 of a disk image (at 1 MiB) read-only through a loop device
// and returns the mount point; it is unmounted when the test ends.
func mountPartition(t *testing.T, disk string) string {
	t.Helper()
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "ro,loop,offset=1048576", disk, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

// checkDisk checks the partition table, the filesystem and the installation on disk.
func checkDisk(t *testing.T, disk, fsType string, size int64) {
	t.Helper()
	var tab sfdiskTable
	if err := json.Unmarshal([]byte(testutil.Run(t, "sfdisk", "--json", disk)), &tab); err != nil {
		t.Fatal(err)
	}
	pt := tab.PartitionTable
	if pt.Label != "gpt" || len(pt.Partitions) != 1 {
		t.Fatalf("partition table: %+v", pt)
	}
	p := pt.Partitions[0]
	end := (p.Start + p.Size) * 512
	if p.Start != 2048 || p.Name != "root" || p.Type != rootPartitionType() || end > size-33*512 || end < size-(1<<20)-33*512 || end%(1<<20) != 0 {
		t.Errorf("root partition %+v on a disk of %d bytes", p, size)
	}
	// sfdisk --verify reads both GPT copies: the filesystem must not overwrite the backup.
	if out, err := exec.Command("sfdisk", "--verify", disk).CombinedOutput(); err != nil || strings.Contains(string(out), "corrupt") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}

	mnt := mountPartition(t, disk)
	if got := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "FSTYPE", mnt)); got != fsType {
		t.Errorf("filesystem is %s, want %s", got, fsType)
	}
	uuid := strings.TrimSpace(testutil.Run(t, "findmnt", "-n", "-o", "UUID", mnt))
	entries, _ := filepath.Glob(filepath.Join(mnt, "boot/loader/entries/*.conf"))
	if len(entries) != 1 {
		t.Fatalf("boot entries: %v", entries)
	}
	entry, err := os.ReadFile(entries[0])
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^options root=UUID=` + regexp.QuoteMeta(uuid) + ` rw console=ttyS0 ostree=/ostree/boot\.1/default/[0-9a-f]{64}/0$`).Match(entry) {
		t.Errorf("boot entry does not name the filesystem UUID %s first:\n%s", uuid, entry)
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
	// The real ostree reads the sysroot and checks the repository.
	ids, admin := adminStatus(t, mnt)
	if len(ids) != 1 {
		t.Errorf("ostree admin status:\n%s", admin)
	}
	testutil.Run(t, "ostree", "fsck", "--repo", filepath.Join(mnt, "ostree/repo"))
	st := hostStatusJSON(t, mnt)
	if entryVersion(st.Status.Booted) != "1.0" {
		t.Errorf("status: %+v", st.Status)
	}
	if data, err := os.ReadFile(filepath.Join(mnt, "ostree/deploy/default/var/lib/demo/seed")); err != nil || string(data) != "seed 1.0\n" {
		t.Errorf("/var not seeded: %q %v", data, err)
	}
}

func composeArchive(t *testing.T) string {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "os.ociarchive")
	mustRun(t, "compose", "image", "--rootfs", tinyOS(t, "1.0", nil), "--output", "oci-archive:"+archive, "--timestamp", "2026-01-01T00:00:00Z", "-q")
	return archive
}

// TestInstallToDisk installs onto disk image files both ways (filesystem filled from a
// staging directory; xfs made on a loop device and mounted) and checks each with sfdisk, a
// read-only mount, `ostree admin status`, `ostree fsck` and our status.
func TestInstallToDisk(t *testing.T) {
	testutil.Root(t)
	for _, tool := range []string{"ostree", "sfdisk", "mkfs.ext4", "mkfs.xfs", "losetup", "mount", "findmnt"} {
		testutil.RequireTool(t, tool)
	}
	archive := composeArchive(t)
	for _, tc := range []struct {
		name, fs string
		args     []string
	}{
		{"ext4-from-directory", "ext4", nil},
		{"xfs-via-loopback", "xfs", []string{"--via-loopback", "--filesystem", "xfs"}},
		{"ext4-via-loopback", "ext4", []string{"--via-loopback"}},
		{"block-device", "ext4", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			disk := filepath.Join(dir, "disk.img")
			args := append([]string{"install", "to-disk", "--source-imgref", "oci-archive:" + archive, "--karg", "console=ttyS0"}, tc.args...)
			target := disk
			if tc.name == "block-device" {
				// A loop device stands for a disk: partitioned and installed through its own
				// loop devices for the partition; --wipe since it is not created here.
				diskFile(t, disk, "", 1<<30)
				target = strings.TrimSpace(testutil.Run(t, "losetup", "--find", "--show", disk))
				args = append(args, "--wipe")
			} else {
				args = append(args, "--size", "1G")
			}
			out := mustRun(t, append(args, target)...)
			if target != disk {
				testutil.Run(t, "losetup", "--detach", target)
			}
			if !strings.Contains(out, "Installed to "+target+": GPT, partition 1 "+tc.fs) {
				t.Errorf("output:\n%s", out)
			}
			checkDisk(t, disk, tc.fs, 1<<30)
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

// diskFile writes a sparse disk image of size bytes that starts with data.
func diskFile(t *testing.T, path, data string, size int64) {
	t.Helper()
	must(t, os.WriteFile(path, []byte(data), 0o644))
	must(t, os.Truncate(path, size))
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestInstallToDiskRefusals: wrong targets and bad images get a clear error and leave the
// target as it was; a file the command created is removed again.
func TestInstallToDiskRefusals(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "sfdisk")
	testutil.RequireTool(t, "mkfs.ext4")
	archive := composeArchive(t)
	dir := t.TempDir()

	used := filepath.Join(dir, "used.img")
	diskFile(t, used, "an old partition table", 600<<20)
	before := fileSum(t, used)
	bad := filepath.Join(dir, "bad.ociarchive")
	if err := os.WriteFile(bad, []byte("not a tar archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"holds-data", []string{"--source-imgref", "oci-archive:" + archive, used}, 2, "holds data"},
		{"directory", []string{"--source-imgref", "oci-archive:" + archive, dir}, 2, "install to-filesystem"},
		{"xfs-needs-loopback", []string{"--source-imgref", "oci-archive:" + archive, "--filesystem", "xfs", filepath.Join(dir, "x.img")}, 2, "--via-loopback"},
		{"bad-filesystem", []string{"--source-imgref", "oci-archive:" + archive, "--filesystem", "btrfs", filepath.Join(dir, "x.img")}, 2, "ext4 or xfs"},
		{"too-small", []string{"--source-imgref", "oci-archive:" + archive, "--size", "100M", filepath.Join(dir, "x.img")}, 2, "too small"},
		{"bad-size", []string{"--source-imgref", "oci-archive:" + archive, "--size", "lots", filepath.Join(dir, "x.img")}, 2, "--size"},
		{"shrink", []string{"--source-imgref", "oci-archive:" + archive, "--wipe", "--size", "512M", used}, 2, "never shrunk"},
		{"bad-image-new-file", []string{"--source-imgref", "oci-archive:" + bad, filepath.Join(dir, "x.img")}, 1, bad},
		{"bad-image-wiped-file", []string{"--source-imgref", "oci-archive:" + bad, "--wipe", used}, 1, bad},
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
	// Even with --wipe, a refused image leaves the target as it was: the image is pulled and
	// deployed in a staging directory before the disk is written.
	if fileSum(t, used) != before {
		t.Error("a refused install changed the target")
	}

	// The refusal without --wipe changed nothing; with --wipe the install goes through.
	fresh := filepath.Join(dir, "fresh.img")
	diskFile(t, fresh, "data", 600<<20)
	sum := fileSum(t, fresh)
	if _, _, code := run(t, "install", "to-disk", "--source-imgref", "oci-archive:"+archive, fresh); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if fileSum(t, fresh) != sum {
		t.Error("a refusal changed the target")
	}
	mustRun(t, "install", "to-disk", "--source-imgref", "oci-archive:"+archive, "--wipe", fresh)
	if out := testutil.Run(t, "sfdisk", "--dump", fresh); !strings.Contains(out, "name=\"root\"") {
		t.Errorf("after --wipe:\n%s", out)
	}
	if st, _ := os.Stat(fresh); st.Size() != 600<<20 {
		t.Errorf("size changed to %s", strconv.FormatInt(st.Size(), 10))
	}
}
