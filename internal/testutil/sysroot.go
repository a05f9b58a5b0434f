package testutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// fsImmutableFL is FS_IMMUTABLE_FL of linux/fs.h: libostree (and we) set it on deployment roots.
const fsImmutableFL = 0x00000010

// ClearImmutable clears the immutable flag of every directory below root (deployments are
// immutable, so nothing can remove them otherwise). Filesystems without the flag are skipped.
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
		if err != nil || flags&fsImmutableFL == 0 {
			return nil
		}
		return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags&^fsImmutableFL))
	})
}

// SysrootDir returns an empty directory for a sysroot; when the test ends, the immutable flags
// of its deployments are cleared so that it can be removed.
func SysrootDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := ClearImmutable(dir); err != nil {
			t.Errorf("clearing immutable flags in %s: %v", dir, err)
		}
	})
	return dir
}

// removeImmutableAware is RemoveAll after clearing immutable flags.
func removeImmutableAware(dir string) error {
	if err := ClearImmutable(dir); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}
