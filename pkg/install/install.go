// Package install installs a bootable container image onto a disk: it writes a GPT partition
// table, makes the root filesystem, deploys the image into it with package host
// (host.InstallToFilesystem), so that the disk holds a complete sysroot, and installs GRUB from
// the image so that the disk boots by itself, with legacy BIOS and with UEFI.
//
// # The disk layout
//
// A GPT, every partition on 1 MiB boundaries:
//
//  1. BIOS boot, 1 MiB from 1 MiB (type 21686148-6449-6E6F-744E-656564454649): GRUB's core.img,
//     which the boot code in the protective MBR loads.
//  2. EFI system, 64 MiB (type C12A7328-F81F-11D2-BA4B-00A0C93EC93B): FAT16, with GRUB as
//     EFI/BOOT/BOOTX64.EFI, the removable-media path firmware boots without an NVRAM entry (none
//     is written). 64 MiB holds GRUB (under 1 MiB) many times over, with room for a shim or
//     firmware update capsules later, at little cost on the smallest disk (MinDiskSize). FAT16
//     because FAT32 needs at least 65525 clusters (32 MiB even with 512-byte clusters; upstream
//     bootc's 512 MiB ESP is sized for FAT32 with 4 KiB clusters) and mtools failed on a
//     32 MiB FAT32 image; UEFI firmware reads FAT16 too (OVMF boots this disk).
//  3. root, from 66 MiB to the last MiB boundary before the backup GPT, of the Discoverable
//     Partitions Specification's root type for the architecture (RootPartitionType).
//
// /boot is a directory on the root filesystem. Both GRUB images come from the image being
// installed (its usr/lib/grub/i386-pc and x86_64-efi, Debian's grub-pc-bin and
// grub-efi-amd64-bin: an image without them is refused, before the target is written in the
// default mode), built by the host's grub-mkimage with an early configuration that finds the
// root filesystem by UUID and loads /boot/grub/grub.cfg, a link to the menu of the current boot
// version (boot/loader/grub.cfg). The modules of both platforms are copied to
// /boot/grub/<platform> so that the menu can load any of them. The repository config keeps
// sysroot.bootloader=none (as sysroot.Init writes it), so `ostree admin` never runs
// grub-mkconfig.
//
// With a bootloader a failed boot ends in a reboot, so that boot counting can fall back:
// the boot entries get panic=10 (a kernel panic reboots after 10 s) and dracut's rd.shell=0
// rd.emergency=reboot (no emergency shell; reboot instead), after root=UUID=… rw and before
// the caller's kernel arguments; one the caller sets (the same key, such as panic=) is left out.
//
// WithBootloader("none") writes the layout without a bootloader: one partition, the root
// filesystem, from 1 MiB; the boot entries under /boot/loader name the kernel, initramfs and
// options, for a bootloader that reads Boot Loader Specification entries or a direct kernel
// boot.
//
// # Two ways to build the filesystem
//
// By default (disk image files only) the image is installed into a staging directory next to
// the file, and the filesystem is written into the partition with `mkfs.ext4 -d`: no loop
// devices or mounts, and a refused image leaves the file untouched, since everything that can
// fail on a bad image happens before the target is created or written. With ViaLoopback (and
// always for block devices; needed for xfs) the partition is attached to a loop device, the
// filesystem made and mounted, and the image installed into it.
//
// External programs (sfdisk, mkfs.ext4, mkfs.xfs, losetup, grub-mkimage, mkfs.vfat, mmd, mcopy)
// run through one helper, with the command line logged and stderr in the error.
package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/google/uuid"
	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/fsflags"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/host"
)

const (
	sectorSize = 512
	partAlign  = 1 << 20 // first partition and sizes on 1 MiB boundaries
	gptTail    = 33 * sectorSize
	// MinDiskSize is the smallest disk ToDisk accepts.
	MinDiskSize = 512 << 20
	// DefaultSize is the size of a disk image file ToDisk creates when WithSize is not given.
	DefaultSize = 10 << 30

	biosBootSize = 1 << 20
	espSize      = 64 << 20
	// BIOSBootPartitionType and ESPPartitionType are the GPT types of partitions 1 and 2.
	BIOSBootPartitionType = "21686148-6449-6E6F-744E-656564454649"
	ESPPartitionType      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
)

