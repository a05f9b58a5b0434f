package imagestore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"github.com/bootc-go/bootc/pkg/transport"
)

// writeOCI stores img in an OCI layout under dir with tag, and returns its reference.
func writeOCI(t *testing.T, img v1.Image, dir, tag string) imgref.OstreeRef {
	t.Helper()
	ref := imgref.Ref{Transport: imgref.OCI, Name: dir, Tag: tag}
	if _, err := transport.Write(context.Background(), img, ref); err != nil {
		t.Fatal(err)
	}
	return imgref.OstreeRef{SigVerify: imgref.Unverified, Image: ref}
}

func newRepo(t *testing.T) *ostree.Repo {
	t.Helper()
	repo, err := ostree.Init(context.Background(), filepath.Join(t.TempDir(), "repo"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

func fsckClean(t *testing.T, repo *ostree.Repo) {
	t.Helper()
	rep, err := repo.Fsck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("fsck: %v", rep.Problems)
	}
}

func pathSet(t *testing.T, repo *ostree.Repo, c ostree.Checksum) map[string]bool {
	t.Helper()
	has := map[string]bool{}
	for _, p := range strings.Fields(commitPaths(t, repo, c)) {
		has[p] = true
	}
	return has
}

// Inspect, Pull, QueryImage and ImageStateOf on an ostree-container image in an oci: layout;
// a second pull of the same image fetches nothing.
func TestPullOCI(t *testing.T) {
	ctx := context.Background()
	img, base := buildImage(t)
	ref := writeOCI(t, img, filepath.Join(t.TempDir(), "oci"), "v1")
	repo := newRepo(t)
	plan, err := Inspect(ctx, repo, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	n, size := plan.ToFetch()
	if plan.Digest != digest || plan.Previous != nil || !plan.Changed() || n != len(plan.Layers) || size <= 0 {
		t.Fatalf("plan: digest %s (want %s), previous %v, to fetch %d layers %d bytes", plan.Digest, digest, plan.Previous, n, size)
	}
	if plan.Layers[0].Kind != LayerOstree || plan.Layers[1].Kind != LayerChunk {
		t.Fatalf("layer kinds: %+v", plan.Layers)
	}
	var last PullProgress
	calls := 0
	res, err := Pull(ctx, repo, ref, PullOptions{Jobs: 2, Progress: func(p PullProgress) { last = p; calls++ }})
	if err != nil {
		t.Fatal(err)
	}
	if res.LayersFetched != len(plan.Layers) || res.LayersReused != 0 || res.BytesFetched != size {
		t.Fatalf("pull: fetched %d layers %d bytes, reused %d; want %d layers %d bytes", res.LayersFetched, res.BytesFetched, res.LayersReused, len(plan.Layers), size)
	}
	if calls == 0 || last.Phase != "committing" || last.LayersDone != last.Layers || last.BytesDone != size {
		t.Errorf("progress: %d calls, last %+v", calls, last)
	}
	if c, err := repo.ReadRef(ostreecontainer.ImageRef(ref)); err != nil || c != res.Image.Commit {
		t.Fatalf("image ref: %s %v, want %s", c, err, res.Image.Commit)
	}
	bc, _ := repo.ReadCommit(base)
	mc, _ := repo.ReadCommit(res.Image.Commit)
	if mc.RootTree != bc.RootTree {
		t.Fatal("the merged commit of an image without derived layers has another tree than its ostree commit")
	}
	if c, err := repo.ReadRef(ostreecontainer.LayerRef(plan.Layers[0].DiffID)); err != nil || c != base {
		t.Fatalf("the ostree layer's ref names %s (%v), want the image's commit %s", c, err, base)
	}
	for _, key := range []string{ostreecontainer.MetaManifest, ostreecontainer.MetaImageConfig, ostreecontainer.MetaImporterVersion} {
		if _, ok := mc.Metadata.String(key); !ok {
			t.Errorf("merged commit lacks %s", key)
		}
	}
	if raw, _ := img.RawConfigFile(); func() string { s, _ := mc.Metadata.String(ostreecontainer.MetaImageConfig); return s }() != string(raw) {
		t.Error("ostree.container.image-config is not the raw config")
	}
	st, err := QueryImage(repo, ref)
	if err != nil {
		t.Fatal(err)
	}
	if st.Commit != res.Image.Commit || st.Digest != digest || st.Config == nil || st.Manifest == nil || len(st.Manifest.Layers) != len(plan.Layers) {
		t.Fatalf("QueryImage: %+v", st)
	}
	if !st.Created.Equal(plan.Created) || st.Version != plan.Version {
		t.Errorf("QueryImage: created %v version %q, plan %v %q", st.Created, st.Version, plan.Created, plan.Version)
	}
	if _, err := ImageStateOf(repo, base); err == nil {
		t.Error("ImageStateOf accepted a commit without ostree.manifest-digest")
	}
	fsckClean(t, repo)

	// Unchanged: nothing to fetch, the same commit.
	plan, err = Inspect(ctx, repo, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := plan.ToFetch(); plan.Changed() || n != 0 || plan.Previous.Commit != res.Image.Commit {
		t.Fatalf("second inspect: changed %v, %d to fetch", plan.Changed(), n)
	}
	res2, err := Pull(ctx, repo, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.LayersFetched != 0 || res2.BytesFetched != 0 || res2.Image.Commit != res.Image.Commit {
		t.Fatalf("second pull: %+v", res2)
	}
	other := imgref.OstreeRef{Image: imgref.Ref{Transport: imgref.OCI, Name: "/nonexistent"}}
	if _, err := QueryImage(repo, other); !errors.Is(err, ErrImageNotPulled) {
		t.Fatalf("QueryImage of an image never pulled: %v", err)
	}
}

// plainImage is a container image without ostree layers: a base layer with a kernel and a second
// layer.
func plainImage(t *testing.T, kernel bool) v1.Image {
	t.Helper()
	files := []tar.Header{
		{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "usr/bin/sh", Typeflag: tar.TypeReg, Mode: 0o755},
		{Name: "bin", Typeflag: tar.TypeSymlink, Linkname: "usr/bin"},
		{Name: "etc/os-release", Typeflag: tar.TypeReg},
		{Name: "opt/app/run", Typeflag: tar.TypeReg},
		{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777},
		{Name: "tmp/junk", Typeflag: tar.TypeReg},
		{Name: "sysroot/", Typeflag: tar.TypeDir, Mode: 0o755},
	}
	if kernel {
		files = append(files, tar.Header{Name: "usr/lib/modules/6.1/vmlinuz", Typeflag: tar.TypeReg})
	}
	l1 := tarLayer(t, files, map[string]string{"usr/bin/sh": "sh", "etc/os-release": "ID=test", "opt/app/run": "app", "usr/lib/modules/6.1/vmlinuz": "kernel"})
	l2 := tarLayer(t, []tar.Header{
		{Name: "etc/.wh.os-release", Typeflag: tar.TypeReg},
		{Name: "etc/motd", Typeflag: tar.TypeReg},
	}, map[string]string{"etc/motd": "hi"})
	img, err := mutate.AppendLayers(empty.Image, l1, l2)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.Config.Labels = map[string]string{"containers.bootc": "1", "version": "42"}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// An image without ostree layers is all derived over an empty root: top-level directories other
// than those an ostree host manages are kept.
func TestPullPlainImage(t *testing.T) {
	ctx := context.Background()
	ref := writeOCI(t, plainImage(t, true), filepath.Join(t.TempDir(), "oci"), "")
	repo := newRepo(t)
	res, err := Pull(ctx, repo, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	has := pathSet(t, repo, res.Image.Commit)
	for _, want := range []string{"/usr/bin/sh", "/bin", "/usr/etc/motd", "/opt/app/run", "/tmp", "/sysroot", "/usr/lib/modules/6.1/vmlinuz"} {
		if !has[want] {
			t.Errorf("merged tree lacks %s: %v", want, has)
		}
	}
	for _, gone := range []string{"/usr/etc/os-release", "/tmp/junk", "/etc", "/usr/etc/.wh.os-release"} {
		if has[gone] {
			t.Errorf("merged tree has %s", gone)
		}
	}
	if res.Image.Version != "42" {
		t.Errorf("version %q, want the version label", res.Image.Version)
	}
	for _, l := range res.Plan.Layers {
		if l.Kind != LayerDerived {
			t.Errorf("layer %s is %s, want derived", l.Digest, l.Kind)
		}
		if _, err := repo.ReadRef(ostreecontainer.LayerRef(l.DiffID)); err != nil {
			t.Errorf("derived layer not recorded: %v", err)
		}
	}
	fsckClean(t, repo)
	// The derived layers are reused; the merge gives the same commit.
	if err := repo.DeleteRef(ostreecontainer.ImageRef(ref)); err != nil {
		t.Fatal(err)
	}
	res2, err := Pull(ctx, repo, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res2.LayersFetched != 0 || res2.LayersReused != 2 || res2.Image.Commit != res.Image.Commit {
		t.Fatalf("re-pull: %+v", res2)
	}
}

func TestPullNotBootable(t *testing.T) {
	ctx := context.Background()
	ref := writeOCI(t, plainImage(t, false), filepath.Join(t.TempDir(), "oci"), "")
	repo := newRepo(t)
	_, err := Pull(ctx, repo, ref, PullOptions{})
	if !errors.Is(err, ErrNotBootable) || !strings.Contains(err.Error(), "/usr/lib/modules/KVER/vmlinuz") || !strings.Contains(err.Error(), "containers.bootc=1") {
		t.Fatalf("err = %v", err)
	}
	if _, err := repo.ReadRef(ostreecontainer.ImageRef(ref)); !errors.Is(err, ostree.ErrRefNotFound) {
		t.Fatalf("image ref set for an unbootable image: %v", err)
	}
	fsckClean(t, repo)
}

// GC keeps the images asked for and their layers, and drops the rest (refs only).
func TestGC(t *testing.T) {
	ctx := context.Background()
	repo := newRepo(t)
	img, _ := buildImage(t)
	a := writeOCI(t, img, filepath.Join(t.TempDir(), "a"), "")
	b := writeOCI(t, plainImage(t, true), filepath.Join(t.TempDir(), "b"), "")
	ra, err := Pull(ctx, repo, a, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := Pull(ctx, repo, b, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Keeping both (one by commit, one by reference) removes nothing.
	st, err := GC(ctx, repo, []ostree.Checksum{ra.Image.Commit}, []imgref.OstreeRef{b})
	if err != nil || st.Images != 0 || st.Layers != 0 {
		t.Fatalf("GC keeping both: %+v %v", st, err)
	}
	st, err = GC(ctx, repo, []ostree.Checksum{rb.Image.Commit}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Images != 1 || st.Layers != len(ra.Plan.Layers) {
		t.Fatalf("GC: %+v, want 1 image and %d layers", st, len(ra.Plan.Layers))
	}
	if _, err := QueryImage(repo, a); !errors.Is(err, ErrImageNotPulled) {
		t.Fatalf("image a still there: %v", err)
	}
	for _, l := range rb.Plan.Layers {
		if _, err := repo.ReadRef(ostreecontainer.LayerRef(l.DiffID)); err != nil {
			t.Errorf("kept image's layer ref gone: %v", err)
		}
	}
	if _, err := QueryImage(repo, b); err != nil {
		t.Fatal(err)
	}
}

// countingImage records how many layer blobs are open at once.
type countingImage struct {
	v1.Image
	mu           sync.Mutex
	active, most int
	opened       int
}

func (c *countingImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := c.Image.LayerByDigest(h)
	return countingLayer{l, c}, err
}

type countingLayer struct {
	v1.Layer
	c *countingImage
}

func (l countingLayer) Compressed() (io.ReadCloser, error) {
	rc, err := l.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	l.c.mu.Lock()
	l.c.active++
	l.c.opened++
	l.c.most = max(l.c.most, l.c.active)
	l.c.mu.Unlock()
	time.Sleep(20 * time.Millisecond) // let the other jobs start
	return closeFunc{rc, func() { l.c.mu.Lock(); l.c.active--; l.c.mu.Unlock() }}, nil
}

type closeFunc struct {
	io.ReadCloser
	done func()
}

func (c closeFunc) Close() error { c.done(); return c.ReadCloser.Close() }

// Layers are fetched Jobs at a time, derived ones too, and merged in order (a later layer's
// file wins).
func TestPullJobs(t *testing.T) {
	ctx := context.Background()
	var layers []v1.Layer
	for i := 0; i < 6; i++ {
		layers = append(layers, tarLayer(t, []tar.Header{{Name: "usr/share/order", Typeflag: tar.TypeReg}, {Name: fmt.Sprintf("usr/share/l%d", i), Typeflag: tar.TypeReg}},
			map[string]string{"usr/share/order": fmt.Sprint(i)}))
	}
	img, err := mutate.AppendLayers(derivedOn(t), layers...)
	if err != nil {
		t.Fatal(err)
	}
	for _, jobs := range []int{1, 2, 4} {
		ci := &countingImage{Image: img}
		repo := newRepo(t)
		res, err := pullImage(ctx, repo, ci, nil, PullOptions{Jobs: jobs})
		if err != nil {
			t.Fatal(err)
		}
		if ci.most != jobs || ci.opened != len(res.Plan.Layers) {
			t.Errorf("Jobs %d: %d layers open at most, %d opened (of %d)", jobs, ci.most, ci.opened, len(res.Plan.Layers))
		}
		var order string
		repo.Walk(ctx, res.Image.Commit, "/usr/share/order", ostree.WalkOptions{Headers: true}, func(e *ostree.TreeEntry) error {
			obj, err := repo.OpenContent(e.Checksum)
			if err != nil {
				return err
			}
			defer obj.Close()
			b, err := io.ReadAll(obj.Content)
			order = string(b)
			return err
		})
		if order != "5" {
			t.Errorf("Jobs %d: usr/share/order = %q, want the last layer's", jobs, order)
		}
	}
}

// References that ask for a signature check are refused unless the caller pinned a verified
// digest, before anything is read.
func TestPullRefusesUnverifiedSignedReferences(t *testing.T) {
	repo := newRepo(t)
	for _, s := range []string{"ostree-image-signed:oci:/nonexistent", "ostree-remote-image:fedora:oci:/nonexistent"} {
		ref, err := imgref.ParseOstree(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Pull(context.Background(), repo, ref, PullOptions{}); !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "ostree-unverified-image:oci:/nonexistent") {
			t.Errorf("Pull(%s) = %v; want ErrNotVerified naming the unverified form", s, err)
		}
		if _, err := Inspect(context.Background(), repo, ref, PullOptions{}); !errors.Is(err, ErrNotVerified) {
			t.Errorf("Inspect(%s) = %v", s, err)
		}
	}
}

// layerRefs lists the repository's layer refs.
func layerRefs(t *testing.T, repo *ostree.Repo) []string {
	t.Helper()
	refs, err := repo.ListRefs()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range refs {
		if strings.HasPrefix(r.Name, ostreecontainer.LayerRefPrefix) {
			out = append(out, r.Name)
		}
	}
	return out
}

// ExpectDigest pins what Inspect and Pull read: another manifest is refused before any
// layer is fetched, the right one is pulled, signed references included.
func TestPullExpectDigest(t *testing.T) {
	ctx := context.Background()
	img := plainImage(t, true)
	want, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	other, err := mutate.Config(img, v1.Config{Labels: map[string]string{"version": "43"}})
	if err != nil {
		t.Fatal(err)
	}
	otherDigest, err := other.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := writeOCI(t, img, filepath.Join(t.TempDir(), "oci"), "v1")
	ref.SigVerify = imgref.ContainerPolicy
	repo := newRepo(t)
	o := PullOptions{ExpectDigest: &otherDigest}
	_, err = Inspect(ctx, repo, ref, o)
	var ice *ImageChangedError
	if !errors.As(err, &ice) || !errors.Is(err, ErrImageChanged) || ice.Expected != otherDigest || ice.Actual != want || !strings.Contains(err.Error(), ref.String()) {
		t.Fatalf("Inspect with another digest: %v; want an ImageChangedError naming %s", err, ref)
	}
	_, err = Pull(ctx, repo, ref, o)
	if !errors.As(err, &ice) || ice.Actual != want {
		t.Fatalf("Pull with another digest: %v; want an ImageChangedError", err)
	}
	if refs := layerRefs(t, repo); len(refs) != 0 {
		t.Fatalf("layers fetched before the digest was checked: %v", refs)
	}
	res, err := Pull(ctx, repo, ref, PullOptions{ExpectDigest: &want})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Digest != want || res.Plan.Ref != ref {
		t.Fatalf("pulled %s as %s; want %s as %s", res.Image.Digest, res.Plan.Ref, want, ref)
	}
	if _, err := QueryImage(repo, ref); err != nil {
		t.Fatalf("the signed reference is not recorded: %v", err)
	}
}

// A registry image pinned by ExpectDigest is fetched by digest: moving the tag after the
// verification does not substitute another image.
func TestPullExpectDigestRegistry(t *testing.T) {
	ctx := context.Background()
	reg := testutil.Registry(t)
	img := plainImage(t, true)
	verified, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	push(t, img, reg, "stable")
	moved, err := mutate.Config(img, v1.Config{Labels: map[string]string{"version": "43"}})
	if err != nil {
		t.Fatal(err)
	}
	push(t, moved, reg, "stable")
	ref := registryRef(reg, "stable")
	ref.SigVerify = imgref.ContainerPolicy
	repo := newRepo(t)
	res, err := Pull(ctx, repo, ref, PullOptions{ExpectDigest: &verified})
	if err != nil {
		t.Fatal(err)
	}
	if res.Image.Digest != verified || res.Image.Version != "42" {
		t.Fatalf("pulled %s (version %q); want the verified %s, not what the tag names now", res.Image.Digest, res.Image.Version, verified)
	}
	// Unpinned, the tag gives the new image.
	ref.SigVerify = imgref.Unverified
	plan, err := Inspect(ctx, repo, ref, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Digest == verified {
		t.Fatalf("the tag did not move: the test proves nothing")
	}
	// A digest the registry does not have is not found, rather than replaced by the tag's.
	missing := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("0", 64)}
	if _, err := Inspect(ctx, repo, ref, PullOptions{ExpectDigest: &missing}); err == nil {
		t.Fatal("Inspect of a missing digest succeeded")
	}
}
