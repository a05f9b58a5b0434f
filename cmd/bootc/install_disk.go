package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/google/uuid"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/fsflags"
)

// The disk layout `install to-disk` writes: a GPT with one partition, the root filesystem,
// from 1 MiB to the last MiB boundary before the backup GPT. /boot is a directory on the
// root filesystem; the boot entries under /boot/loader name the kernel, initramfs and
// options (root=UUID=… rw ostree=…), so a bootloader that reads Boot Loader Specification
// entries, or a direct kernel boot with the default entry's values, starts the system.
const (
	sectorSize    = 512
	partAlign     = 1 << 20 // first partition and sizes on 1 MiB boundaries
	gptTailBytes  = 33 * sectorSize
	minDiskBytes  = 512 << 20
	defaultDiskSz = "10G"
)

// rootPartitionType is the Discoverable Partitions Specification type of the root partition
// for the running architecture (systemd-gpt-auto-generator finds it without root=).
func rootPartitionType() string {
	switch runtime.GOARCH {
	case "amd64":
		return "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"
	case "arm64":
		return "B921B045-1DF0-41C3-AF44-4C6F280D3FAE"
	case "ppc64le":
		return "C31C45E6-3F39-412E-80FB-4809C4980599"
	case "s390x":
		return "5EEAD9A9-FE09-4A1E-A1D7-520D00531306"
	default:
		return "0FC63DAF-8483-4772-8E79-3D69D8477DE4" // Linux filesystem data
	}
}

func installToDiskCommand() *cli.Command {
	return &cli.Command{
		Name:      "to-disk",
		Usage:     "partition a disk (or disk image file), make the root filesystem and install into it",
		ArgsUsage: "DEVICE|FILE",
		Description: `Writes a GPT partition table with one root partition, creates the root
filesystem (ext4 or xfs) with a new UUID, installs the image into it as
'install to-filesystem' does and writes the boot entries, whose options start with
root=UUID=<uuid> rw. /boot is a directory of the root filesystem.

The target is a block device, or a disk image FILE (created sparse with --size when
it does not exist). A target that holds data is refused unless --wipe is given.

Two ways to build the filesystem:
  default        (FILE only) install into a staging directory next to FILE, then write
                 the filesystem into the partition with 'mkfs.ext4 -d'; needs no loop
                 devices or mounts, and leaves FILE untouched when the image is refused;
  --via-loopback attach the partition with a loop device, make the filesystem, mount it
                 and install into it (block devices always go this way; needed for xfs).

The disk has no bootloader of its own: boot it with a bootloader that reads the Boot
Loader Specification entries in /boot/loader/entries, or by direct kernel boot with the
default entry's linux, initrd and options lines (the command prints them).

Examples:
   bootc install to-disk --source-imgref oci-archive:os.ociarchive --karg console=ttyS0 disk.img
   bootc install to-disk --source-imgref docker://registry.example/os:stable --size 20G disk.raw
   bootc install to-disk --via-loopback --filesystem xfs --wipe \
       --source-imgref oci:./os-layout:v1 /dev/sdb`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "source-imgref", Required: true, Usage: "the image to install (docker://, oci:, oci-archive:, containers-storage:, or ostree-…:)"},
			&cli.StringFlag{Name: "target-imgref", Usage: "the image the installed host follows (default: the source)"},
			&cli.StringFlag{Name: "stateroot", Value: "default", Usage: "the stateroot (ostree \"os\") to deploy into"},
			&cli.StringSliceFlag{Name: "karg", Usage: "a kernel argument for the boot entry, after root=UUID=… rw (repeatable)"},
			&cli.StringFlag{Name: "filesystem", Value: "ext4", Usage: "the root filesystem: ext4 or xfs (xfs needs --via-loopback)"},
			&cli.BoolFlag{Name: "via-loopback", Usage: "make the filesystem on a loop device and install into it mounted"},
			&cli.StringFlag{Name: "size", Usage: "size of a disk image FILE to create or grow, such as 8G or 10240M (default " + defaultDiskSz + " for a new file)"},
			&cli.BoolFlag{Name: "wipe", Usage: "erase a target that holds a partition table or data"},
			enforceFlag(),
		},
		Action: runInstallToDisk,
	}
}

// diskTarget is the disk install to-disk writes.
type diskTarget struct {
	path    string
	block   bool
	size    int64
	create  bool // a FILE to create (sparse, of size)
	grow    bool // a FILE to grow to size
	created bool // a FILE this run created: removed again if the install fails
}

// prepare creates or grows a disk image file, once every check has passed.
func (d *diskTarget) prepare() error {
	switch {
	case d.create:
		f, err := os.OpenFile(d.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("creating the disk image: %w", err)
		}
		d.created = true
		if err := f.Truncate(d.size); err != nil {
			f.Close()
			return fmt.Errorf("sizing the disk image %s: %w", d.path, err)
		}
		return f.Close()
	case d.grow:
		if err := os.Truncate(d.path, d.size); err != nil {
			return fmt.Errorf("growing %s to %s: %w", d.path, humanBytes(d.size), err)
		}
	}
	return nil
}