// rebootKargs make a failed boot end in a reboot (see the package documentation).
var rebootKargs = []string{"panic=10", "rd.shell=0", "rd.emergency=reboot"}

// ErrInvalidTarget: the target or the options cannot work (a directory, too small, holds data
// without Wipe, a file to shrink, xfs without ViaLoopback, an unknown filesystem or
// bootloader). Nothing was written. Carried by a *TargetError.
var ErrInvalidTarget = errors.New("invalid install target")

// TargetError says what is wrong with the target.
type TargetError struct{ Reason string }

func (e *TargetError) Error() string        { return e.Reason }
func (e *TargetError) Is(target error) bool { return target == ErrInvalidTarget }

func invalid(format string, args ...any) error {
	return &TargetError{Reason: fmt.Sprintf(format, args...)}
}

// Event is a progress report: one of the types below.
type Event interface{ installEvent() }

// Partitioning: the partition table is being written (after wiping the first and last MiB).
type Partitioning struct {
	Path                    string
	DiskSize, PartitionSize int64
}

// MakingFilesystem: the filesystem is being made on the loop device of the partition.
type MakingFilesystem struct{ Filesystem, Device string }

// WritingFilesystem: the filesystem is being written into the partition (numbered from 1) from
// the staging directory.
type WritingFilesystem struct {
	Filesystem string
	Size       int64
	Partition  int
}

// InstallingBootloader: the bootloader is being written: GRUB's core.img into the BIOS boot
// partition and the MBR, the EFI system partition.
type InstallingBootloader struct{ Bootloader string }

// Installed: the image is deployed; Where names the staging directory or the loop device.
type Installed struct {
	Where  string
	Result *host.InstallResult
}

func (Partitioning) installEvent()      {}
func (MakingFilesystem) installEvent()  {}
func (WritingFilesystem) installEvent() {}
func (Installed) installEvent()         {}

func (InstallingBootloader) installEvent() {}

// Option configures ToDisk.
type Option func(*config)

type config struct {
	fs         string
	bootloader string
	loopback   bool
	size       int64
	wipe       bool
	hostOpts   []host.Option
	progress   func(Event)
	log        *slog.Logger
}

// WithFilesystem sets the root filesystem: "ext4" (the default) or "xfs" (needs ViaLoopback).
func WithFilesystem(fs string) Option { return func(c *config) { c.fs = fs } }

// WithBootloader sets the bootloader: "grub" (the default: GRUB for legacy BIOS and UEFI, from
// the image) or "none" (one root partition and no bootloader). See the package documentation.
func WithBootloader(name string) Option { return func(c *config) { c.bootloader = name } }

// ViaLoopback makes the filesystem on a loop device and installs into it mounted.
func ViaLoopback() Option { return func(c *config) { c.loopback = true } }

// WithSize is the size of a disk image file to create or grow (default DefaultSize for a new
// file; an existing one keeps its size). Files are never shrunk.
func WithSize(bytes int64) Option { return func(c *config) { c.size = bytes } }

// Wipe allows erasing a target that holds a partition table or data.
func Wipe() Option { return func(c *config) { c.wipe = true } }

// WithHostOptions passes options (logger, progress, trust policy, registries) to
// host.InstallToFilesystem.
func WithHostOptions(opts ...host.Option) Option {
	return func(c *config) { c.hostOpts = append(c.hostOpts, opts...) }
}

// WithProgress sets the callback for this package's Events (default: none).
func WithProgress(fn func(Event)) Option { return func(c *config) { c.progress = fn } }

// WithLogger sets the logger for debug logs, such as the commands run (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Result says what ToDisk made.
type Result struct {
	Path       string
	Filesystem string
	Bootloader string
	// UUID is the root filesystem's; PartitionSize the root partition's size in bytes and
	// RootPartition its number (from 1).
	UUID          string
	PartitionSize int64
	RootPartition int
	// Kargs are the kernel arguments of the boot entry before ostree=.
	Kargs   []string
	Install *host.InstallResult
}

