package sysroot

import (
	"os"

	"github.com/bootc-go/bootc/internal/fsflags"
)

// ClearImmutable clears the immutable flag of every directory below root, so that a sysroot
// directory (a staging tree, a test's sysroot) can be removed.
func ClearImmutable(root string) error { return fsflags.ClearImmutable(root) }

// RemoveAll removes a whole sysroot directory: ClearImmutable, then os.RemoveAll.
func RemoveAll(root string) error {
	if err := ClearImmutable(root); err != nil {
		return err
	}
	return os.RemoveAll(root)
}
