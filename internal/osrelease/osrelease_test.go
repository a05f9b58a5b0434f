package osrelease

import (
	"maps"
	"os"
	"path/filepath"
	"testing"
)

func TestParse(t *testing.T) {
	got := Parse([]byte(`# comment
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
PRETTY_NAME='single "quoted"'
ESCAPED="a \"b\" \$c \\d"
OUTSIDE=a\ b
 SPACED = no
BROKEN
UNCLOSED="x
EMPTY=
`))
	want := map[string]string{
		"NAME": "Debian GNU/Linux", "VERSION_ID": "12", "ID": "debian",
		"PRETTY_NAME": `single "quoted"`, "ESCAPED": `a "b" $c \d`, "OUTSIDE": "a b", "EMPTY": "",
	}
	if !maps.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	r, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if f, p, err := Read(r); f != nil || p != "" || err != nil {
		t.Errorf("no os-release: %v %q %v", f, p, err)
	}
	os.MkdirAll(filepath.Join(dir, "usr/lib"), 0o755)
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte("ID=etc\n"), 0o644)
	if f, p, err := Read(r); f["ID"] != "etc" || p != "etc/os-release" || err != nil {
		t.Errorf("etc only: %v %q %v", f, p, err)
	}
	os.WriteFile(filepath.Join(dir, "usr/lib/os-release"), []byte("ID=usr\n"), 0o644)
	if f, p, err := Read(r); f["ID"] != "usr" || p != "usr/lib/os-release" || err != nil {
		t.Errorf("both: %v %q %v", f, p, err)
	}
	// A symlink out of the root is not followed.
	os.Remove(filepath.Join(dir, "usr/lib/os-release"))
	os.Symlink("/etc/os-release", filepath.Join(dir, "usr/lib/os-release"))
	if _, p, err := Read(r); err == nil || p != "usr/lib/os-release" {
		t.Errorf("escaping symlink: %q %v", p, err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("PRETTY_NAME=\"a \\\"b\\\"\"\nID='x'\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for k := range Parse(data) {
			if k == "" {
				t.Fatal("empty key")
			}
		}
	})
}
