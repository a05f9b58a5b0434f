package transport

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrcompression "github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	ggcrtypes "github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"go.podman.io/image/v5/copy"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	cstorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage/pkg/reexec"

	"github.com/bootc-go/bootc/pkg/imgref"
)

func TestMain(m *testing.M) {
	if reexec.Init() { // containers-storage re-executes the test binary
		return
	}
	os.Exit(m.Run())
}

// ociImage is an OCI image of layers compressed with comp, each a tar of a few files; the first
// is 3 MiB uncompressed (gzip compresses it in several blocks).
func ociImage(t *testing.T, comp ggcrcompression.Compression, layers int) v1.Image {
	t.Helper()
	mt := ggcrtypes.OCILayer
	if comp == ggcrcompression.ZStd {
		mt = ggcrtypes.OCILayerZStd
	}
	img := mutate.MediaType(empty.Image, ggcrtypes.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, ggcrtypes.OCIConfigJSON)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range layers {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for j := range 3 {
			data := bytes.Repeat([]byte(fmt.Sprintf("layer %d file %d\n", i, j)), 1000*(j+1))
			if i == 0 && j == 0 {
				data = make([]byte, 3<<20)
				for k := range data {
					data[k] = "abcdefgh"[rng.IntN(8)]
				}
			}
			if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("l%d/f%d", i, j), Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
				t.Fatal(err)
			}
			tw.Write(data)
		}
		tw.Close()
		raw := b.Bytes()
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil },
			tarball.WithCompression(comp), tarball.WithMediaType(mt))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, MediaType: mt}); err != nil {
			t.Fatal(err)
		}
	}
	return forThisMachine(t, img)
}

// forThisMachine sets the image's platform to linux on this architecture.
func forThisMachine(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", DefaultPlatform().Architecture
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// copyImageLikeBefore is what writeContainersStorage and readContainersStorage did before they
// stopped linking containers/image's copy package: containers/image's copy.Image between an OCI
// layout and containers-storage, with default options. It is the oracle for the tests below.
func copyImageLikeBefore(t *testing.T, src, dst types.ImageReference) {
	t.Helper()
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Destroy()
	if _, err := copy.Image(t.Context(), pc, dst, src, &copy.Options{SourceCtx: &types.SystemContext{}, DestinationCtx: &types.SystemContext{}}); err != nil {
		t.Fatal(err)
	}
}

// storedManifest is the manifest containers-storage holds for name, and the image's ID.
func storedManifest(t *testing.T, name string) ([]byte, string) {
	t.Helper()
	ref, err := cstorage.Transport.ParseReference(name)
	if err != nil {
		t.Fatal(err)
	}
	src, err := ref.NewImageSource(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	raw, _, err := src.GetManifest(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, img, err := cstorage.ResolveReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	return raw, img.ID
}

// layoutBlobs reads an image from an OCI layout: its manifest, config and layers, raw.
func layoutBlobs(t *testing.T, img v1.Image) (manifest, config []byte, layers [][]byte) {
	t.Helper()
	manifest, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if config, err = img.RawConfigFile(); err != nil {
		t.Fatal(err)
	}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		layers = append(layers, compressedBytes(t, l))
	}
	return manifest, config, layers
}

// compressedBytes reads a layer's blob.
func compressedBytes(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Images written to containers-storage and read back from it: what the store holds is the image
// as written (manifest byte for byte, image ID from the config), and what is read back is the image
// containers/image's copy.Image made of it before: the layers recompressed with gzip, an OCI
// manifest (a Docker one converted), the same manifest digest, the same bytes. The image read back
// is valid (its layers hash to the config's diff IDs, which are the written image's).
func TestContainersStorageRoundTrip(t *testing.T) {
	store := t.TempDir()
	name := func(n string) string {
		return fmt.Sprintf("[vfs@%s+%s]localhost/%s:1", filepath.Join(store, "root"), filepath.Join(store, "run"), n)
	}
	dockerImage, err := random.Image(2<<20, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		img  v1.Image
	}{
		{"oci-gzip", ociImage(t, ggcrcompression.GZip, 3)},
		{"oci-zstd", ociImage(t, ggcrcompression.ZStd, 3)},
		{"docker-schema2", forThisMachine(t, dockerImage)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			img := tc.img
			comp := tc.name
			want, err := img.RawManifest()
			if err != nil {
				t.Fatal(err)
			}
			cfgName, err := img.ConfigName()
			if err != nil {
				t.Fatal(err)
			}
			ours := imgref.Ref{Transport: imgref.ContainersStorage, Name: name("ours-" + comp)}
			if _, err := Write(ctx, img, ours, WithRegistries(Registries{TmpDir: t.TempDir()})); err != nil {
				t.Fatal(err)
			}
			got, id := storedManifest(t, ours.Name)
			if !bytes.Equal(got, want) || id != cfgName.Hex {
				t.Errorf("stored manifest %s\nimage ID %s; want the written manifest %s\nand ID %s", got, id, want, cfgName.Hex)
			}

			// The same image written by containers/image's copy from an OCI layout.
			layout := t.TempDir()
			if err := writeLayout(img, layout, "image"); err != nil {
				t.Fatal(err)
			}
			lref, err := ocilayout.NewReference(layout, "image")
			if err != nil {
				t.Fatal(err)
			}
			theirs := name("theirs-" + comp)
			sref, err := cstorage.Transport.ParseReference(theirs)
			if err != nil {
				t.Fatal(err)
			}
			copyImageLikeBefore(t, lref, sref)
			if m, theirID := storedManifest(t, theirs); !bytes.Equal(m, got) || theirID != id {
				t.Errorf("copy.Image stored manifest %s, image %s; we stored %s, image %s", m, theirID, got, id)
			}

			// Read back, by us and by containers/image's copy into a layout.
			back, err := Read(ctx, ours, linux, WithRegistries(Registries{TmpDir: t.TempDir()}))
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			if err := validate.Image(back); err != nil {
				t.Errorf("the image read back is not valid: %v", err)
			}
			out := t.TempDir()
			oref, err := ocilayout.NewReference(out, "image")
			if err != nil {
				t.Fatal(err)
			}
			copyImageLikeBefore(t, sref, oref)
			before, err := readLayout(out, "image", v1.Platform{})
			if err != nil {
				t.Fatal(err)
			}
			m1, c1, l1 := layoutBlobs(t, back)
			m2, c2, l2 := layoutBlobs(t, before)
			if !bytes.Equal(m1, m2) {
				t.Errorf("read back manifest\n%s\ncopy.Image gave\n%s", m1, m2)
			}
			if cfg, _ := img.RawConfigFile(); !bytes.Equal(c1, c2) || (!bytes.Equal(c1, cfg) && !strings.HasPrefix(tc.name, "docker")) {
				t.Errorf("config read back %s, by copy.Image %s; written %s (kept unless converted to OCI)", c1, c2, cfg)
			}
			if len(l1) != len(l2) {
				t.Fatalf("%d layers read back, %d by copy.Image", len(l1), len(l2))
			}
			for i := range l1 {
				if !bytes.Equal(l1[i], l2[i]) {
					t.Errorf("layer %d read back differs from copy.Image's (%d and %d bytes)", i, len(l1[i]), len(l2[i]))
				}
			}
			if m, _ := back.Manifest(); m.Layers[0].MediaType != ggcrtypes.OCILayer {
				t.Errorf("layers read back have media type %s, want gzip", m.Layers[0].MediaType)
			}
		})
	}
}
