// Package fsflags handles inode flags (chattr) on the trees the sysroot code writes.
package fsflags

import (
	"errors"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Immutable is FS_IMMUTABLE_FL of linux/fs.h: libostree (and pkg/sysroot) set it on deployment
// roots so that nothing but the sysroot code renames or removes them.
const Immutable = 0x00000010

// ClearImmutable clears the immutable flag of every directory below root, so that a sysroot
// directory (a staging tree, a test's sysroot) can be removed. Filesystems without the flag
// are skipped.
func ClearImmutable(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil
		}
		defer unix.Close(fd)
		flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
		if err != nil || flags&Immutable == 0 {
			return nil
		}
		return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags&^Immutable))
	})
}
