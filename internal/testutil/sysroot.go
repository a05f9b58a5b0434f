package testutil

import (
	"testing"

	"github.com/bootc-go/bootc/internal/fsflags"
)

// SysrootDir returns an empty directory for a sysroot; when the test ends, the immutable flags
// of its deployments are cleared so that it can be removed.
func SysrootDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := fsflags.ClearImmutable(dir); err != nil {
			t.Errorf("clearing immutable flags in %s: %v", dir, err)
		}
	})
	return dir
}
