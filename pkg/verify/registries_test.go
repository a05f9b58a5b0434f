package verify

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	bootcsign "github.com/bootc-go/bootc/pkg/sign"
	"github.com/bootc-go/bootc/pkg/transport"
)

// TestVerifyRegistries: Verify reads the image and its signatures with Options.Registries: through
// a registries.conf mirror, over plain HTTP only where `insecure = true` says so (a name that
// is not loopback, reached through a proxy that refuses HTTPS, or a loopback mirror of it), and
// not at all from a blocked registry.
func TestVerifyRegistries(t *testing.T) {
	ctx := t.Context()
	r := testutil.NewCountingRegistry(t)
	k := newKeyPair(t, t.TempDir(), "k")
	viaProxy := transport.Registries{ConfPath: testutil.RegistriesConf(t, "[[registry]]\nlocation = \"registry.invalid\"\ninsecure = true\n"), Proxy: r.Proxy}
	img, err := random.Image(1024, 2)
	if err != nil {
		t.Fatal(err)
	}
	target := imgref.Ref{Transport: imgref.Registry, Name: "registry.invalid/os:1"}
	digest, err := transport.Write(ctx, img, target, transport.WithRegistries(viaProxy))
	if err != nil {
		t.Fatal(err)
	}
	s, err := bootcsign.LoadKey(k.priv, []byte("pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Sign(ctx, target, digest, viaProxy); err != nil {
		t.Fatal(err)
	}
	policy := writePolicy(t, fmt.Sprintf(`{"default": [{"type": "reject"}], "transports": {"docker": {"registry.invalid/os": [%s]}}}`, sigstoreReq(k.pub, matchRepository)))
	ref := signedRef(t, "docker://registry.invalid/os:1")
	mirror := func(insecure bool) string {
		return testutil.RegistriesConf(t, fmt.Sprintf("[[registry]]\nprefix = \"registry.invalid/os\"\nlocation = \"registry.invalid/os\"\n[[registry.mirror]]\nlocation = \"%s/os\"\ninsecure = %v\n", r.Addr, insecure))
	}
	for _, tc := range []struct {
		name string
		reg  transport.Registries
		ok   bool
		// host is the host the registry saw in the requests when ok.
		host    string
		blocked bool
	}{
		{name: "proxy, insecure", reg: viaProxy, ok: true, host: "registry.invalid"},
		{name: "proxy, not insecure", reg: transport.Registries{ConfPath: testutil.RegistriesConf(t, ""), Proxy: r.Proxy}},
		{name: "loopback mirror, insecure", reg: transport.Registries{ConfPath: mirror(true)}, ok: true, host: r.Addr},
		{name: "loopback mirror, not insecure", reg: transport.Registries{ConfPath: mirror(false)}},
		{name: "blocked", reg: transport.Registries{ConfPath: testutil.RegistriesConf(t, "[[registry]]\nlocation = \"registry.invalid\"\nblocked = true\n"), Proxy: r.Proxy}, blocked: true},
		{name: "blocked, with a mirror", reg: transport.Registries{ConfPath: testutil.RegistriesConf(t, fmt.Sprintf("[[registry]]\nprefix = \"registry.invalid/os\"\nlocation = \"registry.invalid/os\"\nblocked = true\n[[registry.mirror]]\nlocation = \"%s/os\"\ninsecure = true\n", r.Addr))}, blocked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Reset()
			tc.reg.RegistriesDir = t.TempDir()
			v, err := Verify(ctx, ref, Options{PolicyPath: policy, Registries: tc.reg})
			requests := r.Requests()
			switch {
			case tc.ok:
				if err != nil {
					t.Fatal(err)
				}
				if v.Digest != digest {
					t.Errorf("verified %s; want %s", v.Digest, digest)
				}
				if len(requests) == 0 || !strings.HasPrefix(requests[0], "GET "+tc.host+"/v2/") {
					t.Errorf("requests %q; want them to %s", requests, tc.host)
				}
			case tc.blocked:
				if !errors.Is(err, transport.ErrBlocked) {
					t.Errorf("err = %v; want ErrBlocked", err)
				}
				if len(requests) != 0 || r.Connects() != 0 {
					t.Errorf("a blocked registry got requests: %q, %d CONNECT", requests, r.Connects())
				}
			default:
				if err == nil {
					t.Fatal("verified over plain HTTP without insecure = true")
				}
				if len(requests) != 0 {
					t.Errorf("plain HTTP requests without insecure = true: %q", requests)
				}
			}
		})
	}
}
