package sign_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sign"
	"github.com/bootc-go/bootc/pkg/transport"
)

// TestSignRegistries: Sign reaches the registry with the caller's configuration: over plain HTTP
// for a name that is not loopback (through a proxy that refuses HTTPS) only when registries.conf
// says insecure = true, and never to a blocked registry.
func TestSignRegistries(t *testing.T) {
	ctx := t.Context()
	r := testutil.NewCountingRegistry(t)
	priv, _ := keyPair(t, "")
	s, err := sign.LoadKey(priv, []byte{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	insecure := transport.Registries{ConfPath: testutil.RegistriesConf(t, "[[registry]]\nlocation = \"registry.invalid\"\ninsecure = true\n"), Proxy: r.Proxy, RegistriesDir: t.TempDir()}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := imgref.Ref{Transport: imgref.Registry, Name: "registry.invalid/os:1"}
	digest, err := transport.Write(ctx, img, ref, transport.WithRegistries(insecure))
	if err != nil {
		t.Fatal(err)
	}

	r.Reset()
	secure := insecure
	secure.ConfPath = testutil.RegistriesConf(t, "")
	if err := s.Sign(ctx, ref, digest, secure); err == nil {
		t.Error("signed over plain HTTP without insecure = true")
	}
	if got := r.Requests(); len(got) != 0 || r.Connects() == 0 {
		t.Errorf("without insecure = true: plain requests %q, %d HTTPS attempts; want none and some", got, r.Connects())
	}

	r.Reset()
	blocked := insecure
	blocked.ConfPath = testutil.RegistriesConf(t, "[[registry]]\nlocation = \"registry.invalid\"\nblocked = true\n")
	if err := s.Sign(ctx, ref, digest, blocked); !errors.Is(err, transport.ErrBlocked) {
		t.Errorf("blocked: %v; want ErrBlocked", err)
	}
	if got := r.Requests(); len(got) != 0 || r.Connects() != 0 {
		t.Errorf("a blocked registry got requests: %q, %d CONNECT", got, r.Connects())
	}

	r.Reset()
	if err := s.Sign(ctx, ref, digest, insecure); err != nil {
		t.Fatal(err)
	}
	sigTag := fmt.Sprintf("PUT registry.invalid/v2/os/manifests/%s-%s.sig", digest.Algorithm, digest.Hex)
	if got := r.Requests(); !slices.Contains(got, sigTag) {
		t.Errorf("requests %q; want %q", got, sigTag)
	}
}
