package testutil

import (
	"path/filepath"
	"sort"
	"strings"
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

// SysrootState is what a refused operation must leave unchanged: the status document (given by
// the caller, as JSON), the deployment directories, the boot entries and kernels, and the refs
// (nothing of a refused image stays, not even its layers that were fine).
func SysrootState(t testing.TB, sys string, status []byte) string {
	t.Helper()
	var b strings.Builder
	b.Write(status)
	for _, pattern := range []string{"ostree/deploy/*/deploy/*", "boot/loader/entries/*", "boot/ostree/*"} {
		m, _ := filepath.Glob(filepath.Join(sys, pattern))
		b.WriteString(strings.Join(m, "\n") + "\n")
	}
	refs := strings.Split(Run(t, "ostree", "refs", "--repo="+filepath.Join(sys, "ostree/repo")), "\n")
	sort.Strings(refs) // ostree lists refs in directory order
	b.WriteString(strings.Join(refs, "\n"))
	return b.String()
}
