package imagestore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"slices"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/vbatts/tar-split/tar/asm"
	"github.com/vbatts/tar-split/tar/storage"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
	"github.com/bootc-go/bootc/pkg/transport"
	"github.com/bootc-go/bootc/pkg/zstdchunked"
)

// Partial pulls (zstd:chunked layers).
//
// A changed layer in zstd:chunked form carries a table of contents (TOC): each file's
// position in the blob and its digest. Its files are object paths, so the repository says
// which it already holds. A partial pull reads the TOC and the tar-split data (the tar's
// headers and padding, byte for byte) with one range request, fetches the byte ranges of the
// files the repository lacks (ranges less than mergeGap apart are merged into one), and
// rebuilds the layer's tar stream from the tar-split data, with the repository's objects and
// the fetched files as the payloads. That stream goes through the same import as a whole
// layer: every object is checked against its name, every fetched file against the TOC's
// digest, and the stream against the layer's diff ID. Whatever fails (a registry that ignores
// or refuses ranges, a TOC that does not match its digest or lies, bytes that do not match)
// falls back to fetching the whole layer, which is then verified against its digest as always;
// only a local failure (a full disk) or a cancellation ends the pull.

// mergeGap is the largest gap between two ranges fetched as one (containers/storage's).
const mergeGap = 1024

// partialShare is the share of the blob above which the whole layer is fetched instead:
// ranges cost more per byte than one stream.
const partialShare = 0.9

// EnvPartialPull, set to "0", makes pulls fetch whole layers (for comparisons).
const EnvPartialPull = "BOOTC_PARTIAL_PULL"

// localFailure reports errors that fetching the whole layer would not cure: a cancellation,
// or the local filesystem (full, over quota, read-only, failing).
func localFailure(ctx context.Context, err error) bool {
	return ctx.Err() != nil || diskFailure(err)
}

// diskFailure reports a failure of the local filesystem: full, over quota, read-only, failing.
func diskFailure(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EIO)
}

// partialLayer is a layer's tar stream rebuilt from its tar-split data.
type partialLayer struct {
	index  int
	desc   v1.Descriptor
	diffID v1.Hash
	g      *partialGetter
	plan   *PartialPlan
	stream io.ReadCloser
	diff   hash.Hash
	tar    io.Reader

	done            bool
	result, blobErr error
}

// PartialPlan is what a partial pull of one layer fetches.
type PartialPlan struct {
	// Files is the number of files of the layer; Missing of them the repository lacks.
	Files, Missing int
	// Bytes is what the fetch of the missing files downloads (their merged ranges), TOCBytes
	// what the TOC and tar-split data took.
	Bytes, TOCBytes int64
}

// usePartial says whether layer i is to be fetched in part: a zstd:chunked layer of a source
// that serves ranges, into a repository that holds an image already (into an empty one, whole
// layers are the cheaper fetch).
func (p *puller) usePartial(i int) (transport.RangeReader, bool) {
	if p.o.WholeLayers || os.Getenv(EnvPartialPull) == "0" {
		return nil, false
	}
	rr, ok := p.src.img.(transport.RangeReader)
	if !ok {
		return nil, false
	}
	if c, _ := compressionOf(p.plan.Manifest.Layers[i].MediaType); c != "zstd" {
		return nil, false
	}
	if _, ok, _ := zstdchunked.FromDescriptor(p.plan.Manifest.Layers[i]); !ok {
		return nil, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holdsImage == nil {
		refs, err := p.repo.ListRefs()
		holds := err == nil && slices.ContainsFunc(refs, func(r ostree.Ref) bool { return strings.HasPrefix(r.Name, ostreecontainer.ImageRefPrefix) })
		p.holdsImage = &holds
	}
	return rr, *p.holdsImage
}

// openPartial reads layer i's TOC and starts the fetch of what the repository lacks. It
// returns nil (and no error) when the whole layer is the better fetch.
func (p *puller) openPartial(ctx context.Context, rr transport.RangeReader, i int) (*partialLayer, error) {
	g, plan, err := p.planPartial(ctx, rr, i)
	if err != nil || plan == nil {
		return nil, err
	}
	desc := p.plan.Manifest.Layers[i]
	p.log.Debug("partial pull", "index", i, "digest", desc.Digest, "files", plan.Files, "missing", plan.Missing, "bytes", plan.Bytes, "ranges", len(g.ranges))
	if len(g.ranges) > 0 {
		if g.parts, err = rr.ReadRanges(ctx, desc, g.ranges); err != nil {
			return nil, err
		}
	}
	if g.zr, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20)); err != nil {
		g.close()
		return nil, err
	}
	tsr, err := zstd.NewReader(bytes.NewReader(g.tarSplit), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		g.close()
		return nil, err
	}
	g.tsr = tsr
	l := &partialLayer{index: i, desc: desc, diffID: p.plan.Layers[i].DiffID, g: g, plan: plan, diff: sha256.New()}
	l.stream = asm.NewOutputTarStream(g, storage.NewJSONUnpacker(io.LimitReader(tsr, g.layer.TarSplit.Uncompressed)))
	l.tar = io.TeeReader(l.stream, l.diff)
	return l, nil
}

