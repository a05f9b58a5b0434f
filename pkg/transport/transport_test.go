package transport

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bootc-go/bootc/pkg/imgref"
)

var linux = v1.Platform{OS: "linux", Architecture: "amd64"}

func TestLayoutAndArchiveRoundTrip(t *testing.T) {
	ctx := context.Background()
	img, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	dir := t.TempDir()
	for _, ref := range []imgref.Ref{
		{Transport: imgref.OCI, Name: filepath.Join(dir, "layout"), Tag: "v1"},
		{Transport: imgref.OCI, Name: filepath.Join(dir, "layout")},
		{Transport: imgref.OCIArchive, Name: filepath.Join(dir, "img.tar"), Tag: "v1"},
	} {
		// Written twice: the second replaces the first under the same tag.
		for i := 0; i < 2; i++ {
			if _, err := Write(ctx, img, ref); err != nil {
				t.Fatalf("%s: %v", ref, err)
			}
		}
		got, err := Read(ctx, ref, linux)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		d, _ := got.Digest()
		got.Close()
		if d != want {
			t.Errorf("%s: read back %s, wrote %s", ref, d, want)
		}
	}
	if _, err := Read(ctx, imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(dir, "layout"), Tag: "nope"}, linux); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: %v", err)
	}
	if _, err := Read(ctx, imgref.Ref{Transport: imgref.OCIArchive, Name: filepath.Join(dir, "none.tar")}, linux); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing archive: %v", err)
	}
	// The archive is reproducible: the same image gives the same bytes.
	a2 := filepath.Join(dir, "again.tar")
	if _, err := Write(ctx, img, imgref.Ref{Transport: imgref.OCIArchive, Name: a2, Tag: "v1"}); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(filepath.Join(dir, "img.tar"))
	b2, _ := os.ReadFile(a2)
	if !bytes.Equal(b1, b2) {
		t.Error("two archives of the same image differ")
	}
}
