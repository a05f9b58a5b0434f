package sign

import (
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/image/v5/version"
)

// The payload is containers/image's, byte for byte: the same keys in the same order, the
// identity as given, the creator containers/image's version, the time in whole seconds.
func TestSigstorePayload(t *testing.T) {
	d := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0f", 32)}
	got, err := sigstorePayload("quay.io/os:1", d, time.Unix(1700000000, 999))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"critical":{"identity":{"docker-reference":"quay.io/os:1"},"image":{"docker-manifest-digest":"` + d.String() +
		`"},"type":"cosign container image signature"},"optional":{"creator":"containers/image ` + version.Version + `","timestamp":1700000000}}`
	if string(got) != want {
		t.Errorf("payload\n%s\nwant\n%s", got, want)
	}
}
