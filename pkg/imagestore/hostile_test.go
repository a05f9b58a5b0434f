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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

// Hostile images: each is refused with an error naming the problem, nothing is written outside
// the repository (which lives alone in a directory), no image ref is set, and fsck stays clean.

// outsideTarget is a path outside every test directory that a hostile layer aims at; the tests
// check it never appears.
func outsideTarget(t *testing.T) string {
	t.Helper()
	p := filepath.Join(os.TempDir(), "bootc-hostile-"+strings.ReplaceAll(t.Name(), "/", "-"))
	os.RemoveAll(p)
	t.Cleanup(func() { os.RemoveAll(p) })
	return p
}

// pullConfined pulls ref into a repository at dir/repo and checks that the pull wrote nothing but
// the repository, left it consistent, and (when it failed) set no image ref.
func pullConfined(t *testing.T, ref imgref.OstreeRef, outside string) (*ostree.Repo, *PullResult, error) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	repo, err := ostree.Init(ctx, filepath.Join(dir, "repo"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		t.Fatal(err)
	}
	res, pullErr := Pull(ctx, repo, ref, PullOptions{})
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "repo" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("the pull wrote beside the repository: %v", names)
	}
	if _, err := os.Lstat(outside); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the pull wrote %s outside the repository", outside)
	}
	if pullErr != nil {
		if _, err := repo.ReadRef(ostreecontainer.ImageRef(ref)); !errors.Is(err, ostree.ErrRefNotFound) {
			t.Errorf("a failed pull set the image ref: %v", err)
		}
	}
	fsckClean(t, repo)
	return repo, res, pullErr
}

// rawLayer makes a layer of tar entries written as given (names unchecked).
func rawLayer(t *testing.T, write func(tw *tar.Writer)) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write(tw)
	tw.Close()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func entry(tw *tar.Writer, h tar.Header, data string) {
	h.Size = int64(len(data))
	if h.Mode == 0 {
		h.Mode = 0o644
	}
	if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink || h.Typeflag == tar.TypeDir || h.Typeflag == tar.TypeChar || h.Typeflag == tar.TypeFifo {
		h.Size = 0
	}
	tw.WriteHeader(&h)
	tw.Write([]byte(data))
}

// derivedOn returns the fixture image with layers appended.
func derivedOn(t *testing.T, layers ...v1.Layer) v1.Image {
	t.Helper()
	base, _ := buildImage(t)
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// withObjectLayer replaces the fixture image's last chunk layer with l (an object layer), fixing
// the ostree.final-diffid label.
func withObjectLayer(t *testing.T, l v1.Layer) v1.Image {
	t.Helper()
	base, _ := buildImage(t)
	layers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return replaceLayer(t, base, len(layers)-1, func(v1.Layer) v1.Layer { return l })
}

// replaceLayer replaces layer i of base with what edit makes of it, fixing the
// ostree.final-diffid label when i is the last layer.
func replaceLayer(t *testing.T, base v1.Image, i int, edit func(v1.Layer) v1.Layer) v1.Image {
	t.Helper()
	layers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layers = append([]v1.Layer(nil), layers...)
	layers[i] = edit(layers[i])
	l := layers[len(layers)-1]
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	bcf, _ := base.ConfigFile()
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{}
	for k, v := range bcf.Config.Labels {
		cf.Config.Labels[k] = v
	}
	d, _ := l.DiffID()
	cf.Config.Labels[ostreecontainer.LabelFinalDiffID] = d.String()
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	return img
}

// skeleton writes the object store's directories, as every object layer has.
func skeleton(tw *tar.Writer) {
	for _, d := range []string{"sysroot/", "sysroot/ostree/", "sysroot/ostree/repo/", "sysroot/ostree/repo/objects/"} {
		entry(tw, tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}, "")
	}
}

