// Package zstdchunked reads the table of contents of zstd:chunked layers (the format of
// containers/storage's pkg/chunked): where each file's compressed bytes are in the blob and
// what they hash to, so that a client can fetch only the files it lacks. Everything here is
// parsed from untrusted bytes: sizes are bounded, offsets checked against the blob, and the
// table of contents against the digest the layer's descriptor carries.
package zstdchunked

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// The layer descriptor's annotations.
const (
	AnnotationTOCDigest   = "io.github.containers.zstd-chunked.manifest-checksum"
	AnnotationTOCPosition = "io.github.containers.zstd-chunked.manifest-position"
	AnnotationTarSplit    = "io.github.containers.zstd-chunked.tarsplit-position"
)

// Bounds on what a layer may declare.
const (
	MaxTOCSize      = 64 << 20 // uncompressed TOC JSON
	MaxTarSplitSize = 64 << 20 // uncompressed tar-split JSON
	maxEntries      = 4 << 20
)

// ErrInvalid reports a table of contents that is malformed, lies about the blob, or does not
// match its digest.
var ErrInvalid = errors.New("invalid zstd:chunked table of contents")

// Position is where a skippable frame's content is in the blob.
type Position struct {
	Offset, Length, Uncompressed int64
}

// Layer is what a zstd:chunked layer descriptor says.
type Layer struct {
	TOC, TarSplit Position
	TOCDigest     v1.Hash
}

// FromDescriptor reads the zstd:chunked annotations of a layer descriptor; ok is false when
// the layer is not zstd:chunked. Positions are checked against the blob's size.
func FromDescriptor(d v1.Descriptor) (l *Layer, ok bool, err error) {
	digest, hasDigest := d.Annotations[AnnotationTOCDigest]
	toc, hasTOC := d.Annotations[AnnotationTOCPosition]
	ts, hasTS := d.Annotations[AnnotationTarSplit]
	if !hasDigest && !hasTOC {
		return nil, false, nil
	}
	if !hasDigest || !hasTOC || !hasTS {
		return nil, false, fmt.Errorf("%w: the layer carries only some of the zstd:chunked annotations (%s, %s, %s)", ErrInvalid, AnnotationTOCDigest, AnnotationTOCPosition, AnnotationTarSplit)
	}
	l = &Layer{}
	if l.TOCDigest, err = v1.NewHash(digest); err != nil || l.TOCDigest.Algorithm != "sha256" {
		return nil, false, fmt.Errorf("%w: %s %q is not a sha256 digest", ErrInvalid, AnnotationTOCDigest, digest)
	}
	if l.TOC, err = parsePosition(toc, true, d.Size, MaxTOCSize); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrInvalid, AnnotationTOCPosition, err)
	}
	if l.TarSplit, err = parsePosition(ts, false, d.Size, MaxTarSplitSize); err != nil {
		return nil, false, fmt.Errorf("%w: %s: %v", ErrInvalid, AnnotationTarSplit, err)
	}
	return l, true, nil
}

// parsePosition reads "offset:length:uncompressed" (and ":1", the TOC type, for the TOC).
func parsePosition(s string, withType bool, blobSize, maxUncompressed int64) (Position, error) {
	f := strings.Split(s, ":")
	want := 3
	if withType {
		want = 4
	}
	if len(f) != want || (withType && f[3] != "1") {
		return Position{}, fmt.Errorf("%q is not offset:length:uncompressed%s", s, map[bool]string{true: ":1"}[withType])
	}
	var v [3]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return Position{}, fmt.Errorf("%q: field %d is not a size", s, i+1)
		}
		v[i] = n
	}
	p := Position{Offset: v[0], Length: v[1], Uncompressed: v[2]}
	if p.Length == 0 || p.Offset > blobSize || p.Length > blobSize-p.Offset {
		return Position{}, fmt.Errorf("%q lies outside the %d-byte blob", s, blobSize)
	}
	if p.Uncompressed > maxUncompressed || p.Length > maxUncompressed {
		return Position{}, fmt.Errorf("%q declares more than %d bytes", s, maxUncompressed)
	}
	return p, nil
}

