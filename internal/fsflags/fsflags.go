// Package fsflags handles the immutable inode flag (chattr +i) that libostree, and pkg/sysroot,
// set on deployment roots, and removes trees that hold such directories.
package fsflags

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Immutable is FS_IMMUTABLE_FL of linux/fs.h.
const Immutable = 0x00000010

// SetImmutable sets or clears the immutable flag of a directory. Filesystems without the flag
// (ENOTTY, EOPNOTSUPP) are ignored.
func SetImmutable(path string, on bool) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer unix.Close(fd)
	return setImmutableFD(fd, path, on)
}

func setImmutableFD(fd int, path string, on bool) error {
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		if ignorable(err) {
			return nil
		}
		return fmt.Errorf("reading the flags of %s: %w", path, err)
	}
	want := flags &^ Immutable
	if on {
		want = flags | Immutable
	}
	if want == flags {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(want)); err != nil {
		if ignorable(err) {
			return nil
		}
		return fmt.Errorf("changing the immutable flag of %s: %w", path, err)
	}
	return nil
}

func ignorable(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTSUP)
}

// ClearImmutable clears the immutable flag of every directory below root, so that a sysroot
// directory (a staging tree, a test's sysroot) can be removed. Directories that cannot be
// opened are skipped.
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
		return setImmutableFD(fd, path, false)
	})
}

// RemoveAll removes a tree that may hold immutable directories: ClearImmutable, then
// os.RemoveAll.
func RemoveAll(root string) error {
	if err := ClearImmutable(root); err != nil {
		return err
	}
	return os.RemoveAll(root)
}
