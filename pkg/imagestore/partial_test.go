package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"go.podman.io/storage/pkg/chunked/compressor"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/zstdchunked"
)

// chunkedImage composes a zstd:chunked image of the component tree with 40 incompressible
// files in gamma's package; changed names the gamma files whose content differs (by version).
func chunkedImage(t *testing.T, version string, changed map[int]bool, prior v1.Image) v1.Image {
	t.Helper()
	src := t.TempDir()
	componentTree(t, src, strings.Repeat("beta "+version+" ", 8000))
	var list strings.Builder
	list.WriteString("/usr/share/gamma/data\n")
	for i := range 40 {
		data := gammaFile(i, changed[i])
		p := fmt.Sprintf("/usr/share/gamma/f%02d", i)
		if err := os.WriteFile(filepath.Join(src, p), data, 0o644); err != nil {
			t.Fatal(err)
		}
		list.WriteString(p + "\n")
	}
	if err := os.WriteFile(filepath.Join(src, "var/lib/dpkg/info/gamma.list"), []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	img, _, _ := encapsulateTree(t, src, prior, ostree.WithMetadataString("version", version), encapsulate.WithCompression(encapsulate.ZstdChunked))
	return img
}

// rangeProxy stands in front of a registry and misbehaves on range requests as mode says;
// it counts the bytes of blob responses.
type rangeProxy struct {
	upstream string
	mu       sync.Mutex
	mode     string
	bytes    int64
	ranged   int
}

var blobRE = regexp.MustCompile(`^/v2/.+/blobs/sha256:[0-9a-f]{64}$`)

func (p *rangeProxy) start(t *testing.T) string {
	u, _ := url.Parse("http://" + p.upstream)
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !blobRE.MatchString(r.URL.Path) || r.Method != http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		mode := p.mode
		if r.Header.Get("Range") != "" {
			p.ranged++
		}
		p.mu.Unlock()
		rng := r.Header.Get("Range")
		switch {
		case rng == "" || mode == "":
		case mode == "200":
			r.Header.Del("Range")
		case mode == "refuse":
			http.Error(w, "no ranges here", http.StatusRequestedRangeNotSatisfiable)
			return
		case mode == "other-bytes" || mode == "lying":
			r.Header.Set("Range", shiftRanges(rng, 3))
		}
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://"+p.upstream+r.URL.Path, nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		if mode == "lying" && rng != "" {
			// Claim the bytes asked for (single ranges only: a multipart answer keeps its
			// true part headers).
			w.Header().Set("Content-Range", rangeAsContentRange(rng)+"/"+strings.SplitN(resp.Header.Get("Content-Range"), "/", 2)[1])
		}
		if mode == "truncate" && rng != "" {
			body = body[:len(body)/2]
		}
		w.WriteHeader(resp.StatusCode)
		n, _ := w.Write(body)
		p.mu.Lock()
		p.bytes += int64(n)
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func (p *rangeProxy) set(mode string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mode, p.bytes, p.ranged = mode, 0, 0
}

func (p *rangeProxy) take() (int64, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes, p.ranged
}

// shiftRanges moves every range of a Range header by d bytes.
func shiftRanges(h string, d int64) string {
	var out []string
	for _, r := range strings.Split(strings.TrimPrefix(h, "bytes="), ",") {
		a, b, _ := strings.Cut(r, "-")
		x, _ := strconv.ParseInt(a, 10, 64)
		y, _ := strconv.ParseInt(b, 10, 64)
		out = append(out, fmt.Sprintf("%d-%d", x+d, y+d))
	}
	return "bytes=" + strings.Join(out, ",")
}

func rangeAsContentRange(h string) string {
	return "bytes " + strings.TrimPrefix(h, "bytes=")
}

// TestPartialPull pulls v1, then v2 (one gamma file and beta changed) in part from a real
// registry, and checks the deployed commit is the one a whole pull gives; then the same
// through a registry that misbehaves each way, and images whose TOC lies: each falls back to
// whole layers and gives the same commit, fsck clean.
func TestPartialPull(t *testing.T) {
	ctx := context.Background()
	registry := testutil.Registry(t)
	proxy := &rangeProxy{upstream: registry}
	addr := proxy.start(t)

	img1 := chunkedImage(t, "one", nil, nil)
	img2 := chunkedImage(t, "two", map[int]bool{7: true}, img1)
	push(t, img1, registry, "v1")
	push(t, img2, registry, "v2")

	// The reference: v2 pulled whole into an empty repository.
	wholeRepo := newRepo(t)
	whole, err := Pull(ctx, wholeRepo, registryRef(registry, "v2"), PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := rootOf(t, wholeRepo, whole.Image.Commit)

	// withV1 is a repository that holds v1.
	withV1 := func(t *testing.T) *ostree.Repo {
		t.Helper()
		proxy.set("")
		repo := newRepo(t)
		if _, err := Pull(ctx, repo, registryRef(addr, "v1"), PullOptions{}); err != nil {
			t.Fatal(err)
		}
		return repo
	}

	t.Run("partial", func(t *testing.T) {
		repo := withV1(t)
		proxy.set("")
		_, est, err := InspectFetch(ctx, repo, registryRef(addr, "v2"), PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		proxy.set("")
		var last PullProgress
		res, err := Pull(ctx, repo, registryRef(addr, "v2"), PullOptions{Progress: func(pp PullProgress) { last = pp }})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("estimate %+v; pulled %d bytes; last progress %+v", est, res.BytesFetched, last)
		if last.BytesDone != res.BytesFetched || last.Bytes < res.BytesFetched-res.BytesFetched/100 || last.Bytes > res.BytesFetched+res.BytesFetched/100 {
			t.Fatalf("the progress ends at %d of %d bytes; the pull fetched %d", last.BytesDone, last.Bytes, res.BytesFetched)
		}
		// The changed files: beta's, gamma's f07, the dpkg status... and the commit's metadata.
		if est.PartialLayers != res.LayersPartial || est.Missing == 0 || est.Missing > est.Files/4 ||
			est.Bytes < res.BytesFetched-res.BytesFetched/100 || est.Bytes > res.BytesFetched+res.BytesFetched/100 {
			t.Fatalf("estimate %+v, but the pull fetched %d layers in part, %d bytes", est, res.LayersPartial, res.BytesFetched)
		}
		got, ranged := proxy.take()
		if got := rootOf(t, repo, res.Image.Commit); got != want {
			t.Fatalf("partial pull gave tree %s, the whole pull %s", got, want)
		}
		fsckClean(t, repo)
		repo2 := withV1(t)
		proxy.set("")
		resWhole, err := Pull(ctx, repo2, registryRef(addr, "v2"), PullOptions{WholeLayers: true})
		if err != nil {
			t.Fatal(err)
		}
		wholeBytes, _ := proxy.take()
		t.Logf("v1 -> v2: partial %d bytes on the wire (%d range requests, %d layers in part), whole layers %d bytes", got, ranged, res.LayersPartial, wholeBytes)
		if res.LayersPartial == 0 || ranged == 0 || resWhole.LayersPartial != 0 {
			t.Fatalf("layers fetched in part: %d (range requests %d); with WholeLayers: %d", res.LayersPartial, ranged, resWhole.LayersPartial)
		}
		// gamma's layer holds 40 files of 8 KiB that do not compress; one changed.
		if got*3 > wholeBytes {
			t.Fatalf("the partial pull moved %d bytes, the whole-layer pull %d: not a third", got, wholeBytes)
		}
		if got := rootOf(t, repo2, resWhole.Image.Commit); got != want {
			t.Fatalf("whole-layer pull over v1 gave tree %s, want %s", got, want)
		}
	})

	// logged records the pull's warnings: each fallback says why.
	logged := func() (PullOptions, *bytes.Buffer) {
		var buf bytes.Buffer
		return PullOptions{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))}, &buf
	}
	registryCases := map[string]string{
		"200":         "answered 200 OK to a range request",
		"refuse":      "answered 416",
		"truncate":    "unexpected EOF",
		"other-bytes": "the answer is for",
		"lying":       "the layer's annotation says",
	}
	for mode, why := range registryCases {
		t.Run("registry-"+mode, func(t *testing.T) {
			repo := withV1(t)
			proxy.set(mode)
			o, log := logged()
			res, err := Pull(ctx, repo, registryRef(addr, "v2"), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := rootOf(t, repo, res.Image.Commit); res.LayersPartial != 0 || got != want {
				t.Fatalf("layers in part %d, tree %s (want 0, %s)", res.LayersPartial, got, want)
			}
			if !strings.Contains(log.String(), why) {
				t.Fatalf("the fallback does not say %q:\n%s", why, log)
			}
			fsckClean(t, repo)
		})
	}

	lying := map[string]func(l *zstdchunked.Layer, entries []map[string]any){
		"toc-digest": func(l *zstdchunked.Layer, _ []map[string]any) { l.TOCDigest.Hex = strings.Repeat("0", 64) },
		"offsets": func(_ *zstdchunked.Layer, es []map[string]any) {
			// Swap the frames of two changed-layer files.
			var regs []map[string]any
			for _, e := range es {
				if e["type"] == "reg" && e["size"] != nil {
					regs = append(regs, e)
				}
			}
			a, b := regs[len(regs)/3], regs[2*len(regs)/3]
			a["offset"], b["offset"] = b["offset"], a["offset"]
			a["endOffset"], b["endOffset"] = b["endOffset"], a["endOffset"]
		},
		"sizes": func(_ *zstdchunked.Layer, es []map[string]any) {
			for _, e := range es {
				if e["type"] == "reg" && e["size"] != nil {
					e["size"] = e["size"].(float64) + 1
				}
			}
		},
		"digests": func(_ *zstdchunked.Layer, es []map[string]any) {
			for _, e := range es {
				if e["type"] == "reg" && e["digest"] != nil {
					e["digest"] = "sha256:" + strings.Repeat("1", 64)
				}
			}
		},
	}
	for name, edit := range lying {
		t.Run("toc-"+name, func(t *testing.T) {
			bad := rewriteTOCs(t, img2, edit)
			push(t, bad, registry, "bad-"+name)
			repo := withV1(t)
			proxy.set("")
			o, log := logged()
			res, err := Pull(ctx, repo, registryRef(addr, "bad-"+name), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := rootOf(t, repo, res.Image.Commit); res.LayersPartial != 0 || got != want {
				t.Fatalf("layers in part %d, tree %s (want 0, %s)", res.LayersPartial, got, want)
			}
			t.Logf("fallback: %s", log)
			if !strings.Contains(log.String(), "its partial fetch failed") {
				t.Fatalf("no fallback logged:\n%s", log)
			}
			fsckClean(t, repo)
		})
	}
}

// rootOf is a commit's root: its tree and the root directory's metadata.
func rootOf(t *testing.T, repo *ostree.Repo, c ostree.Checksum) string {
	t.Helper()
	commit, err := repo.ReadCommit(c)
	if err != nil {
		t.Fatal(err)
	}
	return commit.RootTree.String() + "/" + commit.RootMeta.String()
}

// rewriteTOCs rebuilds each zstd:chunked layer of img with its TOC (and annotations) as edit
// makes them; the tar stream, hence the diff ID, stays the same.
func rewriteTOCs(t *testing.T, img v1.Image, edit func(*zstdchunked.Layer, []map[string]any)) v1.Image {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	var adds []mutate.Addendum
	for i, l := range layers {
		desc := m.Layers[i]
		zl, ok, err := zstdchunked.FromDescriptor(desc)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			adds = append(adds, mutate.Addendum{Layer: l, MediaType: desc.MediaType, Annotations: desc.Annotations})
			continue
		}
		rc, _ := l.Compressed()
		blob, _ := io.ReadAll(rc)
		rc.Close()
		raw, err := zstdchunked.Decompress(blob[zl.TOC.Offset:zl.TOC.Offset+zl.TOC.Length], zl.TOC.Uncompressed)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		json.Unmarshal(raw, &doc)
		var entries []map[string]any
		for _, e := range doc["entries"].([]any) {
			entries = append(entries, e.(map[string]any))
		}
		edit(zl, entries)
		raw, _ = json.Marshal(doc)
		enc, _ := zstd.NewWriter(nil)
		toc := enc.EncodeAll(raw, nil)
		ts := blob[zl.TarSplit.Offset : zl.TarSplit.Offset+zl.TarSplit.Length]
		var out bytes.Buffer
		out.Write(blob[:zl.TOC.Offset-8])
		frame := func(data []byte) {
			out.Write([]byte{0x50, 0x2a, 0x4d, 0x18})
			binary.Write(&out, binary.LittleEndian, uint32(len(data)))
			out.Write(data)
		}
		tocOff := int64(out.Len()) + 8
		frame(toc)
		tsOff := int64(out.Len()) + 8
		frame(ts)
		footer := make([]byte, 64)
		for k, v := range []int64{tocOff, int64(len(toc)), int64(len(raw)), 1, tsOff, int64(len(ts)), zl.TarSplit.Uncompressed} {
			binary.LittleEndian.PutUint64(footer[8*k:], uint64(v))
		}
		copy(footer[56:], "GNUlInUx")
		frame(footer)
		ann := map[string]string{}
		for k, v := range desc.Annotations {
			ann[k] = v
		}
		tocDigest, _, _ := v1.SHA256(bytes.NewReader(toc))
		if zl.TOCDigest.Hex == strings.Repeat("0", 64) {
			tocDigest = zl.TOCDigest
		}
		ann[zstdchunked.AnnotationTOCDigest] = tocDigest.String()
		ann[zstdchunked.AnnotationTOCPosition] = fmt.Sprintf("%d:%d:%d:1", tocOff, len(toc), len(raw))
		ann[zstdchunked.AnnotationTarSplit] = fmt.Sprintf("%d:%d:%d", tsOff, len(ts), zl.TarSplit.Uncompressed)
		diffID, _ := l.DiffID()
		nl, err := partial.CompressedToLayer(&bytesLayer{data: out.Bytes(), diffID: diffID, mt: desc.MediaType})
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: nl, MediaType: desc.MediaType, Annotations: ann})
	}
	cf, _ := img.ConfigFile()
	return assemble(t, adds, cf)
}

