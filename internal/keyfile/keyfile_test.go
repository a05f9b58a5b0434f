package keyfile

import (
	"strings"
	"testing"
)

// Set edits only the lines it must: what Bytes writes is the file as it was but for them.
func TestSetBytes(t *testing.T) {
	in := "# leading comment\n[core]\nmode=archive-z2\n  repo_version = 1\n# core comment\n\n[remote \"origin\"]\nurl=https://example.com\n[core]\nfsync=true"
	for _, tc := range []struct{ group, key, value, want string }{
		{"core", "repo_version", "1", strings.Replace(in, "  repo_version = 1", "repo_version=1", 1) + "\n"},
		{"core", "fsync", "false", strings.Replace(in, "fsync=true", "fsync=false", 1) + "\n"},
		{"core", "new", "v", strings.Replace(in, "fsync=true", "fsync=true\nnew=v", 1) + "\n"},
		{`remote "origin"`, "gpg-verify", "false", strings.Replace(in, "url=https://example.com\n", "url=https://example.com\ngpg-verify=false\n", 1) + "\n"},
		{"sysroot", "bootloader", "none", in + "\n\n[sysroot]\nbootloader=none\n"},
	} {
		f, err := Parse([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		f.Set(tc.group, tc.key, tc.value)
		if got := string(f.Bytes()); got != tc.want {
			t.Errorf("set %s.%s:\ngot:\n%s\nwant:\n%s", tc.group, tc.key, got, tc.want)
		}
	}
	f, _ := Parse(nil)
	f.Set("a", "b", "c")
	if got := string(f.Bytes()); got != "[a]\nb=c\n" {
		t.Errorf("empty file: %q", got)
	}
}

// Values read as GKeyFile reads them (checked against `ostree config get`): the key trimmed,
// the value's leading whitespace dropped and its trailing whitespace kept, the last of a key set
// twice, a repeated group merged.
func TestParseGet(t *testing.T) {
	f, err := Parse([]byte("[core]\r\nrepo_version=1\n  foo =  bar  \n[x]\nk=1\n[core]\nk=2\nk=3\nodd=\\sa\\tb\\\\c\\q\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ group, key, want string }{
		{"core", "repo_version", "1"}, {"core", "foo", "bar  "}, {"core", "k", "3"}, {"x", "k", "1"},
		{"core", "odd", " a\tb\\c\\q"},
	} {
		if got, ok := f.Get(tc.group, tc.key); !ok || got != tc.want {
			t.Errorf("Get(%s, %s) = %q, %v; want %q", tc.group, tc.key, got, ok, tc.want)
		}
	}
	if _, ok := f.Get("core", "missing"); ok {
		t.Error("Get of a missing key succeeded")
	}
	if got := f.Groups(); strings.Join(got, ",") != "core,x" {
		t.Errorf("Groups() = %q", got)
	}
	want := "[core]\nrepo_version=1\nfoo=bar  \nk=2\nk=3\nodd=\\sa\\tb\\\\c\\q\n\n[x]\nk=1\n"
	if got := string(f.Canonical()); got != want {
		t.Errorf("Canonical:\n%q\nwant\n%q", got, want)
	}
	for _, bad := range []string{"key=before group\n", "[origin]\nno equals sign\n", "[unclosed\n", "[]\n", "[a]b]\n", "[g]\n=v\n"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		" lead\\back\ttab": `\slead\\back\ttab`, "a b\n\r": `a b\n\r`, "": "", "  two": `\s two`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
		if got := Unescape(want); got != in {
			t.Errorf("Unescape(%q) = %q, want %q", want, got, in)
		}
	}
}

// FuzzParse: whatever parses gives output that parses to the same values and is stable, and
// what Set stores reads back unchanged.
func FuzzParse(f *testing.F) {
	f.Add([]byte("[origin]\nrefspec=x\n"), "g", "k", " v")
	f.Add([]byte("# c\n[a]\nk=v\\s\\n\n\n[b]\n[a]\nk = w\n"), "a", "k", "\\\n")
	f.Fuzz(func(t *testing.T, data []byte, group, key, value string) {
		kf, err := Parse(data)
		if err != nil {
			return
		}
		for _, out := range [][]byte{kf.Bytes(), kf.Canonical()} {
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("reparsing our own output %q: %v", out, err)
			}
			if a, b := again.Map(), kf.Map(); !sameMap(a, b) {
				t.Fatalf("values changed: %q vs %q", a, b)
			}
			if string(again.Canonical()) != string(kf.Canonical()) {
				t.Fatalf("not stable: %q vs %q", again.Canonical(), kf.Canonical())
			}
		}
		if ValidateGroup(group) != nil || ValidateKey(key) != nil {
			return
		}
		kf.Set(group, key, value)
		for _, out := range [][]byte{kf.Bytes(), kf.Canonical()} {
			again, err := Parse(out)
			if err != nil {
				t.Fatalf("reparsing after Set %q: %v", out, err)
			}
			if got, ok := again.Get(group, key); !ok || got != value {
				t.Fatalf("Set %q, read back %q (%v) from %q", value, got, ok, out)
			}
		}
	})
}

func sameMap(a, b map[string]map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for g, kv := range a {
		if len(kv) != len(b[g]) {
			return false
		}
		for k, v := range kv {
			if bv, ok := b[g][k]; !ok || bv != v {
				return false
			}
		}
	}
	return true
}
