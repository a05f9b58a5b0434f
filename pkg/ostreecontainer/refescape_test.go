package ostreecontainer

import (
	"testing"
	"unicode/utf8"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func TestEscapeRef(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "sha256_3A_2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"},
		{"quay.io/exampleos/blah:latest", "quay_2E_io/exampleos/blah_3A_latest"},
		{"a_b", "a__b"},
		{"/a/", "_2F_a_2F_"},
		{"a//b", "a_2F__2F_b"},
		{"x-y", "x-y"},
		{"-", "_2D_"},
		{"ünï", "_FC_n_EF_"},
		{"", ""},
	} {
		got := EscapeRef(tc.in)
		if got != tc.want {
			t.Errorf("EscapeRef(%q) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := UnescapeRef(got)
		if err != nil || back != tc.in {
			t.Errorf("UnescapeRef(%q) = %q, %v", got, back, err)
		}
		if tc.in != "" {
			if err := ostree.ValidateRef(LayerRefPrefix + got); err != nil {
				t.Errorf("%q escapes to an invalid ref: %v", tc.in, err)
			}
		}
	}
	for _, bad := range []string{"_", "_3A", "_ZZ_", "_110000_"} {
		if _, err := UnescapeRef(bad); err == nil {
			t.Errorf("UnescapeRef(%q) accepted", bad)
		}
	}
}

func FuzzEscapeRef(f *testing.F) {
	f.Add("sha256:abc")
	f.Add("docker://quay.io/x_y/z")
	f.Fuzz(func(t *testing.T, s string) {
		e := EscapeRef(s)
		back, err := UnescapeRef(e)
		if err != nil || back != s && utf8.ValidString(s) {
			t.Fatalf("%q -> %q -> %q, %v", s, e, back, err)
		}
		if s != "" && utf8.ValidString(s) {
			if err := ostree.ValidateRef(LayerRefPrefix + e); err != nil {
				t.Fatalf("%q escapes to invalid ref %q: %v", s, e, err)
			}
		}
		UnescapeRef(s) // arbitrary input must not panic
	})
}

func TestParseLayout(t *testing.T) {
	h := func(n byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: string(rune('a'+n)) + "0"} }
	cf := func(labels map[string]string, n int) *v1.ConfigFile {
		c := &v1.ConfigFile{Config: v1.Config{Labels: labels}}
		for i := 0; i < n; i++ {
			c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, h(byte(i)))
		}
		return c
	}
	l, err := ParseLayout(cf(map[string]string{LabelFinalDiffID: h(3).String()}, 6))
	if err != nil || l.Ostree != 0 || len(l.Chunks) != 3 || l.Chunks[2] != 3 || len(l.Derived) != 2 || l.Derived[0] != 4 {
		t.Errorf("chunked + derived: %+v, %v", l, err)
	}
	l, err = ParseLayout(cf(nil, 3))
	if err != nil || l.Ostree != -1 || len(l.Derived) != 3 {
		t.Errorf("plain image: %+v, %v", l, err)
	}
	if _, err := ParseLayout(cf(map[string]string{LabelFinalDiffID: "sha256:nope"}, 3)); err == nil {
		t.Error("a label naming no layer was accepted")
	}
}