// planPartial reads layer i's TOC and tar-split data and says which files the repository
// lacks (g.local) and the ranges to fetch (g.ranges); plan is nil when the whole layer is the
// better fetch.
func (p *puller) planPartial(ctx context.Context, rr transport.RangeReader, i int) (*partialGetter, *PartialPlan, error) {
	desc := p.plan.Manifest.Layers[i]
	zl, _, err := zstdchunked.FromDescriptor(desc)
	if err != nil {
		return nil, nil, err
	}
	meta, err := readSpans(ctx, rr, desc, []transport.Range{{Offset: zl.TOC.Offset, Length: zl.TOC.Length}, {Offset: zl.TarSplit.Offset, Length: zl.TarSplit.Length}}, p.fetched)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the table of contents: %w", err)
	}
	toc, err := zstdchunked.ParseTOC(zl, meta[0])
	if err != nil {
		return nil, nil, err
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(meta[1])); got != toc.TarSplitDigest {
		return nil, nil, fmt.Errorf("%w: the tar-split data hashes to %s, the TOC says %s", zstdchunked.ErrInvalid, got, toc.TarSplitDigest)
	}
	g := &partialGetter{ctx: ctx, repo: p.repo, layer: zl, toc: toc, tarSplit: meta[1], byName: map[string][]int{}, local: make([]bool, len(toc.Files)), onRead: p.fetched}
	plan := &PartialPlan{Files: len(toc.Files), TOCBytes: zl.TOC.Length + zl.TarSplit.Length}
	var spans []transport.Range
	for k := range toc.Files {
		e := &toc.Files[k]
		g.byName[e.Name] = append(g.byName[e.Name], k)
		if g.local[k], err = p.repoHolds(e.Name); err != nil {
			return nil, nil, err
		}
		if !g.local[k] {
			plan.Missing++
			spans = append(spans, transport.Range{Offset: e.Offset, Length: e.EndOffset - e.Offset})
		}
	}
	g.ranges = mergeRanges(spans, mergeGap)
	for _, r := range g.ranges {
		plan.Bytes += r.Length
	}
	if float64(plan.Bytes) > partialShare*float64(desc.Size) {
		p.log.Debug("fetching the whole layer: it lacks most of it", "index", i, "missing", plan.Missing, "files", plan.Files)
		return nil, nil, nil
	}
	return g, plan, nil
}

// repoHolds says whether the repository holds the object a layer path names.
func (p *puller) repoHolds(name string) (bool, error) {
	rest, ok := strings.CutPrefix(strings.TrimPrefix(name, "./"), objectsPrefix)
	if !ok {
		return false, nil
	}
	sum, kind, err := parseObjectPath(rest)
	if err != nil {
		return false, nil
	}
	// Commits are held back until their layer's objects are in (importObjects): fetched.
	t, ok := objectKinds[kind]
	if !ok || t == ostree.ObjectCommit {
		return false, nil
	}
	return p.repo.HasObject(ostree.ObjectName{Checksum: sum, Type: t})
}

func (p *puller) fetched(n int) {
	p.report(func(pp *PullProgress) { pp.BytesDone += int64(n) })
	p.mu.Lock()
	p.res.BytesFetched += int64(n)
	p.mu.Unlock()
}

func (l *partialLayer) Tar() io.Reader { return l.tar }

func (l *partialLayer) blobError() error { return l.blobErr }

// finish ends the stream and gives the verdict: consumeErr, or the stream's own failure, or a
// diff ID mismatch.
func (l *partialLayer) finish(consumeErr error) error {
	if l.done {
		return l.result
	}
	l.done = true
	err := consumeErr
	if err == nil {
		if _, cerr := io.Copy(io.Discard, l.tar); cerr != nil {
			err = fmt.Errorf("layer %d (%s): rebuilding the tar stream: %w", l.index, l.desc.Digest, cerr)
		} else if got := hexHash(l.diff); got != l.diffID.Hex {
			err = fmt.Errorf("%w: layer %d (%s): the rebuilt tar stream is sha256:%s, the config's diff ID %s", ErrDigestMismatch, l.index, l.desc.Digest, got, l.diffID)
		}
		l.blobErr = err
	}
	l.stream.Close()
	l.g.close()
	l.result = err
	return err
}

