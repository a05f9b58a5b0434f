package install

// TEMPORARY stand-in for grub.Setup (package pkg/bootloader/grub, being written on another
// branch), with the same signature and effect; replace the call in install.go with
// grub.Setup and delete this file when that package lands.

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// grubSetup prepares bootDir (the sysroot's /boot) for GRUB: boot/grub/, the symlink
// boot/grub/grub.cfg -> ../loader/grub.cfg (the menu of the current boot version, which the
// sysroot writer generates only when that link exists) and an empty 1024-byte environment
// block boot/grub/grubenv.
func grubSetup(bootDir string) error {
	dir := filepath.Join(bootDir, "grub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Symlink("../loader/grub.cfg", filepath.Join(dir, "grub.cfg")); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	const header = "# GRUB Environment Block\n"
	env := append([]byte(header), bytes.Repeat([]byte("#"), 1024-len(header))...)
	return os.WriteFile(filepath.Join(dir, "grubenv"), env, 0o644)
}
