package imagestore

import (
	"archive/tar"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// FlattenTo applies layers in order: whiteouts remove lower files and directories, an opaque
// whiteout empties a directory, a later layer's file replaces a directory, special files are
// skipped, and no marker is checked out.
func TestFlattenTo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the checkout sets owners: needs root")
	}
	ctx := t.Context()
	lower := tarLayer(t, []tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/a", Typeflag: tar.TypeReg}, {Name: "etc/b", Typeflag: tar.TypeReg},
		{Name: "var/cache/x/1", Typeflag: tar.TypeReg}, {Name: "opt/d/f", Typeflag: tar.TypeReg},
		{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
	}, map[string]string{"etc/a": "a", "etc/b": "b", "var/cache/x/1": "1", "opt/d/f": "f"})
	upper := tarLayer(t, []tar.Header{
		{Name: "etc/.wh.a", Typeflag: tar.TypeReg}, {Name: "var/cache/.wh..wh..opq", Typeflag: tar.TypeReg},
		{Name: "var/cache/new", Typeflag: tar.TypeReg}, {Name: "opt/d", Typeflag: tar.TypeReg},
	}, map[string]string{"var/cache/new": "n", "opt/d": "now a file"})
	img, err := mutate.AppendLayers(empty.Image, lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	img, err = mutate.CreatedAt(img, v1.Time{Time: created})
	if err != nil {
		t.Fatal(err)
	}
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "repo"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "rootfs")
	got, err := FlattenTo(ctx, repo, img, dest)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Equal(created) {
		t.Errorf("created %s, want %s", got, created)
	}
	var paths []string
	filepath.Walk(dest, func(p string, _ os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dest, p)
		paths = append(paths, rel)
		return err
	})
	sort.Strings(paths)
	want := ". etc etc/b opt opt/d var var/cache var/cache/new" // dev/null skipped, and dev with it
	if strings.Join(paths, " ") != want {
		t.Errorf("flattened:\n%s\nwant\n%s", strings.Join(paths, " "), want)
	}
	if data, err := os.ReadFile(filepath.Join(dest, "opt/d")); err != nil || string(data) != "now a file" {
		t.Errorf("opt/d = %q, %v", data, err)
	}
}
