package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

func buildImage(t *testing.T) (*encapsulate.Image, ostree.Checksum) {
	t.Helper()
	ctx := context.Background()
	src := t.TempDir()
	for p, c := range map[string]string{"usr/bin/tool": "tool", "usr/etc/motd": "hello", "usr/etc/keep": "keep", "usr/lib/modules/6.1/vmlinuz": "kernel"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(c), 0o644)
	}
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "build"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitDir(ctx, src, ostree.WithBranch("os"), ostree.WithTimestamp(time.Unix(1700000000, 0)))
	if err != nil {
		t.Fatal(err)
	}
	img, err := encapsulate.Build(ctx, repo, "os", encapsulate.WithMaxLayers(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img, c
}

func tarLayer(t *testing.T, entries []tar.Header, content map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		h := h
		data := content[h.Name]
		h.Size = int64(len(data))
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		tw.WriteHeader(&h)
		tw.Write([]byte(data))
	}
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func commitPaths(t *testing.T, repo *ostree.Repo, c ostree.Checksum) string {
	t.Helper()
	var paths []string
	if err := repo.Walk(context.Background(), c, "/", ostree.WalkOptions{Recursive: true}, func(e *ostree.TreeEntry) error {
		paths = append(paths, e.Path)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(paths, " ")
}

func TestImportChunkedImage(t *testing.T) {
	ctx := context.Background()
	img, want := buildImage(t)
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "host"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(ctx, repo, img)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	if res.LayersFetched != len(layers) || res.LayersReused != 0 {
		t.Fatalf("first import: %+v, want %d layers fetched", res, len(layers))
	}
	// The image's commit is in, and the imported commit has its tree and records the image.
	base, err := repo.ReadCommit(want)
	if err != nil {
		t.Fatal(err)
	}
	got, err := repo.ReadCommit(res.Commit)
	if err != nil {
		t.Fatal(err)
	}
	if got.RootTree != base.RootTree || got.RootMeta != base.RootMeta {
		t.Fatalf("imported commit's tree %s/%s, want the image's %s/%s", got.RootTree, got.RootMeta, base.RootTree, base.RootMeta)
	}
	digest, _ := img.Digest()
	if v, _ := got.Metadata.String("ostree.manifest-digest"); v != digest.String() {
		t.Errorf("ostree.manifest-digest = %q, want %s", v, digest)
	}
	first := res.Commit
	rep, err := repo.Fsck(ctx)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("fsck after import: %+v %v", rep, err)
	}
	// A second pull finds every layer already there.
	res, err = Import(ctx, repo, img)
	if err != nil {
		t.Fatal(err)
	}
	if res.LayersFetched != 0 || res.LayersReused != len(layers) || res.Commit != first {
		t.Fatalf("second import: %+v, want the same commit %s with every layer reused", res, first)
	}
}

func TestImportDerivedLayer(t *testing.T) {
	ctx := context.Background()
	base, _ := buildImage(t)
	derived := tarLayer(t, []tar.Header{
		{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "etc/derived", Typeflag: tar.TypeReg},
		{Name: "etc/.wh.motd", Typeflag: tar.TypeReg},
		{Name: "etc/hostname", Typeflag: tar.TypeReg},
		{Name: "opt/vendor/app", Typeflag: tar.TypeReg},
		{Name: "usr/share/new", Typeflag: tar.TypeReg},
		{Name: "usr/share/new-link", Typeflag: tar.TypeLink, Linkname: "usr/share/new"},
		{Name: "tmp/scratch", Typeflag: tar.TypeReg},
	}, map[string]string{"etc/derived": "derived", "usr/share/new": "new", "opt/vendor/app": "app", "tmp/scratch": "x"})
	img, err := mutate.AppendLayers(base, derived)
	if err != nil {
		t.Fatal(err)
	}
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "host"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Import(ctx, repo, img)
	if err != nil {
		t.Fatal(err)
	}
	got := commitPaths(t, repo, res.Commit)
	has := map[string]bool{}
	for _, p := range strings.Fields(got) {
		has[p] = true
	}
	for _, want := range []string{"/usr/etc/derived", "/usr/etc/keep", "/usr/share/new", "/usr/share/new-link", "/usr/bin/tool"} {
		if !has[want] {
			t.Errorf("merged commit lacks %s: %s", want, got)
		}
	}
	// motd is whited out, /opt dropped, the empty hostname removed, /tmp's content dropped,
	// and /etc went to /usr/etc.
	for _, gone := range []string{"/usr/etc/motd", "/opt", "/usr/etc/hostname", "/tmp/scratch", "/tmp", "/etc"} {
		if has[gone] {
			t.Errorf("merged commit has %s: %s", gone, got)
		}
	}
	if strings.Contains(got, ".wh.") {
		t.Errorf("a whiteout marker was committed: %s", got)
	}
	commit, _ := repo.ReadCommit(res.Commit)
	digest, _ := img.Digest()
	if v, _ := commit.Metadata.String("ostree.manifest-digest"); v != digest.String() {
		t.Errorf("ostree.manifest-digest = %q, want %s", v, digest)
	}
	if v, _ := commit.Metadata.String("ostree.importer.version"); v == "" {
		t.Error("the merged commit does not record the importer")
	}
}

// An encapsulated image that lost its ostree.final-diffid label reads as all derived layers; its
// object store is not imported as files, and the error says what happened.
func TestImportRefusesNonOstreeImage(t *testing.T) {
	base, _ := buildImage(t)
	cf, _ := base.ConfigFile()
	cf = cf.DeepCopy()
	delete(cf.Config.Labels, ostreecontainer.LabelFinalDiffID)
	img, err := mutate.ConfigFile(base, cf)
	if err != nil {
		t.Fatal(err)
	}
	repo, _ := ostree.Init(context.Background(), filepath.Join(t.TempDir(), "host"), ostree.ModeBareUser)
	if _, err := Import(context.Background(), repo, img); err == nil || !strings.Contains(err.Error(), ostreecontainer.LabelFinalDiffID) {
		t.Fatalf("err = %v", err)
	}
}
