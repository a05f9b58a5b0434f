package transport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
)

// readAllRanges reads ranges of the first layer of the image at ref, and the whole blob.
func readAllRanges(t *testing.T, ref imgref.Ref, ranges []Range) ([][]byte, []byte, error) {
	t.Helper()
	ctx := context.Background()
	img, err := Read(ctx, ref, DefaultPlatform())
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	rr, ok := img.Image.(RangeReader)
	if !ok {
		t.Fatalf("%s: the image reads no ranges", ref)
	}
	m, _ := img.Manifest()
	desc := m.Layers[0]
	l, _ := img.LayerByDigest(desc.Digest)
	rc, _ := l.Compressed()
	blob, _ := io.ReadAll(rc)
	rc.Close()
	parts, err := rr.ReadRanges(ctx, desc, ranges)
	if err != nil {
		return nil, blob, err
	}
	defer parts.Close()
	var out [][]byte
	for {
		r, err := parts.Next()
		if err == io.EOF {
			return out, blob, nil
		}
		if err != nil {
			return out, blob, err
		}
		// Read only part of the second range: Next must skip the rest.
		if len(out) == 1 {
			b := make([]byte, 10)
			io.ReadFull(r, b)
			out = append(out, b)
			continue
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return out, blob, err
		}
		out = append(out, b)
	}
}

// TestReadRanges reads ranges of a blob from a real registry (one request, a multipart
// answer), from an OCI layout, and from go-containerregistry's registry, which answers one
// range of several (ErrNoRanges). Ranges out of order or out of the blob are refused before any request.
func TestReadRanges(t *testing.T) {
	img, err := random.Image(200000, 1)
	if err != nil {
		t.Fatal(err)
	}
	ranges := []Range{{Offset: 0, Length: 100}, {Offset: 5000, Length: 4000}, {Offset: 150000, Length: 30}}
	// writeAndCheck writes img to ref and reads the ranges back; it returns the blob.
	writeAndCheck := func(t *testing.T, ref imgref.Ref) []byte {
		t.Helper()
		if _, err := Write(context.Background(), img, ref); err != nil {
			t.Fatal(err)
		}
		got, blob, err := readAllRanges(t, ref, ranges)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || !bytes.Equal(got[0], blob[:100]) || !bytes.Equal(got[1], blob[5000:5010]) || !bytes.Equal(got[2], blob[150000:150030]) {
			t.Fatalf("got %d parts, not the bytes asked", len(got))
		}
		return blob
	}
	t.Run("registry", func(t *testing.T) {
		ref := registryRef(t, testutil.Registry(t)+"/ranges/img:1")
		blob := writeAndCheck(t, ref)
		_, _, err := readAllRanges(t, ref, []Range{{Offset: 5000, Length: 10}, {Offset: 0, Length: 10}})
		if err == nil {
			t.Fatal("ranges out of order were accepted")
		}
		_, _, err = readAllRanges(t, ref, []Range{{Offset: int64(len(blob)) - 5, Length: 10}})
		if err == nil {
			t.Fatal("a range past the blob's end was accepted")
		}
	})
	t.Run("oci", func(t *testing.T) {
		writeAndCheck(t, imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "oci"), Tag: "1"})
	})
	t.Run("no-ranges", func(t *testing.T) {
		reg := testutil.NewCountingRegistry(t)
		ref := registryRef(t, reg.Addr+"/ranges/img:1")
		if _, err := Write(context.Background(), img, ref); err != nil {
			t.Fatal(err)
		}
		// It answers the first range of several alone.
		_, _, err := readAllRanges(t, ref, ranges)
		if !errors.Is(err, ErrNoRanges) {
			t.Fatalf("err = %v, want ErrNoRanges", err)
		}
	})
}