// ToDisk partitions the block device or disk image file at path, makes the root filesystem,
// installs the image into it and installs the bootloader (see the package documentation). A
// file that does not exist is created (sparse); one this call created is removed again when it
// fails. A target whose first or last MiB holds anything is refused unless Wipe is given; it is
// wiped just before the partition table is written, so that a refused image (one that does not
// pull or deploy, or has no GRUB) leaves it as it was, except with ViaLoopback, where the image
// is installed into the partitioned target.
func ToDisk(ctx context.Context, path string, in host.Install, opts ...Option) (res *Result, err error) {
	c := &config{fs: "ext4", bootloader: "grub", progress: func(Event) {}, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(c)
	}
	if c.fs != "ext4" && c.fs != "xfs" {
		return nil, invalid("--filesystem %q: use ext4 or xfs", c.fs)
	}
	if c.bootloader != "grub" && c.bootloader != "none" {
		return nil, invalid("--bootloader %q: use grub (GRUB for BIOS and UEFI, from the image) or none", c.bootloader)
	}
	disk, err := openDisk(path, c.size)
	if err != nil {
		return nil, err
	}
	loopback := c.loopback || disk.block
	if c.fs == "xfs" && !loopback {
		return nil, invalid("--filesystem xfs: xfs cannot be filled from a directory; add --via-loopback (needs loop devices and mounts)")
	}
	tools := []string{"sfdisk", "mkfs." + c.fs}
	if loopback {
		tools = append(tools, "losetup")
	}
	if c.bootloader == "grub" {
		tools = append(tools, "grub-mkimage", "mkfs.vfat", "mmd", "mcopy")
	}
	if err := requireTools(tools...); err != nil {
		return nil, err
	}
	if err := disk.checkEmpty(c.wipe); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && disk.created {
			os.Remove(disk.path)
		}
	}()
	lay, err := geometry(disk.size, c.bootloader)
	if err != nil {
		return nil, err
	}
	res = &Result{Path: path, Filesystem: c.fs, Bootloader: c.bootloader, UUID: uuid.NewString(),
		PartitionSize: lay.root.size, RootPartition: lay.rootNumber}
	res.Kargs = []string{"root=UUID=" + res.UUID, "rw"}
	if c.bootloader == "grub" {
		res.Kargs = append(res.Kargs, defaultKargs(rebootKargs, in.Kargs)...)
	}
	res.Kargs = append(res.Kargs, in.Kargs...)
	in.Kargs = res.Kargs
	var boot *bootFiles
	if c.bootloader == "grub" {
		work, err := os.MkdirTemp("", "bootc-grub-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(work)
		boot = &bootFiles{work: work}
	}
	install := func(root, where string) error {
		if boot != nil {
			// Before the deployments are written: the sysroot writer makes the menu only for
			// a /boot that boots with GRUB.
			if err := grub.Setup(filepath.Join(root, "boot")); err != nil {
				return fmt.Errorf("preparing /boot for GRUB: %w", err)
			}
		}
		r, err := host.InstallToFilesystem(ctx, root, in, c.hostOpts...)
		if err != nil {
			return err
		}
		res.Install = r
		c.progress(Installed{Where: where, Result: r})
		if boot != nil {
			return c.prepareGRUB(ctx, boot, root, r, res.UUID, lay)
		}
		return nil
	}
	if loopback {
		if err := disk.prepare(); err != nil {
			return nil, err
		}
		if err := c.partition(ctx, disk, lay); err != nil {
			return nil, err
		}
		if err := c.viaLoopback(ctx, disk, lay.root, res.UUID, install); err != nil {
			return nil, err
		}
		return res, c.writeBootloader(disk, lay, boot)
	}
	stage, err := os.MkdirTemp(filepath.Dir(disk.path), ".bootc-install-")
	if err != nil {
		return nil, fmt.Errorf("creating a staging directory next to %s: %w", disk.path, err)
	}
	defer fsflags.RemoveAll(stage)
	if err := os.Chmod(stage, 0o755); err != nil {
		return nil, err
	}
	if err := install(stage, "the staging directory"); err != nil {
		return nil, err
	}
	if err := disk.prepare(); err != nil {
		return nil, err
	}
	if err := c.partition(ctx, disk, lay); err != nil {
		return nil, err
	}
	c.progress(WritingFilesystem{Filesystem: c.fs, Size: lay.root.size, Partition: lay.rootNumber})
	if _, err = c.run(ctx, "mkfs.ext4", "-q", "-F", "-U", res.UUID, "-L", "root", "-d", stage,
		"-E", "offset="+strconv.FormatInt(lay.root.offset, 10), disk.path, strconv.FormatInt(lay.root.size/1024, 10)+"k"); err != nil {
		return nil, err
	}
	return res, c.writeBootloader(disk, lay, boot)
}

