package testutil

import (
	"os"
	"testing"

	"github.com/bootc-go/bootc/internal/fsflags"
)

// ClearImmutable clears the immutable flag of every directory below root (deployments are
// immutable, so nothing can remove them otherwise). Filesystems without the flag are skipped.
func ClearImmutable(root string) error { return fsflags.ClearImmutable(root) }

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