func TestHostileImages(t *testing.T) {
	hello := ostree.ContentChecksum(&ostree.FileHeader{Mode: ostree.ModeRegular | 0o644}, []byte("hello\n")).String()
	cases := []struct {
		name string
		// image builds the image; outside is a path it must not create.
		image func(t *testing.T, outside string) v1.Image
		want  string
		is    error
	}{
		{"dotdot path", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "usr/../../../../" + strings.TrimPrefix(outside, "/"), Typeflag: tar.TypeReg}, "x")
			}))
		}, "'..' is not allowed", ErrBadLayer},
		{"hardlink to dotdot", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "usr/passwd", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}, "")
			}))
		}, "'..' is not allowed", ErrBadLayer},
		{"hardlink to absolute path", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "usr/passwd", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, "")
			}))
		}, "not an earlier file", ErrBadLayer},
		{"device node", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "usr/lib/sda", Typeflag: tar.TypeChar, Devmajor: 8}, "")
			}))
		}, "device nodes and FIFOs cannot be stored", ErrBadLayer},
		{"fifo", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "var/fifo", Typeflag: tar.TypeFifo}, "")
			}))
		}, "device nodes and FIFOs cannot be stored", ErrBadLayer},
		{"no kernel", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "usr/lib/modules/6.1/.wh.vmlinuz", Typeflag: tar.TypeReg}, "")
			}))
		}, "no regular file /usr/lib/modules/KVER/vmlinuz", ErrNotBootable},
		{"kernel is a symlink", func(t *testing.T, outside string) v1.Image {
			return derivedOn(t, rawLayer(t, func(tw *tar.Writer) {
				entry(tw, tar.Header{Name: "usr/lib/modules/6.1/vmlinuz", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
			}))
		}, "no regular file /usr/lib/modules/KVER/vmlinuz", ErrNotBootable},
		{"diff ID mismatch", func(t *testing.T, outside string) v1.Image {
			img := derivedOn(t, rawLayer(t, func(tw *tar.Writer) { entry(tw, tar.Header{Name: "usr/x", Typeflag: tar.TypeReg}, "x") }))
			cf, _ := img.ConfigFile()
			cf = cf.DeepCopy()
			cf.RootFS.DiffIDs[len(cf.RootFS.DiffIDs)-1] = v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
			img, err := mutate.ConfigFile(img, cf)
			if err != nil {
				t.Fatal(err)
			}
			return img
		}, "config diff ID", ErrDigestMismatch},
		{"object with a bad name", func(t *testing.T, outside string) v1.Image {
			return withObjectLayer(t, rawLayer(t, func(tw *tar.Writer) {
				skeleton(tw)
				entry(tw, tar.Header{Name: objectsPrefix + "zz/not-hex.file", Typeflag: tar.TypeReg}, "x")
			}))
		}, "not-hex.file", ErrBadLayer},
		{"object escaping the store", func(t *testing.T, outside string) v1.Image {
			return withObjectLayer(t, rawLayer(t, func(tw *tar.Writer) {
				skeleton(tw)
				entry(tw, tar.Header{Name: objectsPrefix + "../../../../" + strings.TrimPrefix(outside, "/"), Typeflag: tar.TypeReg}, "x")
			}))
		}, "not an object path", ErrBadLayer},
		{"corrupt object", func(t *testing.T, outside string) v1.Image {
			return withObjectLayer(t, rawLayer(t, func(tw *tar.Writer) {
				skeleton(tw)
				entry(tw, tar.Header{Name: objectsPrefix + hello[:2] + "/" + hello[2:] + ".file", Typeflag: tar.TypeReg}, "HELLO\n")
			}))
		}, "content hashes to", ErrBadLayer},
		{"objects missing", func(t *testing.T, outside string) v1.Image {
			// The chunk layer with the content objects is empty: the commit must not be
			// written, since fsck would find it broken.
			base, _ := buildImage(t)
			return replaceLayer(t, base, 1, func(v1.Layer) v1.Layer { return rawLayer(t, skeleton) })
		}, "is incomplete", ErrBadLayer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			outside := outsideTarget(t)
			ref := writeOCI(t, c.image(t, outside), filepath.Join(t.TempDir(), "oci"), "")
			_, _, err := pullConfined(t, ref, outside)
			t.Log(err)
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %q (%v)", err, c.want, c.is)
			}
		})
	}
}

// Blobs damaged in an oci: layout after it was written are refused, naming the layer, the
// expected and the actual digest; a truncated blob is reported as such.
func TestDamagedBlobs(t *testing.T) {
	for _, c := range []struct {
		name   string
		damage func(path string) error
		want   []string
		is     error
	}{
		{"flipped byte", func(p string) error {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			data[len(data)/2] ^= 0xff
			return os.WriteFile(p, data, 0o644)
		}, []string{"layer 1 (sha256:", "expected sha256:", "got sha256:"}, ErrDigestMismatch},
		{"truncated", func(p string) error {
			st, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, st.Size()/2)
		}, []string{"layer 1 (sha256:", "truncated"}, nil},
		{"appended", func(p string) error {
			f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte("trailing"))
			return err
		}, []string{"layer 1 (sha256:", "longer than"}, ErrDigestMismatch},
	} {
		t.Run(c.name, func(t *testing.T) {
			img, _ := buildImage(t)
			dir := filepath.Join(t.TempDir(), "oci")
			ref := writeOCI(t, img, dir, "")
			m, _ := img.Manifest()
			if len(m.Layers) < 3 {
				t.Fatalf("the fixture image has %d layers", len(m.Layers))
			}
			if err := c.damage(filepath.Join(dir, "blobs", "sha256", m.Layers[1].Digest.Hex)); err != nil {
				t.Fatal(err)
			}
			_, _, err := pullConfined(t, ref, outsideTarget(t))
			t.Log(err)
			if err == nil || c.is != nil && !errors.Is(err, c.is) {
				t.Fatalf("err = %v, want %v", err, c.is)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want it to say %q", err, w)
				}
			}
		})
	}
}