// Entry is a file of the table of contents. Only what a partial pull needs is kept.
type Entry struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Size   int64  `json:"size,omitempty"`
	Digest string `json:"digest,omitempty"`
	// Offset and EndOffset bound the zstd frames of the whole file in the blob.
	Offset    int64 `json:"offset,omitempty"`
	EndOffset int64 `json:"endOffset,omitempty"`
}

// TOC is a layer's table of contents: its regular files with content, in the order of the
// tar stream.
type TOC struct {
	Files          []Entry
	TarSplitDigest v1.Hash
}

// ParseTOC checks the compressed TOC frame content against l's digest, decompresses it and
// parses it. Every regular file with content must lie before the TOC in the blob, in order
// and without overlap, and name a sha256 digest.
func ParseTOC(l *Layer, compressed []byte) (*TOC, error) {
	if int64(len(compressed)) != l.TOC.Length {
		return nil, fmt.Errorf("%w: %d bytes read, %d declared", ErrInvalid, len(compressed), l.TOC.Length)
	}
	if got, _, _ := v1.SHA256(bytes.NewReader(compressed)); got != l.TOCDigest {
		return nil, fmt.Errorf("%w: it hashes to %s, the layer's annotation says %s", ErrInvalid, got, l.TOCDigest)
	}
	raw, err := Decompress(compressed, l.TOC.Uncompressed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return parseTOCJSON(raw, l.TOC.Offset-8)
}

// Decompress decompresses a whole zstd frame that must give exactly size bytes.
func Decompress(compressed []byte, size int64) ([]byte, error) {
	// The output is bounded by size; the window is whatever the compressor chose (up to zstd's
	// 8 MiB for a level-3 frame), so only the total memory is capped.
	zr, err := zstd.NewReader(bytes.NewReader(compressed), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(2*MaxTOCSize))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	out := make([]byte, 0, min(size, 1<<20))
	buf := bytes.NewBuffer(out)
	n, err := io.Copy(buf, io.LimitReader(zr, size+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if n != size {
		return nil, fmt.Errorf("decompressed to %d bytes, %d declared", n, size)
	}
	return buf.Bytes(), nil
}

// parseTOCJSON parses the TOC JSON; file frames must end by limit (where the TOC's frame
// starts).
func parseTOCJSON(raw []byte, limit int64) (*TOC, error) {
	var doc struct {
		Version        int     `json:"version"`
		Entries        []Entry `json:"entries"`
		TarSplitDigest string  `json:"tarSplitDigest"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("%w: version %d (only 1 is known)", ErrInvalid, doc.Version)
	}
	if len(doc.Entries) > maxEntries {
		return nil, fmt.Errorf("%w: %d entries", ErrInvalid, len(doc.Entries))
	}
	t := &TOC{}
	var err error
	if t.TarSplitDigest, err = v1.NewHash(doc.TarSplitDigest); err != nil || t.TarSplitDigest.Algorithm != "sha256" {
		return nil, fmt.Errorf("%w: tarSplitDigest %q is not a sha256 digest", ErrInvalid, doc.TarSplitDigest)
	}
	end := int64(0)
	for _, e := range doc.Entries {
		if e.Type != "reg" || e.Size == 0 {
			continue
		}
		if e.Size < 0 || e.Offset < end || e.EndOffset <= e.Offset || e.EndOffset > limit {
			return nil, fmt.Errorf("%w: %s: frames %d-%d (size %d) overlap the previous file or lie outside the blob's content", ErrInvalid, e.Name, e.Offset, e.EndOffset, e.Size)
		}
		d, err := v1.NewHash(e.Digest)
		if err != nil || d.Algorithm != "sha256" {
			return nil, fmt.Errorf("%w: %s: digest %q is not sha256", ErrInvalid, e.Name, e.Digest)
		}
		end = e.EndOffset
		t.Files = append(t.Files, e)
	}
	return t, nil
}
