package encapsulate

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"go.podman.io/storage/pkg/chunked/compressor"
)

// Compression is how layers are compressed.
type Compression string

// The supported compressions.
const (
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
	// ZstdChunked is zstd with the table of contents containers/storage uses to fetch only the
	// files a host lacks (podman's zstd:chunked); other clients read it as plain zstd.
	ZstdChunked Compression = "zstd:chunked"
)

// ParseCompression parses a --compression value.
func ParseCompression(s string) (Compression, error) {
	switch Compression(s) {
	case Gzip, Zstd, ZstdChunked:
		return Compression(s), nil
	}
	return "", fmt.Errorf("unknown compression %q: use gzip, zstd or zstd:chunked", s)
}

func (c Compression) mediaType() types.MediaType {
	if c == Zstd || c == ZstdChunked {
		return types.OCILayerZStd
	}
	return types.OCILayer
}

// fileLayer is a compressed layer blob in a file, with digests computed while it was written.
type fileLayer struct {
	path        string
	digest      v1.Hash
	diffID      v1.Hash
	size        int64
	compression Compression
	// annotations are the layer descriptor's (zstd:chunked's table of contents position).
	annotations map[string]string
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.compression.mediaType(), nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	switch l.compression {
	case Zstd, ZstdChunked:
		zr, err := zstd.NewReader(f, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	default:
		zr, err := gzip.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	}
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

// writeLayerFile runs write (which produces the uncompressed tar) into a compressed file at path,
// hashing the tar (diff ID) and the blob (digest) on the way. The output depends only on the tar
// bytes: compression is single-threaded and headers carry no time or name.
func writeLayerFile(path string, c Compression, write func(io.Writer) error) (*fileLayer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	blobHash := &countingHash{h: sha256.New()}
	bw := bufio.NewWriterSize(io.MultiWriter(f, blobHash), 1<<20)
	var zw io.WriteCloser
	annotations := map[string]string{}
	switch c {
	case ZstdChunked:
		level := 3
		zw, err = compressor.ZstdCompressor(bw, annotations, &level)
	case Zstd:
		zw, err = zstd.NewWriter(bw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	default:
		zw, err = gzip.NewWriterLevel(bw, gzip.DefaultCompression)
	}
	if err != nil {
		return nil, err
	}
	tarHash := &countingHash{h: sha256.New()}
	tw := bufio.NewWriterSize(io.MultiWriter(zw, tarHash), 1<<20)
	if err := write(tw); err != nil {
		return nil, err
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &fileLayer{
		path:        path,
		digest:      v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", blobHash.h.Sum(nil))},
		diffID:      v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", tarHash.h.Sum(nil))},
		size:        blobHash.n,
		compression: c,
		annotations: annotations,
	}, nil
}
