package updategraph

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
)

func TestIndexRef(t *testing.T) {
	for _, tc := range []struct{ repo, stream, want string }{
		{"docker://127.0.0.1:5000/os:v1", "stable", "docker://127.0.0.1:5000/os:releases-stable"},
		{"docker://127.0.0.1:5000/os@sha256:" + payload(1)[len(payload(1))-64:], "next", "docker://127.0.0.1:5000/os:releases-next"},
		{"oci:/srv/os:v1", "stable", "oci:/srv/os:releases-stable"},
		{"oci-archive:/srv/os.tar", "stable", ""},
		{"docker://127.0.0.1:5000/os", "-bad", ""},
		{"docker://127.0.0.1:5000/os", "a/b", ""},
	} {
		ref, err := imgref.Parse(tc.repo)
		if err != nil {
			t.Fatal(err)
		}
		got, err := IndexRef(ref, tc.stream)
		if tc.want == "" {
			if err == nil {
				t.Errorf("IndexRef(%s, %s) = %s, want an error", tc.repo, tc.stream, got)
			}
			continue
		}
		if err != nil || got.String() != tc.want {
			t.Errorf("IndexRef(%s, %s) = %s, %v; want %s", tc.repo, tc.stream, got, err, tc.want)
		}
	}
}

// The index goes to the real registry and to an oci: layout and comes back the same, with the
// same digest for the same index; a stream without one is ErrNoIndex, and an image under the
// tag is refused.
func TestIndexRoundTrip(t *testing.T) {
	ctx := context.Background()
	for name, repo := range map[string]string{
		"registry":   "docker://" + testutil.Registry(t) + "/os",
		"oci layout": "oci:" + filepath.Join(t.TempDir(), "layout"),
	} {
		t.Run(name, func(t *testing.T) {
			ref, err := imgref.Parse(repo)
			if err != nil {
				t.Fatal(err)
			}
			idx := index(rel("v1", "r"), rel("v2", "rb"), rel("v3", ""))
			d1, err := WriteIndex(ctx, ref, idx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ReadIndex(ctx, ref, "stable")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, idx) {
				t.Errorf("read back %+v, want %+v", got, idx)
			}
			if d2, err := WriteIndex(ctx, ref, got); err != nil || d2 != d1 {
				t.Errorf("rewriting the same index gave digest %s (%v), want %s", d2, err, d1)
			}
			if _, err := ReadIndex(ctx, ref, "testing"); !errors.Is(err, ErrNoIndex) {
				t.Errorf("missing stream: %v, want ErrNoIndex", err)
			}
			g, err := NewRegistrySource(ref).Graph(ctx, Query{Stream: "stable", Basearch: "x86_64", Wariness: ptr(1.0), Now: time.Unix(10, 0)})
			if err != nil || len(g.Nodes) != 3 || len(g.Edges) != 1 { // v3 has no rollout: no edges
				t.Errorf("registry source graph %+v, %v", g, err)
			}
			img, err := random.Image(64, 1)
			if err != nil {
				t.Fatal(err)
			}
			other, _ := IndexRef(ref, "odd")
			if _, err := transport.Write(ctx, img, other); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadIndex(ctx, ref, "odd"); !errors.Is(err, ErrInvalidIndex) {
				t.Errorf("an image under the index tag: %v, want ErrInvalidIndex", err)
			}
		})
	}
}

// A multi-platform image's release is its index, by the index's digest, so that it serves every
// architecture; the version comes from this platform's image.
func TestResolveReleaseMultiPlatform(t *testing.T) {
	reg := testutil.Registry(t)
	var adds []mutate.IndexAddendum
	for _, arch := range []string{"amd64", "arm64", "riscv64"} {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Config(img, v1.Config{Labels: map[string]string{VersionLabel: "42." + arch}}); err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	multi := mutate.AppendManifests(empty.Index, adds...)
	tag, err := name.ParseReference(reg+"/os:42", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, multi); err != nil {
		t.Fatal(err)
	}
	want, _ := multi.Digest()
	ref, _ := imgref.Parse("docker://" + reg + "/os:42")
	rel, err := ResolveRelease(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if rel.Payload != reg+"/os@"+want.String() || rel.Version != "42."+transport.DefaultPlatform().Architecture {
		t.Errorf("release %+v, want payload %s/os@%s and this platform's version", rel, reg, want)
	}
}
