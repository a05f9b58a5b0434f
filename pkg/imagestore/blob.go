package imagestore

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// layerBlob streams one layer of an image, checking it against what the manifest and config
// say: the compressed bytes against the descriptor's size and digest, the uncompressed stream
// against the config's diff ID. The transport is not trusted to have done either (an oci:
// directory is read as it is on disk). Nothing is buffered beyond the decompressor's window.
//
// Use: r := open(...); consume r.Tar(); then r.finish(consumeErr) gives the verdict, which
// reports a digest mismatch or a truncated blob in preference to whatever the consumer
// stumbled on (a damaged blob usually fails decompression or the tar parser first).
type layerBlob struct {
	ctx    context.Context
	index  int
	desc   v1.Descriptor
	diffID v1.Hash

	rc     io.ReadCloser // the transport's compressed stream
	comp   *countingHasher
	decomp io.ReadCloser // nil when the layer is not compressed
	diff   hash.Hash
	tar    io.Reader

	done   bool
	result error
	// blobErr is result when it is about the blob itself (truncated, digest, transport) rather
	// than the consumer's error.
	blobErr error
}

// countingHasher reads the compressed stream, hashing and counting it, and never reads more than
// one byte past the declared size.
type countingHasher struct {
	r      io.Reader
	h      hash.Hash
	n      int64
	limit  int64
	err    error // the first error other than io.EOF from r
	onRead func(int)
}

func (c *countingHasher) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, io.EOF
	}
	if max := c.limit + 1 - c.n; int64(len(p)) > max {
		p = p[:max]
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if n > 0 && c.onRead != nil {
		c.onRead(n)
	}
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// compressionOf maps a layer media type to its compression: "gzip", "zstd" or "" (plain tar).
func compressionOf(mt types.MediaType) (string, error) {
	s := string(mt)
	switch {
	case strings.HasSuffix(s, "+gzip"), strings.HasSuffix(s, ".tar.gzip"):
		return "gzip", nil
	case strings.HasSuffix(s, "+zstd"), strings.HasSuffix(s, ".tar.zstd"):
		return "zstd", nil
	case strings.HasSuffix(s, ".tar"), strings.HasSuffix(s, ".tar+uncompressed"):
		return "", nil
	}
	return "", fmt.Errorf("layer media type %q is not a tar layer (plain, gzip or zstd)", s)
}

// openLayerBlob starts streaming layer index of img. onRead sees the compressed bytes as they
// arrive (for progress).
func openLayerBlob(ctx context.Context, img v1.Image, index int, desc v1.Descriptor, diffID v1.Hash, onRead func(int)) (*layerBlob, error) {
	if desc.Digest.Algorithm != "sha256" || diffID.Algorithm != "sha256" {
		return nil, fmt.Errorf("layer %d: only sha256 digests are supported (manifest says %s, config %s)", index, desc.Digest, diffID)
	}
	if desc.Size < 0 {
		return nil, fmt.Errorf("layer %d: the manifest gives a negative size", index)
	}
	comp, err := compressionOf(desc.MediaType)
	if err != nil {
		return nil, fmt.Errorf("layer %d: %w", index, err)
	}
	l, err := img.LayerByDigest(desc.Digest)
	if err != nil {
		return nil, fmt.Errorf("layer %d (%s): %w", index, desc.Digest, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, fmt.Errorf("fetching layer %d (%s): %w", index, desc.Digest, err)
	}
	b := &layerBlob{ctx: ctx, index: index, desc: desc, diffID: diffID, rc: rc, diff: sha256.New()}
	b.comp = &countingHasher{r: rc, h: sha256.New(), limit: desc.Size, onRead: onRead}
	var plain io.Reader = b.comp
	switch comp {
	case "gzip":
		zr, err := gzip.NewReader(b.comp)
		if err != nil {
			return nil, b.finish(fmt.Errorf("%s: decompressing (gzip): %w", b.where(), err))
		}
		b.decomp, plain = zr, zr
	case "zstd":
		zr, err := zstd.NewReader(b.comp, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, b.finish(fmt.Errorf("%s: decompressing (zstd): %w", b.where(), err))
		}
		rc := zr.IOReadCloser()
		b.decomp, plain = rc, rc
	}
	b.tar = io.TeeReader(plain, b.diff)
	return b, nil
}

func (b *layerBlob) where() string { return fmt.Sprintf("layer %d (%s)", b.index, b.desc.Digest) }

func (b *layerBlob) blobError() error { return b.blobErr }

// Tar is the uncompressed layer, hashed as it is read.
func (b *layerBlob) Tar() io.Reader { return b.tar }

// finish reads what the consumer left of the layer, closes the stream and returns the verdict:
// consumeErr, or a more fundamental problem with the blob. It may be called again and returns
// the same result.
func (b *layerBlob) finish(consumeErr error) error {
	if b.done {
		return b.result
	}
	b.done = true
	b.result = b.verdict(consumeErr)
	if b.result != nil && b.result != consumeErr {
		b.blobErr = b.result
	}
	if b.decomp != nil {
		b.decomp.Close()
	}
	b.rc.Close()
	return b.result
}

func (b *layerBlob) verdict(consumeErr error) error {
	if err := b.ctx.Err(); err != nil {
		return err
	}
	var decompErr error
	if consumeErr == nil && b.tar != nil {
		// The tar reader stops at the end-of-archive marker; the padding after it, and the
		// compression trailer, are part of both digests.
		if _, err := io.Copy(io.Discard, b.tar); err != nil {
			decompErr = fmt.Errorf("decompressing: %w", err)
		}
	}
	// Read the rest of the blob (up to its declared size) so that a damaged blob is reported
	// as such rather than as whatever the decompressor or the tar parser made of it.
	io.Copy(io.Discard, b.comp)
	if err := b.ctx.Err(); err != nil {
		return err
	}
	where := b.where()
	switch {
	case b.comp.n < b.desc.Size:
		why := "the stream ended"
		if b.comp.err != nil {
			why = b.comp.err.Error()
		}
		return fmt.Errorf("%s: the blob is truncated: got %d of the %d bytes the manifest declares (%s); the transfer was cut or the image store is damaged: pull again", where, b.comp.n, b.desc.Size, why)
	case b.comp.n > b.desc.Size:
		return fmt.Errorf("%w: %s: the blob is longer than the %d bytes the manifest declares: the image store is damaged or the image was tampered with", ErrDigestMismatch, where, b.desc.Size)
	}
	if got := hexHash(b.comp.h); got != b.desc.Digest.Hex {
		return fmt.Errorf("%w: %s: expected %s, got sha256:%s: the blob is damaged or was tampered with", ErrDigestMismatch, where, b.desc.Digest, got)
	}
	if b.comp.err != nil && consumeErr == nil && decompErr == nil {
		// The bytes are right but the transport complained (after the last byte).
		return fmt.Errorf("%s: %w", where, b.comp.err)
	}
	if consumeErr != nil {
		return consumeErr
	}
	if decompErr != nil {
		return fmt.Errorf("%s: %w", where, decompErr)
	}
	if got := hexHash(b.diff); got != b.diffID.Hex {
		return fmt.Errorf("%w: %s: the uncompressed layer should be %s (config diff ID) but is sha256:%s: the image was tampered with or rewritten inconsistently", ErrDigestMismatch, where, b.diffID, got)
	}
	return nil
}

func hexHash(h hash.Hash) string { return fmt.Sprintf("%x", h.Sum(nil)) }
