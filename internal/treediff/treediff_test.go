package treediff

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDiff(t *testing.T) {
	mk := func() string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "sub"), 0o755)
		os.WriteFile(filepath.Join(d, "sub", "f"), []byte("content"), 0o644)
		os.Symlink("sub/f", filepath.Join(d, "l"))
		return d
	}
	a, b := mk(), mk()
	if d, err := Diff(a, b, Options{}); err != nil || len(d) != 0 {
		t.Fatalf("identical trees: %v, %v", d, err)
	}
	for name, change := range map[string]func(dir string) error{
		"mode":    func(d string) error { return os.Chmod(filepath.Join(d, "sub", "f"), 0o4755) },
		"content": func(d string) error { return os.WriteFile(filepath.Join(d, "sub", "f"), []byte("CONTENT"), 0o644) },
		"target": func(d string) error {
			os.Remove(filepath.Join(d, "l"))
			return os.Symlink("sub", filepath.Join(d, "l"))
		},
		"extra": func(d string) error { return os.WriteFile(filepath.Join(d, "new"), nil, 0o644) },
		"xattr": func(d string) error { return unix.Setxattr(filepath.Join(d, "sub"), "user.x", []byte("1"), 0) },
	} {
		c := mk()
		if err := change(c); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		d, err := Diff(a, c, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(d) != 1 {
			t.Errorf("%s: diff = %q, want one line", name, strings.Join(d, "; "))
		}
	}
}
