package ostree

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// FuzzTarSource reads arbitrary bytes as a container layer: entries must come out with clean,
// relative paths free of "..", and reading must end in io.EOF or an error, never a panic.
func FuzzTarSource(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "usr/f", Size: 2, Mode: 0o644, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}})
	tw.Write([]byte("hi"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "usr/g", Linkname: "usr/f"})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "./etc/.wh.x", Linkname: "../x"})
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		src := NewTarSource(bytes.NewReader(data))
		for i := 0; i < 10000; i++ {
			e, err := src.Next(context.Background())
			if err != nil {
				return
			}
			for _, p := range []string{e.Path, e.Linkname} {
				if e.Type == EntrySymlink && p == e.Linkname {
					continue
				}
				if strings.HasPrefix(p, "/") || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
					t.Fatalf("unclean path %q", p)
				}
			}
			if e.Content != nil {
				io.Copy(io.Discard, e.Content)
			}
		}
	})
}
