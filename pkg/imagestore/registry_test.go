package imagestore

import (
	"archive/tar"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/transport"
)

// blobCounter is a reverse proxy in front of a registry that counts blob downloads by digest.
type blobCounter struct {
	mu     sync.Mutex
	counts map[string]int
}

var blobPath = regexp.MustCompile(`^/v2/.+/blobs/(sha256:[0-9a-f]{64})$`)

func (c *blobCounter) start(t *testing.T, registry string) string {
	u, _ := url.Parse("http://" + registry)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
			c.mu.Lock()
			c.counts[m[1]]++
			c.mu.Unlock()
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.counts = map[string]int{}
	return strings.TrimPrefix(srv.URL, "http://")
}

// take returns the counts since the last call, without the config blob cfg.
func (c *blobCounter) take(cfg v1.Hash) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.counts
	c.counts = map[string]int{}
	delete(out, cfg.String())
	return out
}

// componentTree writes an OS tree whose dpkg database names four packages, so that the chunk
// planner gives each its own layer; beta's file holds betaContent.
func componentTree(t *testing.T, dir, betaContent string) {
	t.Helper()
	pkgs := map[string][]string{
		"linux": {"/usr/lib/modules/6.1/vmlinuz"},
		"alpha": {"/usr/bin/alpha"},
		"beta":  {"/usr/bin/beta"},
		"gamma": {"/usr/share/gamma/data"},
	}
	content := map[string]string{
		"/usr/lib/modules/6.1/vmlinuz": strings.Repeat("kernel ", 20000),
		"/usr/bin/alpha":               strings.Repeat("alpha ", 10000),
		"/usr/bin/beta":                betaContent,
		"/usr/share/gamma/data":        strings.Repeat("gamma ", 10000),
		"/usr/etc/os-release":          "ID=test\n",
	}
	var status strings.Builder
	names := []string{"alpha", "beta", "gamma", "linux"}
	for _, p := range names {
		fmt.Fprintf(&status, "Package: %s\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0\n\n", p)
		content["/var/lib/dpkg/info/"+p+".list"] = strings.Join(pkgs[p], "\n") + "\n"
	}
	content["/var/lib/dpkg/status"] = status.String()
	for p, c := range content {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// buildComponents commits the component tree with beta's content and encapsulates it (with the
// prior image's layer structure, if any).
func buildComponents(t *testing.T, betaContent string, prior v1.Image) (*encapsulate.Image, *ostree.Repo, ostree.Checksum) {
	t.Helper()
	src := t.TempDir()
	componentTree(t, src, betaContent)
	return encapsulateTree(t, src, prior, ostree.WithMetadataString("version", betaContent[:2]))
}

// encapsulateTree commits src and encapsulates it in at most 8 layers (with the prior image's
// layer structure, if any), with the options given.
func encapsulateTree(t *testing.T, src string, prior v1.Image, commitOpt ostree.CommitOption, opt ...encapsulate.Option) (*encapsulate.Image, *ostree.Repo, ostree.Checksum) {
	t.Helper()
	ctx := context.Background()
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "build"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitDir(ctx, src, ostree.WithBranch("os"), ostree.WithTimestamp(time.Unix(1700000000, 0)), commitOpt)
	if err != nil {
		t.Fatal(err)
	}
	opts := append([]encapsulate.Option{encapsulate.WithMaxLayers(8), encapsulate.WithCreated(time.Unix(1700000000, 0))}, opt...)
	if prior != nil {
		pl, err := encapsulate.PriorLayers(prior)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, encapsulate.WithPriorBuild(pl))
	}
	img, err := encapsulate.Build(ctx, repo, "os", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img, repo, c
}

func push(t *testing.T, img v1.Image, registry, tag string) {
	t.Helper()
	if _, err := transport.Write(context.Background(), img, imgref.Ref{Transport: imgref.Registry, Name: registry + "/test/os:" + tag}); err != nil {
		t.Fatal(err)
	}
}

func registryRef(addr, tag string) imgref.OstreeRef {
	return imgref.OstreeRef{Image: imgref.Ref{Transport: imgref.Registry, Name: addr + "/test/os:" + tag}}
}

func digests(ls []LayerInfo, pick func(LayerInfo) bool) map[string]int {
	out := map[string]int{}
	for _, l := range ls {
		if pick(l) {
			out[l.Digest.String()] = 1
		}
	}
	return out
}

func sameCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func keys(m map[string]int) []string {
	var out []string
	for k, v := range m {
		out = append(out, fmt.Sprintf("%s×%d", k[7:19], v))
	}
	sort.Strings(out)
	return out
}

// Pulling from a real registry fetches each layer the repository lacks once and nothing else:
// an update fetches only the layers whose components changed, Inspect fetches no layer, and a
// derived image fetches only its own layers.
func TestPullRegistry(t *testing.T) {
	ctx := context.Background()
	registry := testutil.Registry(t)
	var counter blobCounter
	proxy := counter.start(t, registry)
	repo := newRepo(t)

	v1img, _, _ := buildComponents(t, strings.Repeat("beta one ", 8000), nil)
	push(t, v1img, registry, "v1")
	cfg1, _ := v1img.ConfigName()
	ref1 := registryRef(proxy, "v1")
	res, err := Pull(ctx, repo, ref1, PullOptions{Jobs: 3})
	if err != nil {
		t.Fatal(err)
	}
	got := counter.take(cfg1)
	want := digests(res.Plan.Layers, func(LayerInfo) bool { return true })
	if len(want) < 5 || !sameCounts(got, want) {
		t.Fatalf("v1: blob GETs %v, want each of the %d layers once", keys(got), len(want))
	}
	t.Logf("v1: %d layers, %d bytes fetched", res.LayersFetched, res.BytesFetched)

	// v2 changes beta's file: layer 0 (the commit) and beta's layer differ.
	v2img, buildRepo, v2commit := buildComponents(t, strings.Repeat("beta two ", 8000), v1img)
	push(t, v2img, registry, "v2")
	cfg2, _ := v2img.ConfigName()
	ref2 := registryRef(proxy, "v2")
	plan, err := Inspect(ctx, repo, ref2, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(cfg2); len(got) != 0 {
		t.Fatalf("Inspect fetched layers: %v", keys(got))
	}
	m1, _ := v1img.Manifest()
	old := map[v1.Hash]bool{}
	for _, l := range m1.Layers {
		old[l.Digest] = true
	}
	changed := digests(plan.Layers, func(l LayerInfo) bool { return !old[l.Digest] })
	uncached := digests(plan.Layers, func(l LayerInfo) bool { return !l.Cached })
	if len(changed) != 2 || !sameCounts(changed, uncached) || plan.Layers[0].Cached {
		t.Fatalf("v2 plan: uncached %v, changed %v (want layer 0 and beta's)", keys(uncached), keys(changed))
	}
	n, size := plan.ToFetch()
	res2, err := Pull(ctx, repo, ref2, PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := counter.take(cfg2); !sameCounts(got, uncached) {
		t.Fatalf("v2 pull fetched %v, want %v", keys(got), keys(uncached))
	}
	if res2.LayersFetched != n || res2.BytesFetched != size || res2.LayersReused != len(plan.Layers)-n {
		t.Fatalf("v2 pull: %+v, want %d layers %d bytes", res2, n, size)
	}
	t.Logf("v2: %d of %d layers, %d bytes fetched", res2.LayersFetched, len(plan.Layers), res2.BytesFetched)
	// The merged commit's tree is the v2 tree, as a direct commit of it has it.
	direct, _ := buildRepo.ReadCommit(v2commit)
	merged, _ := repo.ReadCommit(res2.Image.Commit)
	if merged.RootTree != direct.RootTree || merged.RootMeta != direct.RootMeta {
		t.Fatalf("merged tree %s, direct commit of the v2 tree %s", merged.RootTree, direct.RootTree)
	}
	fsckClean(t, repo)

	// A derived image: v1 plus a layer.
	derived := rawLayer(t, func(tw *tar.Writer) {
		entry(tw, tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
		entry(tw, tar.Header{Name: "etc/foo", Typeflag: tar.TypeReg}, "foo")
		entry(tw, tar.Header{Name: "usr/bin/bar", Typeflag: tar.TypeReg, Mode: 0o755}, "bar")
		entry(tw, tar.Header{Name: "usr/bin/.wh.alpha", Typeflag: tar.TypeReg}, "")
		entry(tw, tar.Header{Name: "usr/share/gamma/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
		entry(tw, tar.Header{Name: "usr/share/gamma/.wh..wh..opq", Typeflag: tar.TypeReg}, "")
		entry(tw, tar.Header{Name: "usr/share/gamma/new", Typeflag: tar.TypeReg}, "new")
		entry(tw, tar.Header{Name: "opt/x", Typeflag: tar.TypeReg}, "x")
		entry(tw, tar.Header{Name: "var/lib/y", Typeflag: tar.TypeReg}, "y")
	})
	pullAppended := func(base v1.Image, l v1.Layer) (v1.Image, *PullResult) {
		t.Helper()
		img, err := mutate.AppendLayers(base, l)
		if err != nil {
			t.Fatal(err)
		}
		push(t, img, registry, "derived")
		cfg, _ := img.ConfigName()
		d, _ := l.Digest()
		res, err := Pull(ctx, repo, registryRef(proxy, "derived"), PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := counter.take(cfg); !sameCounts(got, map[string]int{d.String(): 1}) {
			t.Fatalf("pulling the derived image fetched %v, want only its new layer %s", keys(got), d)
		}
		return img, res
	}
	dimg, res3 := pullAppended(v1img, derived)
	has := pathSet(t, repo, res3.Image.Commit)
	for _, p := range []string{"/usr/etc/foo", "/usr/bin/bar", "/usr/bin/beta", "/var/lib/y", "/usr/share/gamma/new", "/usr/etc/os-release"} {
		if !has[p] {
			t.Errorf("derived: merged tree lacks %s", p)
		}
	}
	for _, p := range []string{"/usr/bin/alpha", "/usr/share/gamma/data", "/opt", "/opt/x", "/etc", "/usr/bin/.wh.alpha", "/usr/share/gamma/.wh..wh..opq"} {
		if has[p] {
			t.Errorf("derived: merged tree has %s", p)
		}
	}

	// One more layer: only it is fetched.
	more := rawLayer(t, func(tw *tar.Writer) { entry(tw, tar.Header{Name: "usr/share/more", Typeflag: tar.TypeReg}, "more") })
	_, res4 := pullAppended(dimg, more)
	if has := pathSet(t, repo, res4.Image.Commit); !has["/usr/share/more"] || !has["/usr/etc/foo"] || has["/usr/bin/alpha"] {
		t.Fatalf("second derived pull: %v", has)
	}
	// Unchanged: no blob at all, not even the config.
	if _, err := Pull(ctx, repo, registryRef(proxy, "derived"), PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := counter.take(v1.Hash{}); len(got) > 1 {
		t.Fatalf("pulling an unchanged image fetched %v", keys(got))
	}
	fsckClean(t, repo)
}