// defaultKargs returns the arguments of defaults whose key (the part before '=') the caller's
// arguments do not set.
func defaultKargs(defaults, caller []string) []string {
	var out []string
	for _, d := range defaults {
		key, _, _ := strings.Cut(d, "=")
		if !slices.ContainsFunc(caller, func(a string) bool { k, _, _ := strings.Cut(a, "="); return k == key }) {
			out = append(out, d)
		}
	}
	return out
}

// bootFiles are GRUB's images and the EFI system partition, made in work before the target is
// written.
type bootFiles struct {
	work   string
	images *grub.Images
	esp    string
}

// prepareGRUB takes GRUB from the deployment just installed in root: it refuses an image
// without GRUB's platform directories, copies their modules to root's /boot/grub and makes the
// boot images and the EFI system partition (as a file) in b.work.
func (c *config) prepareGRUB(ctx context.Context, b *bootFiles, root string, r *host.InstallResult, fsUUID string, lay layout) error {
	tree := filepath.Join(root, r.Deployed.Deployment.Dir())
	if err := grub.CheckTree(tree); err != nil {
		return fmt.Errorf("the image has no GRUB to boot the disk with (%w): install grub-pc-bin and grub-efi-amd64-bin in the image (not grub-pc or grub-efi-amd64, whose scripts install GRUB onto the machine building it), or use --bootloader none", err)
	}
	lib := filepath.Join(tree, grub.LibDir)
	if err := grub.CopyModules(lib, filepath.Join(root, "boot", "grub")); err != nil {
		return fmt.Errorf("copying GRUB's modules: %w", err)
	}
	var err error
	if b.images, err = grub.MakeImages(ctx, c.run, lib, fsUUID, b.work); err != nil {
		return fmt.Errorf("making GRUB's images from the image's %s: %w", grub.LibDir, err)
	}
	if int64(len(b.images.Core)) > lay.bios.size {
		return fmt.Errorf("GRUB's core.img (%d bytes) does not fit the BIOS boot partition (%d bytes)", len(b.images.Core), lay.bios.size)
	}
	b.esp = filepath.Join(b.work, "esp.img")
	if err := grub.MakeESP(ctx, c.run, b.esp, lay.esp.size, b.images); err != nil {
		return fmt.Errorf("making the EFI system partition: %w", err)
	}
	return nil
}

