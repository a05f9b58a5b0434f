package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	for _, opts := range [][]Option{nil, {WithoutSync()}, {WithDirSync()}} {
		if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := WriteFile(path, []byte("new"), 0o640, opts...); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(path)
		if data, _ := os.ReadFile(path); err != nil || string(data) != "new" || st.Mode().Perm() != 0o640 {
			t.Errorf("after WriteFile: %q %v %v", data, st.Mode(), err)
		}
	}
	// A failure leaves the old file and no temporary file.
	if err := WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o644); err == nil {
		t.Error("writing into a missing directory succeeded")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("left behind: %v", ents)
	}
}
