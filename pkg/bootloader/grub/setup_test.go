package grub

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSetup(t *testing.T) {
	boot := filepath.Join(t.TempDir(), "boot")
	if Enabled(boot) {
		t.Fatal("Enabled before Setup")
	}
	if err := Setup(boot); err != nil {
		t.Fatal(err)
	}
	if !Enabled(boot) {
		t.Fatal("not Enabled after Setup")
	}
	if target, err := os.Readlink(filepath.Join(boot, "grub", "grub.cfg")); err != nil || target != "../loader/grub.cfg" {
		t.Fatalf("grub.cfg -> %q, %v", target, err)
	}
	env := filepath.Join(boot, "grub", "grubenv")
	st, err := os.Lstat(env)
	if err != nil || !st.Mode().IsRegular() || st.Size() != EnvSize {
		t.Fatalf("grubenv: %v, %v", st, err)
	}
	if got := grubEditenv(t, env, "list"); got != "" {
		t.Fatalf("a new grubenv lists %q", got)
	}

	// Idempotent: the counter set since survives a second Setup.
	grubEditenv(t, env, "set", "boot_counter=3")
	if err := Setup(boot); err != nil {
		t.Fatal(err)
	}
	if got := grubEditenv(t, env, "list"); got != "boot_counter=3\n" {
		t.Fatalf("after a second Setup the grubenv lists %q", got)
	}
}

func TestSetupRefusesForeignFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(grubDir string) error
	}{
		{"a grub.cfg file", func(d string) error {
			return os.WriteFile(filepath.Join(d, "grub.cfg"), []byte("set timeout=5\n"), 0o644)
		}},
		{"a grub.cfg link elsewhere", func(d string) error { return os.Symlink("../grub2/grub.cfg", filepath.Join(d, "grub.cfg")) }},
		{"a short grubenv", func(d string) error { return os.WriteFile(filepath.Join(d, "grubenv"), []byte(envHeader), 0o644) }},
		{"a grubenv link", func(d string) error { return os.Symlink("../loader/grubenv", filepath.Join(d, "grubenv")) }},
		{"a grubenv without header", func(d string) error { return os.WriteFile(filepath.Join(d, "grubenv"), make([]byte, EnvSize), 0o644) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			boot := t.TempDir()
			grubDir := filepath.Join(boot, "grub")
			if err := os.Mkdir(grubDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tc.setup(grubDir); err != nil {
				t.Fatal(err)
			}
			if err := Setup(boot); err == nil {
				t.Error("Setup accepted it")
			}
		})
	}
}
