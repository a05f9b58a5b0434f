package sysroot

import (
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/osrelease"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func TestStrverscmp(t *testing.T) {
	// Expected signs from glibc's strverscmp(3) and its manual's examples.
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "1", 0},
		{"1", "2", -1},
		{"2", "10", -1},
		{"10", "9", 1},
		{"000", "00", -1},
		{"00", "01", -1},
		{"01", "010", -1},
		{"010", "09", -1},
		{"09", "0", -1},
		{"0", "1", -1},
		{"1.01", "1.1", -1},
		{"1.1", "1.10", -1},
		{"jan9", "jan10", -1},
		{"a", "b", -1},
		{"", "1", -1},
		{"item#99", "item#100", -1},
	}
	sign := func(n int) int {
		switch {
		case n < 0:
			return -1
		case n > 0:
			return 1
		}
		return 0
	}
	for _, tt := range tests {
		if got := sign(strverscmp(tt.a, tt.b)); got != tt.want {
			t.Errorf("strverscmp(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := sign(strverscmp(tt.b, tt.a)); got != -tt.want {
			t.Errorf("strverscmp(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
	}
}

func TestOrigin(t *testing.T) {
	in := "# kept\n[origin]\ncontainer-image-reference=ostree-unverified-registry:quay.io/x/y:tag\nunknown = kept as is\n\n[rpmostree]\nrequested-packages=a;b\n"
	o, err := ParseOrigin([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(o.Marshal()); got != strings.Replace(in, "unknown = kept as is", "unknown=kept as is", 1) {
		t.Errorf("round trip:\n%q\nwant\n%q", got, in)
	}
	if ref, ok := o.ContainerImageReference(); !ok || ref != "ostree-unverified-registry:quay.io/x/y:tag" {
		t.Errorf("ContainerImageReference = %q %v", ref, ok)
	}
	if !o.HasGroup("rpmostree") || o.HasGroup("packages") {
		t.Error("HasGroup wrong")
	}
	o.Set("libostree-transient", "pinned", "true")
	o.Set("origin", "container-image-reference", "new")
	o.Set("origin", "odd", " leading space\tand\\slash\n")
	if v, _ := o.Get("origin", "odd"); v != " leading space\tand\\slash\n" {
		t.Errorf("escaped value read back as %q", v)
	}
	o.Remove("rpmostree", "requested-packages")
	want := "# kept\n[origin]\ncontainer-image-reference=new\nunknown=kept as is\nodd=\\sleading space\\tand\\\\slash\\n\n\n[libostree-transient]\npinned=true\n"
	if got := string(o.Marshal()); got != want {
		t.Errorf("after edits:\n%q\nwant\n%q", got, want)
	}
	d := &Deployment{Origin: o}
	if !d.Pinned() {
		t.Error("Pinned() false")
	}
	// A nil origin (no .origin file) reads as empty.
	var none *Origin
	if _, ok := none.ContainerImageReference(); ok || none.HasGroup("origin") || (&Deployment{}).Pinned() {
		t.Error("nil origin is not empty")
	}
	if got := string(NewContainerOrigin("r").Marshal()); got != "[origin]\ncontainer-image-reference=r\n" {
		t.Errorf("NewContainerOrigin: %q", got)
	}
	for _, bad := range []string{"key=before group\n", "[origin]\nno equals sign\n", "[unclosed\n"} {
		if _, err := ParseOrigin([]byte(bad)); err == nil {
			t.Errorf("ParseOrigin(%q) accepted", bad)
		}
	}
}

func TestParseBLSAndKargs(t *testing.T) {
	e := parseBLS([]byte("# comment\ntitle  Test OS (ostree:0)\nversion\t2\noptions root=UUID=1 quiet rd.x=\"a b\" ostree=/ostree/boot.1/os/abc/0\nlinux /vmlinuz\ncustom value\n"))
	if e.get("title") != "Test OS (ostree:0)" || e.get("version") != "2" {
		t.Errorf("parsed %v", e.values)
	}
	if got := strings.Join(splitKargs(e.get("options")), "|"); got != `root=UUID=1|quiet|rd.x="a b"|ostree=/ostree/boot.1/os/abc/0` {
		t.Errorf("kargs %s", got)
	}
	if got := string(e.marshal()); got != "title Test OS (ostree:0)\nversion 2\noptions root=UUID=1 quiet rd.x=\"a b\" ostree=/ostree/boot.1/os/abc/0\nlinux /vmlinuz\ncustom value\n" {
		t.Errorf("marshal %q", got)
	}
	if got := replaceKarg([]string{"a", "init=/x", "b", "init=/y"}, "init=/z"); strings.Join(got, " ") != "a init=/z b" {
		t.Errorf("replaceKarg %q", got)
	}
	for _, tt := range []struct{ in, want string }{
		{"PRETTY_NAME=\"Fedora Linux 40 (Container Image)\"\nID=fedora\n", "Fedora Linux 40 (Container Image)"},
		{"ID=debian\n", "debian"},
		{"PRETTY_NAME='single quoted'\n", "single quoted"},
		{"PRETTY_NAME=\"with \\\"escapes\\\"\"\n", `with "escapes"`},
		{"NAME=x\n", ""},
	} {
		if got := osReleaseTitle(osrelease.Parse([]byte(tt.in))); got != tt.want {
			t.Errorf("osReleaseTitle(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	for _, bad := range []string{"/ostree/boot.2/os/c/0", "/ostree/boot.0/os/c", "ostree/boot.0/os/c/0", "/ostree/boot.0/os/c/x"} {
		if _, _, _, err := parseBootlink(bad); err == nil {
			t.Errorf("parseBootlink(%q) accepted", bad)
		}
	}
	for _, bad := range []string{".tmp-x", "abc.0", strings.Repeat("a", 64) + ".01", strings.Repeat("a", 64)} {
		if _, _, err := parseDeployName(bad); err == nil {
			t.Errorf("parseDeployName(%q) accepted", bad)
		}
	}
}

// TestPlace checks the retention rules on lists built in memory (no disk).
func TestPlace(t *testing.T) {
	mk := func(sr string, n byte, pinned bool) *Deployment {
		d := &Deployment{Stateroot: sr, Commit: ostree.Checksum{n}}
		if pinned {
			d.Origin = NewContainerOrigin("x")
			d.Origin.Set("libostree-transient", "pinned", "true")
		}
		return d
	}
	a, b, c, p, other := mk("os", 1, false), mk("os", 2, false), mk("os", 3, false), mk("os", 4, true), mk("other", 5, false)
	names := map[*Deployment]string{a: "a", b: "b", c: "c", p: "p", other: "other"}
	newD := mk("os", 9, false)
	names[newD] = "new"
	show := func(list []*Deployment) string {
		var out []string
		for _, d := range list {
			out = append(out, names[d])
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name    string
		list    []*Deployment
		booted  *Deployment
		merge   *Deployment // nil with mergeKnown: NoMerge
		noMerge bool
		opts    PlaceOptions
		want    string
	}{
		{"booted first", []*Deployment{a, b, c}, a, a, false, PlaceOptions{}, "new,a"},
		{"booted second (rollback queued)", []*Deployment{a, b, c}, b, b, false, PlaceOptions{}, "new,b"},
		{"pinned and other stateroots kept", []*Deployment{a, p, other, b}, a, a, false, PlaceOptions{}, "new,a,p,other"},
		{"retain", []*Deployment{a, b, c}, a, a, false, PlaceOptions{Retain: true}, "new,a,b,c"},
		{"not default", []*Deployment{a, b, c}, a, a, false, PlaceOptions{NotDefault: true}, "a,new"},
		{"not default, booted second", []*Deployment{a, b, c}, b, b, false, PlaceOptions{NotDefault: true}, "b,new"},
		{"no merge keeps booted", []*Deployment{a, b}, a, nil, true, PlaceOptions{}, "new,a"},
		{"nothing booted, no merge", []*Deployment{a, b}, nil, nil, true, PlaceOptions{NotDefault: true}, "new"},
		{"empty", nil, nil, nil, true, PlaceOptions{}, "new"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Sysroot{deployments: tt.list, booted: tt.booted}
			newD.merge, newD.mergeKnown = tt.merge, true
			if got := show(s.Place(newD, tt.opts)); got != tt.want {
				t.Errorf("Place = %s, want %s", got, tt.want)
			}
		})
	}
}

func FuzzParseOrigin(f *testing.F) {
	f.Add([]byte("[origin]\nrefspec=x\n"))
	f.Add([]byte("# c\n[a]\nk=v\\s\\n\n\n[b]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := ParseOrigin(data)
		if err != nil {
			return
		}
		again, err := ParseOrigin(o.Marshal())
		if err != nil {
			t.Fatalf("reparsing our own output: %v", err)
		}
		if string(again.Marshal()) != string(o.Marshal()) {
			t.Fatalf("not stable: %q vs %q", again.Marshal(), o.Marshal())
		}
	})
}

func FuzzParseBLS(f *testing.F) {
	f.Add([]byte("title x\noptions a b ostree=/ostree/boot.0/os/c/0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		e := parseBLS(data)
		_ = splitKargs(e.get("options"))
		again := parseBLS(e.marshal())
		for _, k := range e.keys {
			if again.get(k) != e.get(k) && !strings.ContainsAny(e.get(k), "\r\n") {
				t.Fatalf("key %q: %q became %q", k, e.get(k), again.get(k))
			}
		}
	})
}
