// Package bootid reads the kernel's ID of the running boot: the one home of
// /proc/sys/kernel/random/boot_id, which records use to tell "this boot" from an earlier one.
package bootid

import (
	"os"
	"strings"
)

// File is where the kernel publishes the ID (a random UUID chosen at each boot).
const File = "/proc/sys/kernel/random/boot_id"

// Current is the ID of this boot ("" where it cannot be read).
func Current() string {
	b, err := os.ReadFile(File)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
