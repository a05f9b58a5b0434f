package zstdchunked

import (
	"bytes"
	"fmt"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
)

// FuzzParseTOC feeds the TOC parser arbitrary JSON, behind a digest that matches it, and the
// annotation parser arbitrary positions: neither may panic, and what the TOC parser accepts
// must keep its promises (files in order, inside the blob, with sha256 digests).
func FuzzParseTOC(f *testing.F) {
	f.Add([]byte(`{"version":1,"entries":[{"type":"dir","name":"a/"},{"type":"reg","name":"a/b","size":3,"digest":"sha256:`+
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"+`","offset":10,"endOffset":30}],"tarSplitDigest":"sha256:`+
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"+`"}`), "100:20:40:1")
	f.Add([]byte(`{"version":1,"entries":[]}`), "5:5:5:1")
	f.Add([]byte(`{"version":2}`), "1:1:1")
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	f.Fuzz(func(t *testing.T, raw []byte, position string) {
		const blobSize = 1 << 20
		desc := v1.Descriptor{Size: blobSize, Annotations: map[string]string{
			AnnotationTOCDigest: "sha256:" + "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", AnnotationTOCPosition: position, AnnotationTarSplit: "1:1:1",
		}}
		if l, ok, err := FromDescriptor(desc); err == nil && ok {
			if l.TOC.Offset+l.TOC.Length > blobSize || l.TOC.Length <= 0 {
				t.Fatalf("accepted position %q outside the blob", position)
			}
		}
		compressed := enc.EncodeAll(raw, nil)
		d, _, _ := v1.SHA256(bytes.NewReader(compressed))
		l := &Layer{TOCDigest: d, TOC: Position{Offset: blobSize - 1000, Length: int64(len(compressed)), Uncompressed: int64(len(raw))}}
		toc, err := ParseTOC(l, compressed)
		if err != nil {
			return
		}
		end := int64(0)
		for _, e := range toc.Files {
			if e.Offset < end || e.EndOffset <= e.Offset || e.EndOffset > l.TOC.Offset-8 || e.Size <= 0 {
				t.Fatalf("accepted %+v", e)
			}
			if h, err := v1.NewHash(e.Digest); err != nil || h.Algorithm != "sha256" {
				t.Fatalf("accepted digest %q", e.Digest)
			}
			end = e.EndOffset
		}
	})
}

// TestDecompressStreamed: a TOC compressed as a stream declares the compressor's window (8 MiB
// for level 3), not its size; it must decompress all the same (it did not, at first).
func TestDecompressStreamed(t *testing.T) {
	var buf bytes.Buffer
	zw, _ := zstd.NewWriter(&buf, zstd.WithEncoderLevel(zstd.SpeedDefault))
	var data []byte
	for i := range 20000 { // 700 KiB, several blocks
		data = fmt.Appendf(data, `{"type":"reg","name":"usr/share/doc/%d"}`, i)
	}
	zw.Write(data)
	zw.Close()
	got, err := Decompress(buf.Bytes(), int64(len(data)))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Decompress: %v", err)
	}
	if _, err := Decompress(buf.Bytes(), int64(len(data))-1); err == nil {
		t.Fatal("a frame longer than declared was accepted")
	}
}
