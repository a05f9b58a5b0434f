package grub

// This file makes GRUB's boot images from the platform directories of an image (its
// usr/lib/grub/i386-pc and usr/lib/grub/x86_64-efi), and places them on a disk: core.img in the
// BIOS boot partition with boot.img in the MBR for legacy BIOS, BOOTX64.EFI on a FAT16 EFI
// system partition for UEFI. Both load the same menu, /boot/grub/grub.cfg on the root
// filesystem, found by its UUID.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// The two platforms a disk boots with, as GRUB names its directories.
const (
	PlatformBIOS = "i386-pc"
	PlatformEFI  = "x86_64-efi"
)

// LibDir is where an image keeps GRUB's platform directories (Debian's grub-pc-bin and
// grub-efi-amd64-bin install them there).
const LibDir = "usr/lib/grub"

// Modules built into the images: what the early configuration and the menu need before
// anything can be loaded from the root filesystem. Every other module is loaded on demand
// from /boot/grub/<platform> (CopyModules), so `insmod` of anything works.
var (
	BIOSModules = []string{"biosdisk", "part_gpt", "ext2", "xfs", "search", "search_fs_uuid", "normal",
		"configfile", "linux", "echo", "test", "loadenv", "regexp", "serial", "terminal", "sleep"}
	EFIModules = []string{"part_gpt", "ext2", "xfs", "fat", "search", "search_fs_uuid", "normal",
		"configfile", "linux", "echo", "test", "loadenv", "regexp", "serial", "terminal", "sleep",
		"efi_gop", "all_video"}
)

// required are the files of each platform directory grub-mkimage reads besides the modules.
var required = map[string][]string{
	PlatformBIOS: {"kernel.img", "moddep.lst", "boot.img", "diskboot.img", "lzma_decompress.img"},
	PlatformEFI:  {"kernel.img", "moddep.lst"},
}

// ErrNoGRUB: a tree lacks GRUB's platform files. Carried by a *MissingError.
var ErrNoGRUB = errors.New("no GRUB binaries")

// MissingError names the files a tree lacks, relative to the tree.
type MissingError struct{ Missing []string }

func (e *MissingError) Error() string {
	return "missing " + strings.Join(e.Missing, ", ")
}
func (e *MissingError) Is(target error) bool { return target == ErrNoGRUB }

// CheckTree checks that the tree (a deployment's root) holds both platform directories under
// LibDir with the files grub-mkimage needs besides the modules (a *MissingError otherwise).
func CheckTree(tree string) error {
	var missing []string
	for _, p := range []string{PlatformBIOS, PlatformEFI} {
		for _, f := range required[p] {
			rel := filepath.Join(LibDir, p, f)
			if st, err := os.Stat(filepath.Join(tree, rel)); err != nil || !st.Mode().IsRegular() {
				missing = append(missing, rel)
			}
		}
	}
	if len(missing) > 0 {
		return &MissingError{Missing: missing}
	}
	return nil
}

// EarlyConfig is the configuration built into both images: find the root filesystem by its
// UUID and load the menu from its /boot/grub (the normal module reads $prefix/grub.cfg).
func EarlyConfig(rootUUID string) string {
	return "search --no-floppy --fs-uuid --set=root " + rootUUID + "\nset prefix=($root)/boot/grub\n"
}

// Runner runs an external program; the error carries its stderr. The caller's helper, which
// logs the command line.
type Runner func(ctx context.Context, name string, args ...string) (string, error)

// Images are the boot images for one root filesystem, made by MakeImages.
type Images struct {
	// Boot is the i386-pc boot.img (one sector, the MBR code); Core the i386-pc core.img, with
	// the early configuration and BIOSModules.
	Boot, Core []byte
	// EFI is the path of the x86_64-efi image, with the early configuration and EFIModules.
	EFI string
}

// The limits on core.img (grub's util/setup.c): diskboot.img loads it below 0x78000 from
// 0x9000 (GRUB_KERNEL_I386_PC_LINK_ADDR), and a block list counts sectors in 16 bits.
const (
	sectorSize     = 512
	maxCoreSectors = (0x78000 - 0x9000) / sectorSize
)

