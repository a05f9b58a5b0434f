package verify

import (
	"strings"
	"testing"

	"go.podman.io/image/v5/docker"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// FuzzPolicy parses arbitrary bytes as a policy and, for those that parse, selects the scope
// for a few references: nothing may panic, and the scope named must hold the requirements
// returned.
func FuzzPolicy(f *testing.F) {
	for _, seed := range []string{
		`{"default": [{"type": "reject"}]}`,
		`{"default": [{"type": "insecureAcceptAnything"}], "transports": {"docker": {"": [{"type": "reject"}]}}}`,
		`{"default": [{"type": "reject"}], "transports": {"docker": {"quay.io/fedora": [{"type": "sigstoreSigned", "keyData": "AAAA", "signedIdentity": {"type": "matchRepository"}}], "quay.io": [{"type": "insecureAcceptAnything"}]}}}`,
		`{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/k.gpg", "signedIdentity": {"type": "remapIdentity", "prefix": "quay.io", "signedPrefix": "example.com"}}]}`,
		`{"default": [{"type": "reject"}], "transports": {"oci": {"/srv": [{"type": "reject"}]}}}`,
		`{"default": [], "transports": {"docker": {"*.example.com": [{"type": "reject"}]}}}`,
	} {
		f.Add([]byte(seed))
	}
	var refs []types.ImageReference
	for _, s := range []string{"//quay.io/fedora/fedora:40", "//127.0.0.1:5000/os@sha256:" + strings.Repeat("a", 64), "//a.example.com/x"} {
		r, err := docker.ParseReference(s)
		if err != nil {
			f.Fatal(err)
		}
		refs = append(refs, r)
	}
	r, err := ocilayout.Transport.ParseReference("/srv/layout:tag")
	if err != nil {
		f.Fatal(err)
	}
	refs = append(refs, r)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := signature.NewPolicyFromBytes(data)
		if err != nil {
			return
		}
		for _, ref := range refs {
			scope, reqs := Scope(p, ref)
			AcceptsAnything(reqs)
			if scope == "default" {
				if len(reqs) != len(p.Default) {
					t.Fatalf("scope default for %s but %d requirements, not the default's %d", ref.StringWithinTransport(), len(reqs), len(p.Default))
				}
				continue
			}
			transport, key, ok := strings.Cut(scope, ": ")
			if !ok || transport != ref.Transport().Name() {
				t.Fatalf("scope %q for %s", scope, ref.StringWithinTransport())
			}
			if key == `""` {
				key = ""
			}
			if got, ok := p.Transports[transport][key]; !ok || len(got) != len(reqs) {
				t.Fatalf("scope %q for %s does not hold the requirements returned", scope, ref.StringWithinTransport())
			}
		}
		pc, err := signature.NewPolicyContext(p)
		if err == nil {
			pc.Destroy()
		}
	})
}
