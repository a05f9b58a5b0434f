package grub

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// grubEditenv runs GRUB's own tool on file.
func grubEditenv(t *testing.T, file string, args ...string) string {
	t.Helper()
	testutil.RequireTool(t, "grub-editenv")
	out, err := exec.Command("grub-editenv", append([]string{file}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("grub-editenv %s %v: %v\n%s", file, args, err, out)
	}
	return string(out)
}

func TestWriteEnvReadByGrubEditenv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grubenv")
	e := NewEnv()
	e.Set("boot_counter", "3")
	e.Set("boot_success", "0")
	e.Set("odd", "back\\slash\nnew line")
	if err := WriteEnv(path, e); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Size() != EnvSize || !st.Mode().IsRegular() {
		t.Fatalf("grubenv: %v, %v", st, err)
	}
	got := grubEditenv(t, path, "list")
	want := "boot_counter=3\nboot_success=0\nodd=back\\slash\nnew line\n"
	if got != want {
		t.Fatalf("grub-editenv list = %q, want %q", got, want)
	}
	// GRUB's tool rewrites the block: ours reads what it wrote, and writes the same bytes back.
	grubEditenv(t, path, "unset", "boot_counter")
	grubEditenv(t, path, "set", "boot_success=1")
	data, _ := os.ReadFile(path)
	e, err = ParseEnv(data)
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := e.Get("boot_counter"); ok {
		t.Fatalf("boot_counter still set: %q", v)
	}
	if v, _ := e.Get("boot_success"); v != "1" {
		t.Fatalf("boot_success = %q, want 1", v)
	}
	if v, _ := e.Get("odd"); v != "back\\slash\nnew line" {
		t.Fatalf("odd = %q", v)
	}
	again, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Fatalf("our block differs from grub-editenv's:\n%q\n%q", again, data)
	}
}

func TestUpdateEnvCreatesAndKeepsOthers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "grubenv")
	if err := UpdateEnv(path, func(e *Env) { e.Set("saved_entry", "1") }); err != nil {
		t.Fatal(err)
	}
	if err := UpdateEnv(path, func(e *Env) { e.Set("boot_counter", "2") }); err != nil {
		t.Fatal(err)
	}
	if got := grubEditenv(t, path, "list"); got != "saved_entry=1\nboot_counter=2\n" {
		t.Fatalf("list = %q", got)
	}
}

func TestEnvRefusals(t *testing.T) {
	for _, bad := range []string{"", "no header\n", envHeader + "novalue\n", envHeader + "a=unterminated"} {
		if _, err := ParseEnv([]byte(bad)); err == nil {
			t.Errorf("ParseEnv(%q) accepted", bad)
		}
	}
	e := NewEnv()
	e.Set("big", strings.Repeat("x", EnvSize))
	if _, err := e.Marshal(); err == nil {
		t.Error("an oversized block was accepted")
	}
	e = NewEnv()
	e.Set("a=b", "c")
	if _, err := e.Marshal(); err == nil {
		t.Error("a name with '=' was accepted")
	}
}

// FuzzParseEnv: whatever parses writes back to a block that parses to the same variables.
func FuzzParseEnv(f *testing.F) {
	seed := NewEnv()
	seed.Set("boot_counter", "3")
	seed.Set("x", "a\\b\nc")
	data, _ := seed.Marshal()
	f.Add(data)
	f.Add([]byte(envHeader + "#comment\na=b\n###"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnv(data)
		if err != nil {
			return
		}
		out, err := e.Marshal()
		if err != nil {
			return // valid names, too many bytes, or names GRUB could not read back
		}
		e2, err := ParseEnv(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%q", err, out)
		}
		if strings.Join(e.Names(), "\x00") != strings.Join(e2.Names(), "\x00") {
			t.Fatalf("names %q != %q", e.Names(), e2.Names())
		}
		for _, n := range e.Names() {
			a, _ := e.Get(n)
			b, _ := e2.Get(n)
			if a != b {
				t.Fatalf("%s: %q != %q", n, a, b)
			}
		}
	})
}