// MakeImages runs the host's grub-mkimage on the platform directories under libDir (the
// deployment's usr/lib/grub), so that the images match the modules of the image being
// installed, with EarlyConfig(rootUUID) built in. It writes into the directory work (which
// must exist): early.cfg, core.img and BOOTX64.EFI. A core.img that diskboot.img cannot load is
// refused.
func MakeImages(ctx context.Context, run Runner, libDir, rootUUID, work string) (*Images, error) {
	early := filepath.Join(work, "early.cfg")
	if err := os.WriteFile(early, []byte(EarlyConfig(rootUUID)), 0o644); err != nil {
		return nil, err
	}
	mkimage := func(platform, out string, modules []string) error {
		args := []string{"-O", platform, "-d", filepath.Join(libDir, platform), "-c", early, "-p", "/boot/grub", "-o", out}
		_, err := run(ctx, "grub-mkimage", append(args, modules...)...)
		return err
	}
	im := &Images{EFI: filepath.Join(work, "BOOTX64.EFI")}
	core := filepath.Join(work, "core.img")
	if err := mkimage(PlatformBIOS, core, BIOSModules); err != nil {
		return nil, err
	}
	if err := mkimage(PlatformEFI, im.EFI, EFIModules); err != nil {
		return nil, err
	}
	var err error
	if im.Boot, err = os.ReadFile(filepath.Join(libDir, PlatformBIOS, "boot.img")); err != nil {
		return nil, err
	}
	if im.Core, err = os.ReadFile(core); err != nil {
		return nil, err
	}
	if err := checkBIOSImages(im.Boot, im.Core, maxCoreSectors*sectorSize); err != nil {
		return nil, err
	}
	return im, nil
}

// The places in boot.img and core.img that the BIOS install sets (grub's
// include/grub/i386/pc/boot.h and util/setup.c).
const (
	bpbStart       = 0x03  // GRUB_BOOT_MACHINE_BPB_START: the disk's bytes are kept from here
	bpbEnd         = 0x5a  // GRUB_BOOT_MACHINE_BPB_END
	kernelSector   = 0x5c  // GRUB_BOOT_MACHINE_KERNEL_SECTOR: u64 LE, core.img's first sector
	bootDrive      = 0x64  // GRUB_BOOT_MACHINE_BOOT_DRIVE: 0xff, the drive booted from
	driveCheck     = 0x66  // GRUB_BOOT_MACHINE_DRIVE_CHECK: a jmp made two nops for hard disks
	mbrCodeEnd     = 0x1b8 // GRUB_BOOT_MACHINE_WINDOWS_NT_MAGIC: disk signature and partitions follow
	blocklistSize  = 12    // struct grub_boot_blocklist: u64 start, u16 len, u16 segment
	firstBlocklist = sectorSize - blocklistSize
	// The segment the second sector of core.img is loaded to:
	// GRUB_BOOT_I386_PC_KERNEL_SEG + (GRUB_DISK_SECTOR_SIZE >> 4).
	coreSegment = 0x800 + sectorSize>>4
)

func checkBIOSImages(boot, core []byte, limit int) error {
	if len(boot) != sectorSize || binary.LittleEndian.Uint16(boot[0x1fe:]) != 0xaa55 {
		return fmt.Errorf("%s/boot.img is not a boot sector (%d bytes)", PlatformBIOS, len(boot))
	}
	if len(core) < 2*sectorSize {
		return fmt.Errorf("core.img has only %d bytes", len(core))
	}
	if len(core) > limit {
		return fmt.Errorf("core.img has %d bytes; GRUB's BIOS boot loads at most %d: build into it fewer modules", len(core), limit)
	}
	return nil
}

// Disk is what PlaceBIOS writes to: a disk image file or block device.
type Disk interface {
	io.ReaderAt
	io.WriterAt
}

