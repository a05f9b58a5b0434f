package grub

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// run is the Runner of the tests.
func run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", errors.New(name + ": " + err.Error() + ": " + string(out))
	}
	return string(out), nil
}

// pattern returns n bytes that differ from each other's neighbours, so that a misplaced copy
// shows.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// fakeImages are a boot.img and a core.img (3.5 sectors) shaped like grub-mkimage's: core.img's
// first block list is {2, 3, 0x820}, as for core.img at sector 1, before a terminator.
func fakeImages() *Images {
	boot := pattern(sectorSize, 1)
	binary.LittleEndian.PutUint16(boot[0x1fe:], 0xaa55)
	core := pattern(3*sectorSize+200, 3)
	clear(core[firstBlocklist-2*blocklistSize : firstBlocklist])
	binary.LittleEndian.PutUint64(core[firstBlocklist:], 2)
	binary.LittleEndian.PutUint16(core[firstBlocklist+8:], 3)
	binary.LittleEndian.PutUint16(core[firstBlocklist+10:], 0x820)
	return &Images{Boot: boot, Core: core}
}

// fakeDisk is a 4 MiB disk with a protective MBR (patterned code area and disk signature) and
// patterned bytes where the BIOS boot partition lies, from 1 MiB.
func fakeDisk(t *testing.T) (string, []byte) {
	t.Helper()
	disk := pattern(4<<20, 5)
	mbr := disk[:sectorSize]
	clear(mbr[0x1be:])
	mbr[0x1c2] = 0xee
	binary.LittleEndian.PutUint32(mbr[0x1c6:], 1)
	binary.LittleEndian.PutUint16(mbr[0x1fe:], 0xaa55)
	path := filepath.Join(t.TempDir(), "disk.img")
	must(t, os.WriteFile(path, disk, 0o644))
	return path, disk
}

// TestPlaceBIOS checks every byte PlaceBIOS writes, and that it writes nothing else.
func TestPlaceBIOS(t *testing.T) {
	path, before := fakeDisk(t)
	im := fakeImages()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	must(t, err)
	must(t, PlaceBIOS(f, im, 1<<20, 1<<20))
	must(t, f.Close())
	after, err := os.ReadFile(path)
	must(t, err)

	want := slices.Clone(before)
	mbr := want[:sectorSize]
	copy(mbr[:0x03], im.Boot)                            // the jump
	copy(mbr[0x5a:0x1b8], im.Boot[0x5a:0x1b8])           // the code; 0x03-0x59 stay the disk's
	binary.LittleEndian.PutUint64(mbr[0x5c:], 1<<20/512) // core.img's first sector
	mbr[0x64] = 0xff
	mbr[0x66], mbr[0x67] = 0x90, 0x90
	core := want[1<<20 : 1<<20+4*sectorSize]
	clear(core)
	copy(core, im.Core)
	binary.LittleEndian.PutUint64(core[0x1f4:], 2049) // the rest: 3 sectors from 2049
	binary.LittleEndian.PutUint16(core[0x1fc:], 3)
	binary.LittleEndian.PutUint16(core[0x1fe:], 0x820)
	clear(core[0x1e8:0x1f4]) // the terminator

	if !bytes.Equal(after, want) {
		for i := range after {
			if after[i] != want[i] {
				t.Fatalf("first difference at byte %#x: %#02x, want %#02x", i, after[i], want[i])
			}
		}
	}
}

// TestPlaceBIOSRefuses: a core.img that does not fit, a disk without a protective MBR and a
// boot.img that is no boot sector are refused with the disk untouched.
func TestPlaceBIOSRefuses(t *testing.T) {
	for _, tc := range []struct {
		name      string
		edit      func(im *Images, disk []byte)
		partSize  int64
		errSubstr string
	}{
		{"core-bigger-than-partition", func(im *Images, _ []byte) { im.Core = make([]byte, 64<<10+1) }, 64 << 10, "at most 65536"},
		{"core-bigger-than-grub-loads", func(im *Images, _ []byte) { im.Core = make([]byte, maxCoreSectors*sectorSize+1) }, 1 << 20, "at most 454656"},
		{"no-protective-mbr", func(_ *Images, disk []byte) { disk[0x1c2] = 0x83 }, 1 << 20, "no protective MBR"},
		{"boot-img-size", func(im *Images, _ []byte) { im.Boot = im.Boot[:400] }, 1 << 20, "not a boot sector"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, disk := fakeDisk(t)
			im := fakeImages()
			tc.edit(im, disk)
			must(t, os.WriteFile(path, disk, 0o644))
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			must(t, err)
			defer f.Close()
			if err := PlaceBIOS(f, im, 1<<20, tc.partSize); err == nil || !strings.Contains(err.Error(), tc.errSubstr) {
				t.Errorf("error %v, want one saying %q", err, tc.errSubstr)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, disk) {
				t.Error("a refused PlaceBIOS wrote to the disk")
			}
		})
	}
}

func TestCheckTree(t *testing.T) {
	tree := t.TempDir()
	err := CheckTree(tree)
	var missing *MissingError
	if !errors.Is(err, ErrNoGRUB) || !errors.As(err, &missing) || len(missing.Missing) != 7 ||
		missing.Missing[0] != "usr/lib/grub/i386-pc/kernel.img" || missing.Missing[6] != "usr/lib/grub/x86_64-efi/moddep.lst" {
		t.Fatalf("empty tree: %v", err)
	}
	for _, p := range []string{PlatformBIOS, PlatformEFI} {
		for _, f := range required[p] {
			path := filepath.Join(tree, LibDir, p, f)
			must(t, os.MkdirAll(filepath.Dir(path), 0o755))
			must(t, os.WriteFile(path, nil, 0o644))
		}
	}
	must(t, CheckTree(tree))
	must(t, os.Remove(filepath.Join(tree, LibDir, PlatformEFI, "kernel.img")))
	if err := CheckTree(tree); err == nil || err.Error() != "missing usr/lib/grub/x86_64-efi/kernel.img" {
		t.Errorf("without the EFI kernel.img: %v", err)
	}
}

