// Package jsonfile reads and writes the small JSON records bootc keeps (in /var/lib/bootc): the
// one home of "absent is not an error" on read and "indented, newline-terminated, replaced
// atomically" on write.
package jsonfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bootc-go/bootc/internal/atomicfile"
)

// Read decodes the file at path into v; false (and no error) when there is no such file.
func Read(path string, v any) (bool, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	return true, nil
}

// Write replaces the file at path with v as indented JSON (mode 0644), creating its directory:
// atomically and durably (atomicfile.WriteFile with the directory synced).
func Write(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err == nil {
		err = os.MkdirAll(filepath.Dir(path), 0o755)
	}
	if err == nil {
		err = atomicfile.WriteFile(path, append(data, '\n'), 0o644, atomicfile.WithDirSync())
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