// PlaceBIOS installs the BIOS boot code on a GPT disk, as grub-bios-setup does for a disk with
// a BIOS boot partition (it refuses files): core.img goes to the start of the BIOS boot
// partition (at byte partStart, partSize bytes), with the block list in its first sector set
// to the rest of it ({start+1, sectors-1, segment 0x820}, then a terminator); then the MBR code
// area (up to 0x1b8) is taken from boot.img, keeping the disk's bytes 0x03-0x59 (the BPB area
// grub-bios-setup keeps) and the protective partition table, with core.img's first sector
// (u64 LE) at 0x5c, 0xff (the boot drive) at 0x64 and two nops at 0x66 (no floppy check).
// core.img is written without Reed-Solomon codes: they repair an embedding area that other
// software overwrote, which a partition of its own does not need. A core.img larger than the
// partition or than GRUB loads is refused before anything is written. The caller syncs.
func PlaceBIOS(disk Disk, im *Images, partStart, partSize int64) error {
	if partStart%sectorSize != 0 || partSize%sectorSize != 0 {
		return fmt.Errorf("BIOS boot partition at %d (%d bytes) is not sector-aligned", partStart, partSize)
	}
	if err := checkBIOSImages(im.Boot, im.Core, int(min(partSize, maxCoreSectors*sectorSize))); err != nil {
		return err
	}
	lba := uint64(partStart / sectorSize)
	sectors := (len(im.Core) + sectorSize - 1) / sectorSize
	core := make([]byte, sectors*sectorSize) // padded with zeros to whole sectors
	copy(core, im.Core)
	// The block lists run downwards from the end of the first sector; clear the ones
	// grub-mkimage set (it assumes core.img at sector 1), then describe the partition.
	for off := firstBlocklist; off > 0 && binary.LittleEndian.Uint16(core[off+8:]) != 0; off -= blocklistSize {
		clear(core[off : off+blocklistSize])
	}
	if sectors > 1 {
		binary.LittleEndian.PutUint64(core[firstBlocklist:], lba+1)
		binary.LittleEndian.PutUint16(core[firstBlocklist+8:], uint16(sectors-1))
		binary.LittleEndian.PutUint16(core[firstBlocklist+10:], coreSegment)
	}
	clear(core[firstBlocklist-blocklistSize : firstBlocklist]) // the terminator

	mbr := make([]byte, sectorSize)
	if _, err := disk.ReadAt(mbr, 0); err != nil {
		return fmt.Errorf("reading the MBR: %w", err)
	}
	if binary.LittleEndian.Uint16(mbr[0x1fe:]) != 0xaa55 || mbr[0x1c2] != 0xee {
		return errors.New("the disk has no protective MBR: write the GPT first")
	}
	copy(mbr[:bpbStart], im.Boot[:bpbStart])
	copy(mbr[bpbEnd:mbrCodeEnd], im.Boot[bpbEnd:mbrCodeEnd])
	binary.LittleEndian.PutUint64(mbr[kernelSector:], lba)
	mbr[bootDrive] = 0xff
	mbr[driveCheck], mbr[driveCheck+1] = 0x90, 0x90

	// core.img first: the MBR points at it only once it is there.
	if _, err := disk.WriteAt(core, partStart); err != nil {
		return fmt.Errorf("writing core.img into the BIOS boot partition: %w", err)
	}
	if _, err := disk.WriteAt(mbr, 0); err != nil {
		return fmt.Errorf("writing the MBR boot code: %w", err)
	}
	return nil
}

// MakeESP makes the EFI system partition as a file of size bytes (a whole number of KiB): a
// FAT16 filesystem labelled EFI-SYSTEM with the EFI image as EFI/BOOT/BOOTX64.EFI, the
// removable-media path firmware boots without an NVRAM entry. The caller copies the file into
// the partition (mtools works on files; on a 32 MiB FAT32 it failed).
func MakeESP(ctx context.Context, run Runner, path string, size int64, im *Images) error {
	if size%1024 != 0 {
		return fmt.Errorf("EFI system partition of %d bytes: not a whole number of KiB", size)
	}
	if _, err := run(ctx, "mkfs.vfat", "-C", "-F", "16", "-n", "EFI-SYSTEM", path, strconv.FormatInt(size/1024, 10)); err != nil {
		return err
	}
	if _, err := run(ctx, "mmd", "-i", path, "::/EFI", "::/EFI/BOOT"); err != nil {
		return err
	}
	_, err := run(ctx, "mcopy", "-i", path, im.EFI, "::/EFI/BOOT/BOOTX64.EFI")
	return err
}

// CopyModules copies the modules and lists (*.mod, *.lst) of both platform directories under
// libDir into bootGrub/<platform>, the $prefix directories GRUB loads modules from.
func CopyModules(libDir, bootGrub string) error {
	for _, p := range []string{PlatformBIOS, PlatformEFI} {
		src, dst := filepath.Join(libDir, p), filepath.Join(bootGrub, p)
		ents, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
		for _, e := range ents {
			if name := e.Name(); e.Type().IsRegular() && (strings.HasSuffix(name, ".mod") || strings.HasSuffix(name, ".lst")) {
				if err := copyFile(filepath.Join(src, name), filepath.Join(dst, name)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}
