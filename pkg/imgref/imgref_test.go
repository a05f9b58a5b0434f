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

// The round trips of ostree-ext's container/mod.rs tests (spec §3.1).
func TestParseOstree(t *testing.T) {
	for _, tc := range []struct {
		in, display string
		sig         SigVerify
		remote      string
	}{
		{"ostree-unverified-registry:quay.io/exampleos/blah", "ostree-unverified-registry:quay.io/exampleos/blah", Unverified, ""},
		{"ostree-unverified-image:registry:quay.io/exampleos/blah", "ostree-unverified-registry:quay.io/exampleos/blah", Unverified, ""},
		{"ostree-unverified-image:docker://quay.io/exampleos/blah", "ostree-unverified-registry:quay.io/exampleos/blah", Unverified, ""},
		{"ostree-unverified-image:oci:/var/tmp/layout:v1", "ostree-unverified-image:oci:/var/tmp/layout:v1", Unverified, ""},
		{"ostree-image-signed:docker://quay.io/exampleos/blah", "ostree-image-signed:docker://quay.io/exampleos/blah", ContainerPolicy, ""},
		{"ostree-image-signed:registry:quay.io/exampleos/blah", "ostree-image-signed:docker://quay.io/exampleos/blah", ContainerPolicy, ""},
		{"ostree-remote-image:fedora:docker://quay.io/exampleos/blah", "ostree-remote-image:fedora:docker://quay.io/exampleos/blah", OstreeRemote, "fedora"},
		{"ostree-remote-registry:fedora:quay.io/exampleos/blah", "ostree-remote-image:fedora:docker://quay.io/exampleos/blah", OstreeRemote, "fedora"},
		{"ostree-remote-image:fedora:oci-archive:/tmp/x.tar", "ostree-remote-image:fedora:oci-archive:/tmp/x.tar", OstreeRemote, "fedora"},
		{"ostree-unverified-image:containers-storage:localhost/os:1", "ostree-unverified-image:containers-storage:localhost/os:1", Unverified, ""},
	} {
		r, err := ParseOstree(tc.in)
		if err != nil {
			t.Errorf("ParseOstree(%q): %v", tc.in, err)
			continue
		}
		if r.SigVerify != tc.sig || r.Remote != tc.remote || r.String() != tc.display {
			t.Errorf("ParseOstree(%q) = %+v, displayed %q; want %v %q %q", tc.in, r, r.String(), tc.sig, tc.remote, tc.display)
		}
		again, err := ParseOstree(r.String())
		if err != nil || again != r {
			t.Errorf("display form %q parses as %+v, %v", r.String(), again, err)
		}
	}
	for _, bad := range []string{"quay.io/x", "ostree-unverified-registry:", "ostree-remote-registry:quay.io/x", "ostree-remote-image::docker://x", "ostree-image-signed:quay.io/x", "ostree-whatever:docker://x"} {
		if _, err := ParseOstree(bad); err == nil {
			t.Errorf("ParseOstree(%q) accepted", bad)
		}
	}
}

func TestFromTransport(t *testing.T) {
	for _, tc := range []struct{ transport, name, want string }{
		{"", "quay.io/fedora/fedora-bootc:42", "docker://quay.io/fedora/fedora-bootc:42"},
		{"registry", "127.0.0.1:5000/os:1", "docker://127.0.0.1:5000/os:1"},
		{"oci", "/var/tmp/layout:v2", "oci:/var/tmp/layout:v2"},
		{"oci-archive", "/tmp/os.tar", "oci-archive:/tmp/os.tar"},
		{"containers-storage", "localhost/os:1", "containers-storage:localhost/os:1"},
	} {
		r, err := FromTransport(tc.transport, tc.name)
		if err != nil || r.String() != tc.want {
			t.Errorf("FromTransport(%q, %q) = %q, %v; want %q", tc.transport, tc.name, r.String(), err, tc.want)
		}
	}
	if _, err := FromTransport("ftp", "x"); err == nil {
		t.Error("unknown transport accepted")
	}
}

func FuzzParseOstree(f *testing.F) {
	for _, s := range []string{"ostree-unverified-registry:a/b", "ostree-remote-image:r:oci:d:t", "ostree-image-signed:docker://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseOstree(s)
		if err != nil {
			return
		}
		again, err := ParseOstree(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseOstree(%q) = %+v, whose String %q parses as %+v, %v", s, r, r.String(), again, err)
		}
	})
}

func TestParseOrRegistry(t *testing.T) {
	for in, want := range map[string]Ref{
		"docker://127.0.0.1:5000/os": {Transport: Registry, Name: "127.0.0.1:5000/os"},
		"127.0.0.1:5000/os":          {Transport: Registry, Name: "127.0.0.1:5000/os"},
		"oci:/srv/layout":            {Transport: OCI, Name: "/srv/layout"},
		"quay.io/example/os:stable":  {Transport: Registry, Name: "quay.io/example/os:stable"},
	} {
		got, err := ParseOrRegistry(in)
		if err != nil || got != want {
			t.Errorf("ParseOrRegistry(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	if _, err := ParseOrRegistry("NOT A REF"); err == nil {
		t.Errorf("ParseOrRegistry accepted an invalid name")
	}
}