// partialGetter gives the tar-split assembler each file's content: the repository's object,
// or the file's zstd frames from the fetched ranges, decompressed and checked against the TOC.
type partialGetter struct {
	ctx   context.Context
	repo  *ostree.Repo
	layer *zstdchunked.Layer
	toc   *zstdchunked.TOC
	// tarSplit is the compressed tar-split data, checked against the TOC.
	tarSplit []byte
	byName   map[string][]int
	used     map[string]int
	local    []bool
	onRead   func(int)

	ranges []transport.Range
	parts  transport.Parts
	zr     *zstd.Decoder
	tsr    *zstd.Decoder

	next   int       // the next range of parts
	cur    io.Reader // the current range's reader
	curPos int64     // the blob offset cur reads next
	curEnd int64
}

func (g *partialGetter) close() {
	if g.parts != nil {
		g.parts.Close()
	}
	if g.zr != nil {
		g.zr.Close()
	}
	if g.tsr != nil {
		g.tsr.Close()
	}
}

// Get returns the content of the next file called name in the tar stream.
func (g *partialGetter) Get(name string) (io.ReadCloser, error) {
	if err := g.ctx.Err(); err != nil {
		return nil, err
	}
	if g.used == nil {
		g.used = map[string]int{}
	}
	idx := g.byName[name]
	n := g.used[name]
	if n >= len(idx) {
		return nil, fmt.Errorf("%w: the tar-split data has content for %s, the TOC does not", zstdchunked.ErrInvalid, name)
	}
	g.used[name]++
	e := &g.toc.Files[idx[n]]
	if g.local[idx[n]] {
		return g.openLocal(e)
	}
	return g.openRemote(e)
}