// writeBootloader writes the EFI system partition and the BIOS boot code (nothing for b nil),
// once the partition table is written.
func (c *config) writeBootloader(d *disk, lay layout, b *bootFiles) error {
	if b == nil {
		return nil
	}
	c.progress(InstallingBootloader{Bootloader: "grub"})
	f, err := os.OpenFile(d.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	esp, err := os.Open(b.esp)
	if err != nil {
		return err
	}
	defer esp.Close()
	if n, err := io.Copy(io.NewOffsetWriter(f, lay.esp.offset), io.LimitReader(esp, lay.esp.size+1)); err != nil {
		return fmt.Errorf("writing the EFI system partition: %w", err)
	} else if n != lay.esp.size {
		return fmt.Errorf("the EFI system partition image has %d bytes, not %d", n, lay.esp.size)
	}
	if err := grub.PlaceBIOS(f, b.images, lay.bios.offset, lay.bios.size); err != nil {
		return fmt.Errorf("installing GRUB for BIOS: %w", err)
	}
	return f.Sync()
}

// RootPartitionType is the Discoverable Partitions Specification type of the root partition
// for the running architecture (systemd-gpt-auto-generator finds it without root=).
func RootPartitionType() string {
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

// disk is the disk ToDisk writes.
type disk struct {
	path    string
	block   bool
	size    int64
	create  bool // a FILE to create (sparse, of size)
	grow    bool // a FILE to grow to size
	created bool // a FILE this run created: removed again if the install fails
}

func openDisk(path string, want int64) (*disk, error) {
	d := &disk{path: path}
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if want == 0 {
			want = DefaultSize
		}
		if want < MinDiskSize {
			return nil, invalid("--size %s is too small: a disk needs at least %s", humanBytes(want), humanBytes(MinDiskSize))
		}
		d.create, d.size = true, want
		return d, nil
	case err != nil:
		return nil, err
	case st.IsDir():
		return nil, invalid("%s is a directory: use 'bootc install to-filesystem' for a mounted filesystem, or name a disk image file or block device", path)
	case st.Mode()&os.ModeDevice != 0 && st.Mode()&os.ModeCharDevice == 0:
		if want != 0 {
			return nil, invalid("--size is for disk image files; %s is a block device", path)
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
			return nil, invalid("--size %s is smaller than %s (%s): disk images are never shrunk", humanBytes(want), path, humanBytes(d.size))
		}
	default:
		return nil, invalid("%s is neither a block device nor a regular file", path)
	}
	if d.size < MinDiskSize {
		return nil, invalid("%s has %s: a disk needs at least %s (grow a file with --size)", path, humanBytes(d.size), humanBytes(MinDiskSize))
	}
	return d, nil
}

// prepare creates or grows a disk image file, once every check has passed.
func (d *disk) prepare() error {
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

// checkEmpty refuses a target whose first or last MiB holds anything (a partition table, a
// filesystem, data) unless wipe; wipe erases them later, just before the new partition table
// is written, so that a refused image leaves the target as it was.
func (d *disk) checkEmpty(wipe bool) error {
	if d.create || wipe {
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
		if !bytes.Equal(buf, zero) {
			return invalid("%s holds data (a partition table, a filesystem or other bytes): add --wipe to erase it", d.path)
		}
	}
	return nil
}

// wipe zeroes the first and last MiB of the target (old partition tables and filesystem
// signatures).
func (d *disk) wipe() error {
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

// partition is where a partition lies, in bytes.
type partition struct{ offset, size int64 }

// layout is the partitions of a disk: the root partition, and with a bootloader the BIOS boot
// and EFI system partitions before it (zero without).
type layout struct {
	bios, esp, root partition
	rootNumber      int
}

func geometry(disk int64, bootloader string) (layout, error) {
	end := (disk - gptTail) / partAlign * partAlign
	l := layout{root: partition{offset: partAlign}, rootNumber: 1}
	if bootloader != "none" {
		l.bios = partition{offset: partAlign, size: biosBootSize}
		l.esp = partition{offset: l.bios.offset + l.bios.size, size: espSize}
		l.root.offset, l.rootNumber = l.esp.offset+l.esp.size, 3
	}
	l.root.size = end - l.root.offset
	if l.root.size < partAlign {
		return l, invalid("a disk of %s is too small: a disk needs at least %s", humanBytes(disk), humanBytes(MinDiskSize))
	}
	return l, nil
}

// script is the layout as sfdisk input.
func (l layout) script() string {
	var b strings.Builder
	fmt.Fprintf(&b, "label: gpt\nfirst-lba: %d\n", partAlign/sectorSize)
	part := func(p partition, typ, name string) {
		fmt.Fprintf(&b, "start=%d, size=%d, type=%s, name=\"%s\"\n", p.offset/sectorSize, p.size/sectorSize, typ, name)
	}
	if l.bios.size > 0 {
		part(l.bios, BIOSBootPartitionType, "BIOS-BOOT")
		part(l.esp, ESPPartitionType, "EFI-SYSTEM")
	}
	part(l.root, RootPartitionType(), "root")
	return b.String()
}

func (c *config) partition(ctx context.Context, d *disk, l layout) error {
	c.progress(Partitioning{Path: d.path, DiskSize: d.size, PartitionSize: l.root.size})
	if err := d.wipe(); err != nil {
		return err
	}
	script := l.script()
	args := []string{"--quiet", "--wipe", "always"}
	if !d.block {
		args = append(args, "--no-reread", "--no-tell-kernel")
	}
	_, err := c.runInput(ctx, strings.NewReader(script), "sfdisk", append(args, d.path)...)
	return err
}

func (c *config) viaLoopback(ctx context.Context, d *disk, p partition, fsUUID string, install func(root, where string) error) (err error) {
	loop, err := c.run(ctx, "losetup", "--find", "--show", "--offset", strconv.FormatInt(p.offset, 10),
		"--sizelimit", strconv.FormatInt(p.size, 10), d.path)
	if err != nil {
		return fmt.Errorf("%w\nloop devices are needed for --via-loopback; without them, install into a FILE without --via-loopback", err)
	}
	defer func() {
		if _, derr := c.run(context.WithoutCancel(ctx), "losetup", "--detach", loop); derr != nil && err == nil {
			err = derr
		}
	}()
	c.progress(MakingFilesystem{Filesystem: c.fs, Device: loop})
	switch c.fs {
	case "ext4":
		_, err = c.run(ctx, "mkfs.ext4", "-q", "-F", "-U", fsUUID, "-L", "root", loop)
	case "xfs":
		_, err = c.run(ctx, "mkfs.xfs", "-q", "-f", "-m", "uuid="+fsUUID, "-L", "root", loop)
	}
	if err != nil {
		return err
	}
	mnt, err := os.MkdirTemp("", "bootc-install-mnt-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := unix.Mount(loop, mnt, c.fs, 0, ""); err != nil {
		return fmt.Errorf("mounting %s (%s) on %s: %w", loop, c.fs, mnt, err)
	}
	defer func() {
		if uerr := unix.Unmount(mnt, 0); uerr != nil && err == nil {
			err = fmt.Errorf("unmounting %s: %w", mnt, uerr)
		}
	}()
	if err := install(mnt, loop); err != nil {
		return err
	}
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// MissingToolsError names the programs ToDisk needs and did not find, with their Debian
// packages.
type MissingToolsError struct{ Tools []string }

func (e *MissingToolsError) Error() string {
	return fmt.Sprintf("install to-disk needs %s: install them and retry", strings.Join(e.Tools, ", "))
}

func requireTools(tools ...string) error {
	pkg := map[string]string{"sfdisk": "fdisk", "mkfs.ext4": "e2fsprogs", "mkfs.xfs": "xfsprogs", "losetup": "mount",
		"grub-mkimage": "grub-common", "mkfs.vfat": "dosfstools", "mmd": "mtools", "mcopy": "mtools"}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, fmt.Sprintf("%s (package %s)", t, pkg[t]))
		}
	}
	if len(missing) > 0 {
		return &MissingToolsError{Tools: missing}
	}
	return nil
}

// execCommand makes the commands ToDisk runs; tests may replace it.
var execCommand = exec.CommandContext

func (c *config) run(ctx context.Context, name string, args ...string) (string, error) {
	return c.runInput(ctx, nil, name, args...)
}

// runInput runs a program with stdin, logging the command line; the error carries its stderr.
func (c *config) runInput(ctx context.Context, stdin io.Reader, name string, args ...string) (string, error) {
	c.log.Debug("running", "cmd", name, "args", args)
	cmd := execCommand(ctx, name, args...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return strings.TrimSpace(string(out)), nil
}

func humanBytes(n int64) string { return units.BytesSize(float64(n)) }