// assemble makes an OCI image of the layers (with their descriptors' annotations) and cf.
func assemble(t *testing.T, adds []mutate.Addendum, cf *v1.ConfigFile) v1.Image {
	t.Helper()
	out, err := mutate.Append(empty.Image, adds...)
	if err != nil {
		t.Fatal(err)
	}
	if out, err = mutate.ConfigFile(out, cf); err != nil {
		t.Fatal(err)
	}
	return mutate.ConfigMediaType(mutate.MediaType(out, types.OCIManifestSchema1), types.OCIConfigJSON)
}

type bytesLayer struct {
	data   []byte
	diffID v1.Hash
	mt     types.MediaType
}

func (b *bytesLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(b.data))
	return h, err
}
func (b *bytesLayer) DiffID() (v1.Hash, error)            { return b.diffID, nil }
func (b *bytesLayer) Size() (int64, error)                { return int64(len(b.data)), nil }
func (b *bytesLayer) MediaType() (types.MediaType, error) { return b.mt, nil }
func (b *bytesLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(b.data)), nil
}

// TestPartialPullBadObject: a zstd:chunked layer whose object does not hash to its name is
// refused whichever way its bytes come (in part, then whole); the repository keeps v1 intact.
func TestPartialPullBadObject(t *testing.T) {
	ctx := context.Background()
	img1 := chunkedImage(t, "one", nil, nil)
	img2 := chunkedImage(t, "two", map[int]bool{7: true}, img1)
	changed := gammaFile(7, true)
	bad, replaced := corruptObject(t, img2, func(data []byte) []byte {
		if !bytes.Equal(data, changed) {
			return nil
		}
		out := bytes.Clone(data)
		out[100] ^= 0xff
		return out
	})
	if replaced != 1 {
		t.Fatalf("replaced %d objects, want 1", replaced)
	}
	dir := filepath.Join(t.TempDir(), "oci")
	ref1 := writeOCI(t, img1, dir, "v1")
	ref2 := writeOCI(t, bad, dir, "bad")
	repo := newRepo(t)
	if _, err := Pull(ctx, repo, ref1, PullOptions{}); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	_, err := Pull(ctx, repo, ref2, PullOptions{Log: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	t.Log(err)
	if !errors.Is(err, ErrBadLayer) || !strings.Contains(err.Error(), "content hashes to") {
		t.Fatalf("err = %v, want an invalid layer whose content hashes to another name", err)
	}
	if !strings.Contains(log.String(), "its partial fetch failed") || !strings.Contains(log.String(), "content hashes to") {
		t.Fatalf("the partial fetch did not meet the bad object first:\n%s", log.String())
	}
	if _, err := QueryImage(repo, ref1); err != nil {
		t.Fatalf("v1 after the refused pull: %v", err)
	}
	fsckClean(t, repo)
}

// gammaFile is the content of gamma's file i (chunkedImage), changed or not.
func gammaFile(i int, changed bool) []byte {
	seed := uint64(i)
	if changed {
		seed += 1000
	}
	r := rand.New(rand.NewPCG(seed, 7))
	data := make([]byte, 8192)
	for k := range data {
		data[k] = byte(r.Uint32())
	}
	return data
}

// corruptObject rewrites the zstd:chunked layers of img, replacing the content of each regular
// file for which edit returns new bytes (of the same length), and fixes the config's diff IDs.
func corruptObject(t *testing.T, img v1.Image, edit func([]byte) []byte) (v1.Image, int) {
	t.Helper()
	m, _ := img.Manifest()
	layers, _ := img.Layers()
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	var adds []mutate.Addendum
	replaced := 0
	for i, l := range layers {
		desc := m.Layers[i]
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		ann := map[string]string{}
		level := 3
		zw, err := compressor.ZstdCompressor(&out, ann, &level)
		if err != nil {
			t.Fatal(err)
		}
		tr, tw := tar.NewReader(rc), tar.NewWriter(zw)
		n := 0
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(tr)
			if h.Typeflag == tar.TypeReg {
				if nd := edit(data); nd != nil {
					data = nd
					n++
				}
			}
			tw.WriteHeader(h)
			tw.Write(data)
		}
		rc.Close()
		tw.Close()
		zw.Close()
		if n == 0 {
			adds = append(adds, mutate.Addendum{Layer: l, MediaType: desc.MediaType, Annotations: desc.Annotations})
			continue
		}
		replaced += n
		tarBytes := bytes.Buffer{}
		zr, _ := zstd.NewReader(bytes.NewReader(out.Bytes()))
		io.Copy(&tarBytes, zr)
		zr.Close()
		diffID, _, _ := v1.SHA256(bytes.NewReader(tarBytes.Bytes()))
		cf.RootFS.DiffIDs[i] = diffID
		if i == len(layers)-1 {
			cf.Config.Labels[ostreecontainer.LabelFinalDiffID] = diffID.String()
		}
		nl, err := partial.CompressedToLayer(&bytesLayer{data: out.Bytes(), diffID: diffID, mt: desc.MediaType})
		if err != nil {
			t.Fatal(err)
		}
		adds = append(adds, mutate.Addendum{Layer: nl, MediaType: desc.MediaType, Annotations: ann})
	}
	return assemble(t, adds, cf), replaced
}

// TestPullDiskFull: a pull into a repository whose filesystem fills up says so (ENOSPC, and
// what to do), not that the layer is invalid; what was stored stays consistent.
func TestPullDiskFull(t *testing.T) {
	testutil.Root(t)
	src := t.TempDir()
	componentTree(t, src, strings.Repeat("beta ", 8000))
	big := make([]byte, 6<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(filepath.Join(src, "usr/share/gamma/big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	img, _, _ := encapsulateTree(t, src, nil, ostree.WithMetadataString("version", "1"))
	ref := writeOCI(t, img, filepath.Join(t.TempDir(), "oci"), "v1")

	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	repo, err := ostree.Init(context.Background(), filepath.Join(mnt, "repo"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Pull(context.Background(), repo, ref, PullOptions{})
	t.Log(err)
	if !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrBadLayer) || !strings.Contains(err.Error(), "free space") {
		t.Fatalf("err = %v, want ENOSPC with what to do, not an invalid layer", err)
	}
	fsckClean(t, repo)
}