func (g *partialGetter) openLocal(e *zstdchunked.Entry) (io.ReadCloser, error) {
	sum, kind, _ := parseObjectPath(strings.TrimPrefix(strings.TrimPrefix(e.Name, "./"), objectsPrefix))
	if kind != "file" {
		data, err := g.repo.ReadMetadataObject(ostree.ObjectName{Checksum: sum, Type: objectKinds[kind]})
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	obj, err := g.repo.OpenContent(sum)
	if err != nil {
		return nil, err
	}
	if obj.Content == nil || obj.Size != e.Size {
		obj.Close()
		return nil, fmt.Errorf("%w: %s: the TOC says %d bytes, the repository's object has %d", zstdchunked.ErrInvalid, e.Name, e.Size, obj.Size)
	}
	return readCloser{Reader: obj.Content, close: obj.Close}, nil
}

// openRemote positions the fetched ranges at e's frames and returns their decompressed,
// verified content.
func (g *partialGetter) openRemote(e *zstdchunked.Entry) (io.ReadCloser, error) {
	for g.cur == nil || e.Offset >= g.curEnd {
		if g.parts == nil || g.next >= len(g.ranges) {
			return nil, fmt.Errorf("%w: %s: frames %d-%d were not fetched (the tar-split data and the TOC disagree)", zstdchunked.ErrInvalid, e.Name, e.Offset, e.EndOffset)
		}
		r, err := g.parts.Next()
		if err != nil {
			return nil, err
		}
		g.cur, g.curPos, g.curEnd = r, g.ranges[g.next].Offset, g.ranges[g.next].Offset+g.ranges[g.next].Length
		g.next++
	}
	if e.Offset < g.curPos || e.EndOffset > g.curEnd {
		return nil, fmt.Errorf("%w: %s: frames %d-%d are out of order", zstdchunked.ErrInvalid, e.Name, e.Offset, e.EndOffset)
	}
	if err := g.skip(e.Offset - g.curPos); err != nil {
		return nil, err
	}
	frames := &countingReader{r: io.LimitReader(g.cur, e.EndOffset-e.Offset), onRead: g.onRead}
	g.curPos = e.EndOffset
	if err := g.zr.Reset(frames); err != nil {
		return nil, err
	}
	want, _ := v1.NewHash(e.Digest)
	return &verifyingReader{e: e, want: want, r: io.LimitReader(g.zr, e.Size+1), h: sha256.New(), frames: frames}, nil
}

func (g *partialGetter) skip(n int64) error {
	if n == 0 {
		return nil
	}
	got, err := io.Copy(io.Discard, &countingReader{r: io.LimitReader(g.cur, n), onRead: g.onRead})
	if err == nil && got != n {
		err = io.ErrUnexpectedEOF
	}
	return err
}

type countingReader struct {
	r      io.Reader
	onRead func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.onRead != nil {
		c.onRead(n)
	}
	return n, err
}

// verifyingReader is a fetched file's content: exactly its size, hashing to its digest.
type verifyingReader struct {
	e      *zstdchunked.Entry
	want   v1.Hash
	r      io.Reader
	h      hash.Hash
	n      int64
	frames io.Reader
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > v.e.Size {
		return n, fmt.Errorf("%w: %s decompresses to more than the %d bytes the TOC says", zstdchunked.ErrInvalid, v.e.Name, v.e.Size)
	}
	if err == io.EOF {
		if v.n != v.e.Size {
			return n, fmt.Errorf("%w: %s decompresses to %d bytes, the TOC says %d", zstdchunked.ErrInvalid, v.e.Name, v.n, v.e.Size)
		}
		if got := hexHash(v.h); got != v.want.Hex {
			return n, fmt.Errorf("%w: %s: the fetched content hashes to sha256:%s, the TOC says %s", ErrDigestMismatch, v.e.Name, got, v.want)
		}
	} else if err != nil {
		err = fmt.Errorf("%s: decompressing the fetched frames: %w", v.e.Name, err)
	}
	return n, err
}

// Close skips what is left of the file's frames, so that the next file starts where it should.
func (v *verifyingReader) Close() error {
	_, err := io.Copy(io.Discard, v.frames)
	return err
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// readSpans reads a few small parts of a blob (merged when close), for the TOC.
func readSpans(ctx context.Context, rr transport.RangeReader, desc v1.Descriptor, spans []transport.Range, onRead func(int)) ([][]byte, error) {
	merged := mergeRanges(spans, mergeGap)
	parts, err := rr.ReadRanges(ctx, desc, merged)
	if err != nil {
		return nil, err
	}
	defer parts.Close()
	bufs := make([][]byte, len(merged))
	for k, m := range merged {
		r, err := parts.Next()
		if err != nil {
			return nil, err
		}
		bufs[k] = make([]byte, m.Length)
		if _, err := io.ReadFull(&countingReader{r: r, onRead: onRead}, bufs[k]); err != nil {
			return nil, err
		}
	}
	out := make([][]byte, len(spans))
	for j, s := range spans {
		for k, m := range merged {
			if s.Offset >= m.Offset && s.Offset+s.Length <= m.Offset+m.Length {
				out[j] = bufs[k][s.Offset-m.Offset : s.Offset-m.Offset+s.Length]
			}
		}
	}
	return out, nil
}

// mergeRanges sorts nothing: it joins ranges (in blob order) less than gap apart.
func mergeRanges(spans []transport.Range, gap int64) []transport.Range {
	var out []transport.Range
	for _, s := range spans {
		if n := len(out); n > 0 && s.Offset >= out[n-1].Offset+out[n-1].Length && s.Offset-(out[n-1].Offset+out[n-1].Length) < gap {
			out[n-1].Length = s.Offset + s.Length - out[n-1].Offset
			continue
		}
		out = append(out, s)
	}
	return out
}

// FetchEstimate is what a pull would download, at file granularity for the layers it would
// fetch in part.
type FetchEstimate struct {
	// Layers is how many layers a pull would fetch, Bytes the compressed bytes it would
	// download: for a layer fetched in part its TOC and the ranges of its missing files, for
	// the others the whole blob.
	Layers int
	Bytes  int64
	// PartialLayers of the Layers would be fetched in part; Missing of their Files are not in
	// the repository.
	PartialLayers, Files, Missing int
}

// InspectFetch is Inspect, and reads the TOC of each zstd:chunked layer the repository lacks
// (a few KiB each) to say which of its files a pull would fetch.
func InspectFetch(ctx context.Context, repo *ostree.Repo, ref imgref.OstreeRef, o PullOptions) (*Plan, *FetchEstimate, error) {
	img, err := readImage(ctx, ref, o)
	if err != nil {
		return nil, nil, err
	}
	defer img.Close()
	plan, src, err := inspect(ctx, repo, img.Image, &ref, o.ExpectDigest, o.logger())
	if err != nil {
		return nil, nil, err
	}
	est := &FetchEstimate{}
	if !plan.Changed() {
		return plan, est, nil
	}
	p := &puller{repo: repo, src: src, plan: plan, o: o, log: o.logger(), res: &PullResult{}}
	for i, l := range plan.Layers {
		if l.Cached {
			continue
		}
		est.Layers++
		if rr, ok := p.usePartial(i); ok && l.Kind != LayerDerived {
			_, pp, err := p.planPartial(ctx, rr, i)
			if err == nil && pp != nil {
				est.PartialLayers++
				est.Files += pp.Files
				est.Missing += pp.Missing
				est.Bytes += pp.Bytes + pp.TOCBytes
				continue
			}
			if err != nil && localFailure(ctx, err) {
				return nil, nil, err
			}
		}
		est.Bytes += l.Size
	}
	return plan, est, nil
}