// Accepted but confined: absolute names land inside the tree (as ostree-ext and container
// runtimes read them), a symlink may point anywhere, and a later entry under a symlinked
// directory replaces the symlink instead of going through it, in the same layer and across
// layers. Checking out the merged tree follows no symlink either.
func TestHostileButConfined(t *testing.T) {
	outside := outsideTarget(t)
	l1 := rawLayer(t, func(tw *tar.Writer) {
		entry(tw, tar.Header{Name: "/usr/share/abs", Typeflag: tar.TypeReg}, "abs")
		entry(tw, tar.Header{Name: "usr/evil", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
		entry(tw, tar.Header{Name: "usr/evil/file", Typeflag: tar.TypeReg}, "through")
		entry(tw, tar.Header{Name: "usr/later", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
		entry(tw, tar.Header{Name: "usr/dangling", Typeflag: tar.TypeSymlink, Linkname: outside}, "")
		entry(tw, tar.Header{Name: "usr/up", Typeflag: tar.TypeSymlink, Linkname: "../../../../.."}, "")
	})
	l2 := rawLayer(t, func(tw *tar.Writer) {
		entry(tw, tar.Header{Name: "usr/later/file", Typeflag: tar.TypeReg}, "through")
		entry(tw, tar.Header{Name: "usr/up/escaped", Typeflag: tar.TypeReg}, "through")
	})
	ref := writeOCI(t, derivedOn(t, l1, l2), filepath.Join(t.TempDir(), "oci"), "")
	repo, res, err := pullConfined(t, ref, outside)
	if err != nil {
		t.Fatal(err)
	}
	has := pathSet(t, repo, res.Image.Commit)
	for _, want := range []string{"/usr/share/abs", "/usr/evil/file", "/usr/later/file", "/usr/up/escaped", "/usr/dangling"} {
		if !has[want] {
			t.Errorf("merged tree lacks %s", want)
		}
	}
	// The dangling symlink stays a symlink to where it pointed.
	var target string
	repo.Walk(context.Background(), res.Image.Commit, "/usr/dangling", ostree.WalkOptions{Headers: true}, func(e *ostree.TreeEntry) error {
		target = e.Header.SymlinkTarget
		return nil
	})
	if target != outside {
		t.Errorf("usr/dangling -> %q, want %q", target, outside)
	}
	dest := filepath.Join(t.TempDir(), "checkout")
	if err := repo.Checkout(context.Background(), res.Image.Commit.String(), dest, ostree.WithUserMode()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(outside); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("checking out the merged tree wrote %s", outside)
	}
	if data, err := os.ReadFile(filepath.Join(dest, "usr/evil/file")); err != nil || string(data) != "through" {
		t.Fatalf("usr/evil/file: %q %v", data, err)
	}
}

// A layer compressed with zstd, and an uncompressed one, are read and verified like gzip ones.
func TestPullCompressions(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	entry(tw, tar.Header{Name: "usr/share/zstd", Typeflag: tar.TypeReg}, "z")
	tw.Close()
	zl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithCompression("zstd"), tarball.WithMediaType(types.OCILayerZStd))
	if err != nil {
		t.Fatal(err)
	}
	var buf2 bytes.Buffer
	tw = tar.NewWriter(&buf2)
	entry(tw, tar.Header{Name: "usr/share/plain", Typeflag: tar.TypeReg}, "p")
	tw.Close()
	pl, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf2.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.Append(derivedOn(t, zl), mutate.Addendum{Layer: uncompressed{pl}, MediaType: "application/vnd.oci.image.layer.v1.tar"})
	if err != nil {
		t.Fatal(err)
	}
	ref := writeOCI(t, img, filepath.Join(t.TempDir(), "oci"), "")
	repo, res, err := pullConfined(t, ref, outsideTarget(t))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	if mt := m.Layers[len(m.Layers)-2].MediaType; !strings.HasSuffix(string(mt), "zstd") {
		t.Fatalf("the zstd layer has media type %s", mt)
	}
	has := pathSet(t, repo, res.Image.Commit)
	if !has["/usr/share/zstd"] || !has["/usr/share/plain"] {
		t.Fatalf("merged tree: %v", has)
	}
}

// uncompressed serves a layer's tar as its blob.
type uncompressed struct{ v1.Layer }

func (u uncompressed) Compressed() (io.ReadCloser, error) { return u.Layer.Uncompressed() }
func (u uncompressed) Digest() (v1.Hash, error)           { return u.Layer.DiffID() }
func (u uncompressed) Size() (int64, error) {
	rc, err := u.Layer.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}