func runInstallToDisk(c *cli.Context) (err error) {
	if c.NArg() != 1 {
		return usageError(c, "expected the DEVICE or FILE as the one argument, got %d arguments", c.NArg())
	}
	in, err := installArgs(c)
	if err != nil {
		return err
	}
	fsType := c.String("filesystem")
	if fsType != "ext4" && fsType != "xfs" {
		return usageError(c, "--filesystem %q: use ext4 or xfs", fsType)
	}
	disk, err := openDiskTarget(c, c.Args().First())
	if err != nil {
		return err
	}
	loopback := c.Bool("via-loopback") || disk.block
	if fsType == "xfs" && !loopback {
		return usageError(c, "--filesystem xfs: xfs cannot be filled from a directory; add --via-loopback (needs loop devices and mounts)")
	}
	tools := []string{"sfdisk", "mkfs." + fsType}
	if loopback {
		tools = append(tools, "losetup")
	}
	if err := requireTools(tools...); err != nil {
		return err
	}
	if err := checkEmpty(c, disk); err != nil {
		return err
	}
	defer func() {
		if err != nil && disk.created {
			os.Remove(disk.path)
		}
	}()

	part, err := partitionGeometry(disk.size)
	if err != nil {
		return err
	}
	uuid := uuid.NewString()
	kargs := append([]string{"root=UUID=" + uuid, "rw"}, c.StringSlice("karg")...)
	out := c.App.Writer

	if loopback {
		if err := disk.prepare(); err != nil {
			return err
		}
		if err := writePartitionTable(c, disk, part); err != nil {
			return err
		}
		if err := installViaLoopback(c, in, disk, part, fsType, uuid, kargs); err != nil {
			return err
		}
	} else {
		// Everything that can fail on a bad image happens before the target is created or
		// written, so a refused image leaves it as it was.
		stage, err := os.MkdirTemp(filepath.Dir(disk.path), ".bootc-install-")
		if err != nil {
			return fmt.Errorf("creating a staging directory next to %s: %w", disk.path, err)
		}
		defer fsflags.RemoveAll(stage)
		if err := os.Chmod(stage, 0o755); err != nil {
			return err
		}
		if _, err := in.installInto(c, stage, "the staging directory", kargs); err != nil {
			return err
		}
		if err := disk.prepare(); err != nil {
			return err
		}
		if err := writePartitionTable(c, disk, part); err != nil {
			return err
		}
		fmt.Fprintf(out, "Writing the %s filesystem (%s) into partition 1\n", fsType, humanBytes(part.size))
		if err := runTool(c, "mkfs.ext4", "-q", "-F", "-U", uuid, "-L", "root", "-d", stage,
			"-E", "offset="+strconv.FormatInt(part.offset, 10), disk.path, strconv.FormatInt(part.size/1024, 10)+"k"); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Installed to %s: GPT, partition 1 %s root filesystem UUID=%s, %s\n", disk.path, fsType, uuid, humanBytes(part.size))
	fmt.Fprintf(out, "Boot with the default entry in /boot/loader/entries (options: %s ostree=…)\n", strings.Join(kargs, " "))
	return nil
}

func openDiskTarget(c *cli.Context, path string) (*diskTarget, error) {
	d := &diskTarget{path: path}
	want := int64(0)
	if s := c.String("size"); s != "" {
		n, err := parseSize(s)
		if err != nil {
			return nil, usageError(c, "--size %q: %v", s, err)
		}
		want = n
	}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if want == 0 {
			want, _ = parseSize(defaultDiskSz)
		}
		if want < minDiskBytes {
			return nil, usageError(c, "--size %s is too small: a disk needs at least %s", humanBytes(want), humanBytes(minDiskBytes))
		}
		d.create, d.size = true, want
		return d, nil
	case err != nil:
		return nil, err
	case st.IsDir():
		return nil, usageError(c, "%s is a directory: use 'bootc install to-filesystem' for a mounted filesystem, or name a disk image file or block device", path)
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		if want != 0 {
			return nil, usageError(c, "--size is for disk image files; %s is a block device", path)
		}
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		n, err := f.Seek(0, io.SeekEnd) // a block device's size
		if err != nil {
			return nil, fmt.Errorf("reading the size of %s: %w", path, err)
		}
		d.block, d.size = true, n
	case st.Mode().IsRegular():
		d.size = st.Size()
		if want > d.size {
			d.grow, d.size = true, want
		} else if want != 0 && want < d.size {
			return nil, usageError(c, "--size %s is smaller than %s (%s): disk images are never shrunk", humanBytes(want), path, humanBytes(d.size))
		}
	default:
		return nil, usageError(c, "%s is neither a block device nor a regular file", path)
	}
	if d.size < minDiskBytes {
		return nil, usageError(c, "%s has %s: a disk needs at least %s (grow a file with --size)", path, humanBytes(d.size), humanBytes(minDiskBytes))
	}
	return d, nil
}

