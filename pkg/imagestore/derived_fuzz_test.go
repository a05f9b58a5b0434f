package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// FuzzDerivedLayer pulls a tiny bootable image with arbitrary bytes as a derived layer (filtered,
// committed, merged over the base): it must fail cleanly or give a merged tree without whiteout
// markers or top-level entries an ostree host does not keep, and never write outside the
// repository's directory (nor at the path the seeds' symlinks point to).
func FuzzDerivedLayer(f *testing.F) {
	ctx := context.Background()
	dir := f.TempDir()
	outside := filepath.Join(f.TempDir(), "outside")
	src := filepath.Join(dir, "src")
	for p, c := range map[string]string{"usr/bin/tool": "tool", "usr/etc/motd": "hello", "usr/lib/modules/6.1/vmlinuz": "kernel", "var/lib/x": "x"} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(src, p), []byte(c), 0o644)
	}
	os.Symlink(outside, filepath.Join(src, "usr/link"))
	build, err := ostree.Init(ctx, filepath.Join(dir, "build"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		f.Fatal(err)
	}
	if _, err := build.CommitDir(ctx, src, ostree.WithBranch("os"), ostree.WithTimestamp(time.Unix(1700000000, 0))); err != nil {
		f.Fatal(err)
	}
	base, err := encapsulate.Build(ctx, build, "os", encapsulate.WithMaxLayers(3))
	if err != nil {
		f.Fatal(err)
	}
	defer base.Close()
	home := filepath.Join(dir, "home")
	os.Mkdir(home, 0o755)
	repo, err := ostree.Init(ctx, filepath.Join(home, "repo"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		f.Fatal(err)
	}
	// The base has usr and var; derived layers may add the directories an ostree host keeps.
	keep := map[string]bool{"usr": true, "var": true, "run": true, "tmp": true, "proc": true, "sys": true, "dev": true}

	seed := func(write func(tw *tar.Writer)) {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		write(tw)
		tw.Close()
		f.Add(buf.Bytes())
	}
	seed(func(tw *tar.Writer) {
		entry(tw, tar.Header{Name: "etc/foo", Typeflag: tar.TypeReg}, "foo")
		entry(tw, tar.Header{Name: "usr/bin/.wh.tool", Typeflag: tar.TypeReg}, "")
		entry(tw, tar.Header{Name: "opt/x", Typeflag: tar.TypeReg}, "x")
		entry(tw, tar.Header{Name: "var/lib/.wh..wh..opq", Typeflag: tar.TypeReg}, "")
	})
	seed(func(tw *tar.Writer) {
		entry(tw, tar.Header{Name: "usr/evil", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
		entry(tw, tar.Header{Name: "usr/evil/file", Typeflag: tar.TypeReg}, "x")
		entry(tw, tar.Header{Name: "usr/link/file", Typeflag: tar.TypeReg}, "x")
		entry(tw, tar.Header{Name: "usr/hard", Typeflag: tar.TypeLink, Linkname: "usr/evil/file"}, "")
	})
	seed(func(tw *tar.Writer) {
		entry(tw, tar.Header{Name: "../x", Typeflag: tar.TypeReg}, "x")
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			t.Skip()
		}
		img, err := mutate.AppendLayers(base, layer)
		if err != nil {
			t.Skip()
		}
		res, err := Import(ctx, repo, img)
		if ents, _ := os.ReadDir(home); len(ents) != 1 {
			t.Fatalf("the pull wrote beside the repository: %v", ents)
		}
		if _, err := os.Lstat(outside); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the pull wrote %s", outside)
		}
		if err != nil {
			return
		}
		err = repo.Walk(ctx, res.Commit, "/", ostree.WalkOptions{Recursive: true}, func(e *ostree.TreeEntry) error {
			name := e.Path[strings.LastIndexByte(e.Path, '/')+1:]
			if strings.HasPrefix(name, ostree.WhiteoutPrefix) {
				t.Errorf("merged tree has the whiteout marker %s", e.Path)
			}
			if top, _, _ := strings.Cut(strings.TrimPrefix(e.Path, "/"), "/"); top != "" && !keep[top] {
				t.Errorf("merged tree has %s", e.Path)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
