package imgref

import "testing"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		str  string
	}{
		{"docker://quay.io/fedora/fedora-coreos:stable", Ref{Transport: Registry, Name: "quay.io/fedora/fedora-coreos:stable"}, "docker://quay.io/fedora/fedora-coreos:stable"},
		{"registry:127.0.0.1:5000/os:1", Ref{Transport: Registry, Name: "127.0.0.1:5000/os:1"}, "docker://127.0.0.1:5000/os:1"},
		{"oci:/var/tmp/layout:v1", Ref{Transport: OCI, Name: "/var/tmp/layout", Tag: "v1"}, "oci:/var/tmp/layout:v1"},
		{"oci:layout", Ref{Transport: OCI, Name: "layout"}, "oci:layout"},
		{"oci-archive:os.tar", Ref{Transport: OCIArchive, Name: "os.tar"}, "oci-archive:os.tar"},
		{"containers-storage:localhost/os:1", Ref{Transport: ContainersStorage, Name: "localhost/os:1"}, "containers-storage:localhost/os:1"},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want || got.String() != tc.str {
			t.Errorf("Parse(%q) = %+v (%q), %v; want %+v (%q)", tc.in, got, got.String(), err, tc.want, tc.str)
		}
	}
	for _, bad := range []string{"", "quay.io/x", "docker:quay.io/x", "docker://", "oci:", "zip:x", "containers-storage:", "docker:///abs"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"docker://a/b:c", "oci:d:t", "oci-archive:f", "containers-storage:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			return
		}
		again, err := Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("Parse(%q) = %+v, whose String %q parses as %+v, %v", s, r, r.String(), again, err)
		}
	})
}
