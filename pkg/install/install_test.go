package install_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
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

// mountPartition mounts partition 1 of a disk image (at 1 MiB) read-only through a loop device
// and returns the mount point; it is unmounted when the test ends.
func mountPartition(t *testing.T, disk string) string {
	t.Helper()
	mnt := t.TempDir()
	testutil.Run(t, "mount", "-o", "ro,loop,offset=1048576", disk, mnt)
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
	if pt.Label != "gpt" || len(pt.Partitions) != 1 {
		t.Fatalf("partition table: %+v", pt)
	}
	p := pt.Partitions[0]
	end := (p.Start + p.Size) * 512
	if p.Start != 2048 || p.Name != "root" || p.Type != install.RootPartitionType() || end > size-33*512 || end < size-(1<<20)-33*512 || end%(1<<20) != 0 || p.Size*512 != res.PartitionSize {
		t.Errorf("root partition %+v on a disk of %d bytes; result %+v", p, size, res)
	}
	// sfdisk --verify reads both GPT copies: the filesystem must not overwrite the backup.
	if out, err := exec.Command("sfdisk", "--verify", disk).CombinedOutput(); err != nil || strings.Contains(string(out), "corrupt") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}

	mnt := mountPartition(t, disk)
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
	if !regexp.MustCompile(`(?m)^options root=UUID=` + regexp.QuoteMeta(res.UUID) + ` rw console=ttyS0 ostree=/ostree/boot\.1/default/[0-9a-f]{64}/0$`).Match(entry) {
		t.Errorf("boot entry does not name the filesystem UUID %s first:\n%s", res.UUID, entry)
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
}

func archiveImage(t *testing.T) host.Install {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "os.ociarchive")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), "oci-archive:"+archive)
	ref, err := host.ParseImage("oci-archive:"+archive, imgref.Parse, false)
	must(t, err)
	return host.Install{Source: ref, Kargs: []string{"console=ttyS0"}}
}

// TestToDisk installs onto disk image files both ways (filesystem filled from a staging
// directory; ext4 and xfs made on a loop device and mounted) and onto a block device, and
// checks each with sfdisk, a read-only mount, `ostree admin status`, `ostree fsck` and Status.
func TestToDisk(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "sfdisk", "mkfs.ext4", "mkfs.xfs", "losetup", "mount", "findmnt")
	in := archiveImage(t)
	for _, tc := range []struct {
		name string
		fs   string
		opts []install.Option
	}{
		{"ext4-from-directory", "ext4", nil},
		{"xfs-via-loopback", "xfs", []install.Option{install.ViaLoopback(), install.WithFilesystem("xfs")}},
		{"ext4-via-loopback", "ext4", []install.Option{install.ViaLoopback()}},
		{"block-device", "ext4", nil},
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
			var installed, partitioned bool
			for _, e := range events {
				switch e := e.(type) {
				case install.Installed:
					installed = e.Result == res.Install
				case install.Partitioning:
					partitioned = e.Path == target && e.PartitionSize == res.PartitionSize
				}
			}
			if !installed || !partitioned {
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

// TestToDiskRefusals: wrong targets are ErrInvalidTarget and bad images the pull's error; both
// leave the target as it was, and a file the call created is removed again.
func TestToDiskRefusals(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "sfdisk", "mkfs.ext4")
	in := archiveImage(t)
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
	for _, tc := range []struct {
		name   string
		in     host.Install
		target string
		opts   []install.Option
		is     error
	}{
		{"holds-data", in, used, nil, install.ErrInvalidTarget},
		{"directory", in, dir, nil, install.ErrInvalidTarget},
		{"xfs-needs-loopback", in, x, []install.Option{install.WithFilesystem("xfs")}, install.ErrInvalidTarget},
		{"bad-filesystem", in, x, []install.Option{install.WithFilesystem("btrfs")}, install.ErrInvalidTarget},
		{"too-small", in, x, []install.Option{install.WithSize(100 << 20)}, install.ErrInvalidTarget},
		{"shrink", in, used, []install.Option{install.Wipe(), install.WithSize(512 << 20)}, install.ErrInvalidTarget},
		{"bad-image-new-file", bad, x, nil, nil},
		{"bad-image-wiped-file", bad, used, []install.Option{install.Wipe()}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := install.ToDisk(t.Context(), tc.target, tc.in, tc.opts...)
			switch {
			case err == nil:
				t.Fatal("no error")
			case tc.is != nil && !errors.Is(err, tc.is):
				t.Errorf("%v, want %v", err, tc.is)
			case tc.is == nil && (errors.Is(err, install.ErrInvalidTarget) || !strings.Contains(err.Error(), badArchive)):
				t.Errorf("%v, want the pull's error naming %s", err, badArchive)
			}
			if _, err := os.Stat(x); err == nil {
				t.Error("a refused install left x.img behind")
			}
		})
	}
	// Even with Wipe, a refused image leaves the target as it was: the image is pulled and
	// deployed in a staging directory before the disk is written.
	if fileSum(t, used) != before {
		t.Error("a refused install changed the target")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".bootc-install-*")); len(left) != 0 {
		t.Errorf("staging left behind: %v", left)
	}
	// With Wipe the install goes through, and the file keeps its size.
	res, err := install.ToDisk(t.Context(), used, in, install.Wipe())
	must(t, err)
	if out := testutil.Run(t, "sfdisk", "--dump", used); !strings.Contains(out, "name=\"root\"") {
		t.Errorf("after Wipe:\n%s", out)
	}
	if st, _ := os.Stat(used); st.Size() != 600<<20 || res.PartitionSize != 598<<20 {
		t.Errorf("size changed to %d; partition %d", st.Size(), res.PartitionSize)
	}
}
