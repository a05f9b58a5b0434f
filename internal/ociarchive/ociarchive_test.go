package ociarchive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExtractArchiveRefusesEscapes(t *testing.T) {
	for name, h := range map[string]*tar.Header{
		"dotdot":   {Name: "../evil", Typeflag: tar.TypeReg},
		"nested":   {Name: "blobs/../../evil", Typeflag: tar.TypeReg},
		"symlink":  {Name: "blobs/x", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
		"hardlink": {Name: "blobs/y", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"},
		"device":   {Name: "dev", Typeflag: tar.TypeChar},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		tw.WriteHeader(h)
		tw.Close()
		file := filepath.Join(t.TempDir(), "a.tar")
		os.WriteFile(file, buf.Bytes(), 0o644)
		dest := t.TempDir()
		if err := Extract(file, filepath.Join(dest, "out")); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := os.Stat(filepath.Join(dest, "evil")); err == nil {
			t.Errorf("%s: wrote outside the destination", name)
		}
	}
}

func FuzzExtractArchive(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "oci-layout", Typeflag: tar.TypeReg, Size: 2})
	tw.Write([]byte("{}"))
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		top := t.TempDir()
		file := filepath.Join(top, "a.tar")
		os.WriteFile(file, data, 0o644)
		dest := filepath.Join(top, "out")
		os.Mkdir(dest, 0o755)
		Extract(file, dest)
		// Nothing may appear beside the archive and the destination.
		entries, _ := os.ReadDir(top)
		for _, e := range entries {
			if e.Name() != "a.tar" && e.Name() != "out" {
				t.Fatalf("extraction wrote %s outside its destination", e.Name())
			}
		}
		filepath.Walk(dest, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode()&os.ModeSymlink != 0 {
				t.Fatalf("extraction made a symlink at %s", strings.TrimPrefix(p, dest))
			}
			return nil
		})
	})
}