// checkEmpty refuses a target whose first or last MiB holds anything (a partition table, a
// filesystem, data) unless --wipe is given; wipe erases them later, just before the new
// partition table is written, so that a refused image leaves the target as it was.
func checkEmpty(c *cli.Context, d *diskTarget) error {
	if d.create {
		return nil
	}
	f, err := os.Open(d.path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := d.size
	if !d.block {
		size = st.Size() // before growing
	}
	buf := make([]byte, partAlign)
	zero := make([]byte, partAlign)
	for _, off := range []int64{0, max(0, size-partAlign)} {
		clear(buf)
		if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading %s: %w", d.path, err)
		}
		if !bytes.Equal(buf, zero) && !c.Bool("wipe") {
			return usageError(c, "%s holds data (a partition table, a filesystem or other bytes): add --wipe to erase it", d.path)
		}
	}
	return nil
}

// wipe zeroes the first and last MiB of the target (old partition tables and filesystem
// signatures).
func wipe(d *diskTarget) error {
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	zero := make([]byte, partAlign)
	for _, off := range []int64{0, d.size - partAlign} {
		if _, err := f.WriteAt(zero, off); err != nil {
			return fmt.Errorf("wiping %s: %w", d.path, err)
		}
	}
	return f.Sync()
}

// partition is where the root partition lies, in bytes.
type partition struct{ offset, size int64 }

func partitionGeometry(disk int64) (partition, error) {
	end := (disk - gptTailBytes) / partAlign * partAlign
	p := partition{offset: partAlign, size: end - partAlign}
	if p.size <= 0 {
		return p, fmt.Errorf("disk of %d bytes is too small", disk)
	}
	return p, nil
}

func writePartitionTable(c *cli.Context, d *diskTarget, p partition) error {
	fmt.Fprintf(c.App.Writer, "Partitioning %s (%s): GPT, root partition %s\n", d.path, humanBytes(d.size), humanBytes(p.size))
	if err := wipe(d); err != nil {
		return err
	}
	script := fmt.Sprintf("label: gpt\nfirst-lba: %d\nstart=%d, size=%d, type=%s, name=\"root\"\n",
		partAlign/sectorSize, p.offset/sectorSize, p.size/sectorSize, rootPartitionType())
	args := []string{"--quiet", "--wipe", "always"}
	if !d.block {
		args = append(args, "--no-reread", "--no-tell-kernel")
	}
	cmd := exec.CommandContext(c.Context, "sfdisk", append(args, d.path)...)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sfdisk %s: %w\n%s", d.path, err, bytes.TrimSpace(out))
	}
	return nil
}

func installViaLoopback(c *cli.Context, in *installSource, d *diskTarget, p partition, fsType, uuid string, kargs []string) (err error) {
	loop, err := toolOutput(c, "losetup", "--find", "--show", "--offset", strconv.FormatInt(p.offset, 10),
		"--sizelimit", strconv.FormatInt(p.size, 10), d.path)
	if err != nil {
		return fmt.Errorf("%w\nloop devices are needed for --via-loopback; without them, install into a FILE without --via-loopback", err)
	}
	defer func() {
		if derr := runTool(c, "losetup", "--detach", loop); derr != nil && err == nil {
			err = derr
		}
	}()
	fmt.Fprintf(c.App.Writer, "Creating the %s filesystem on %s\n", fsType, loop)
	switch fsType {
	case "ext4":
		err = runTool(c, "mkfs.ext4", "-q", "-F", "-U", uuid, "-L", "root", loop)
	case "xfs":
		err = runTool(c, "mkfs.xfs", "-q", "-f", "-m", "uuid="+uuid, "-L", "root", loop)
	}
	if err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "bootc-install-mnt-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(loop, mnt, fsType, 0, ""); err != nil {
		return fmt.Errorf("mounting %s (%s) on %s: %w", loop, fsType, mnt, err)
	}
	defer func() {
		if uerr := unix.Unmount(mnt, 0); uerr != nil && err == nil {
			err = fmt.Errorf("unmounting %s: %w", mnt, uerr)
		}
	}()
	if _, err := in.installInto(c, mnt, loop, kargs); err != nil {
		return err
	}
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// requireTools names the Debian package of each missing tool.
func requireTools(tools ...string) error {
	pkg := map[string]string{"sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs", "mkfs.xfs": "xfsprogs", "losetup": "mount"}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", t, pkg[t]))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("install to-disk needs %s: install them and retry", strings.Join(missing, ", "))
	}
	return nil
}

func runTool(c *cli.Context, name string, args ...string) error {
	_, err := toolOutput(c, name, args...)
	return err
}

func toolOutput(c *cli.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(c.Context, name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}

// parseSize reads 8G, 512M, 10240K, 8GiB or plain bytes (binary units).
func parseSize(s string) (int64, error) {
	v, err := units.RAMInBytes(strings.TrimSpace(s))
	if err != nil || v <= 0 {
		return 0, errors.New("expected a size such as 8G, 512M or a number of bytes")
	}
	return v, nil
}