// TestMakeImagesAndESP builds the images from the host's GRUB (the same files an image gets
// from grub-pc-bin and grub-efi-amd64-bin), puts them on a disk partitioned by sfdisk, and
// checks the disk with the tools that read it.
func TestMakeImagesAndESP(t *testing.T) {
	testutil.RequireTool(t, "grub-mkimage", "mkfs.vfat", "mmd", "mcopy", "mdir", "sfdisk", "blkid")
	if err := CheckTree("/"); err != nil {
		t.Skipf("the host has no GRUB: %v", err)
	}
	work := t.TempDir()
	const fsUUID = "0b7e1c4a-8d3e-4f6b-9a2c-5e1d7f3a9b10"
	im, err := MakeImages(t.Context(), run, "/"+LibDir, fsUUID, work)
	must(t, err)
	// core.img as grub-mkimage makes it: diskboot.img's block list for core.img at sector 1.
	if bl := im.Core[firstBlocklist:sectorSize]; binary.LittleEndian.Uint64(bl) != 2 || binary.LittleEndian.Uint16(bl[10:]) != 0x820 ||
		int(binary.LittleEndian.Uint16(bl[8:])) != (len(im.Core)+511)/512-1 {
		t.Errorf("core.img's block list: % x", bl)
	}
	efi, err := os.ReadFile(im.EFI)
	must(t, err)
	if !bytes.HasPrefix(efi, []byte("MZ")) || !bytes.Contains(efi, []byte(EarlyConfig(fsUUID))) {
		t.Errorf("BOOTX64.EFI is no PE image with the early config (%d bytes)", len(efi))
	}

	esp := filepath.Join(work, "esp.img")
	must(t, MakeESP(t.Context(), run, esp, 64<<20, im))
	if st, err := os.Stat(esp); err != nil || st.Size() != 64<<20 {
		t.Fatalf("esp.img: %v %v", st, err)
	}
	if v := strings.TrimSpace(testutil.Run(t, "blkid", "-p", "-o", "value", "-s", "VERSION", esp)); v != "FAT16" {
		t.Errorf("the ESP is %s, want FAT16", v)
	}
	if out := testutil.Run(t, "mdir", "-i", esp, "-b", "::/EFI/BOOT"); strings.TrimSpace(out) != "::/EFI/BOOT/BOOTX64.EFI" {
		t.Errorf("mdir ::/EFI/BOOT: %q", out)
	}
	copied := filepath.Join(work, "copy.efi")
	testutil.Run(t, "mcopy", "-i", esp, "::/EFI/BOOT/BOOTX64.EFI", copied)
	if got, _ := os.ReadFile(copied); !bytes.Equal(got, efi) {
		t.Error("BOOTX64.EFI on the ESP differs from the image made")
	}

	// On a GPT disk, as grub-bios-setup would place it.
	disk := filepath.Join(work, "disk.img")
	must(t, os.WriteFile(disk, nil, 0o644))
	must(t, os.Truncate(disk, 8<<20))
	cmd := exec.Command("sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", disk)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	f, err := os.OpenFile(disk, os.O_RDWR, 0)
	must(t, err)
	must(t, PlaceBIOS(f, im, 1<<20, 1<<20))
	must(t, f.Close())
	data, err := os.ReadFile(disk)
	must(t, err)
	if !bytes.Equal(data[0x5a:0x5c], im.Boot[0x5a:0x5c]) || binary.LittleEndian.Uint64(data[0x5c:]) != 2048 ||
		data[0x64] != 0xff || !bytes.Equal(data[0x66:0x68], []byte{0x90, 0x90}) {
		t.Errorf("MBR: % x", data[:0x70])
	}
	if out, err := exec.Command("sfdisk", "--verify", disk).CombinedOutput(); err != nil || strings.Contains(string(out), "corrupt") {
		t.Errorf("sfdisk --verify after PlaceBIOS: %v\n%s", err, out)
	}
	core := data[1<<20:]
	if !bytes.Equal(core[sectorSize:len(im.Core)], im.Core[sectorSize:]) {
		t.Error("core.img's sectors after the first differ on the disk")
	}
}

func TestCopyModules(t *testing.T) {
	lib := t.TempDir()
	for _, f := range []string{"i386-pc/normal.mod", "i386-pc/command.lst", "i386-pc/boot.img", "x86_64-efi/linux.mod", "x86_64-efi/monolithic/grubx64.efi"} {
		must(t, os.MkdirAll(filepath.Join(lib, filepath.Dir(f)), 0o755))
		must(t, os.WriteFile(filepath.Join(lib, f), []byte(f), 0o644))
	}
	dst := filepath.Join(t.TempDir(), "boot/grub")
	must(t, CopyModules(lib, dst))
	var got []string
	must(t, filepath.WalkDir(dst, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dst, p)
			got = append(got, rel)
		}
		return err
	}))
	if want := []string{"i386-pc/command.lst", "i386-pc/normal.mod", "x86_64-efi/linux.mod"}; !slices.Equal(got, want) {
		t.Errorf("copied %v, want %v", got, want)
	}
}
