// Package ociarchive unpacks OCI archives (tar files of an OCI image layout) safely: they are
// untrusted input.
package ociarchive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Extract unpacks an OCI archive into dir, accepting only plain files and directories, and no
// path with a ".." component. An OCI archive is an uncompressed tar, so what it unpacks to can
// never be larger than the archive: anything claiming more (a sparse-file bomb) is refused.
// A missing file is reported as fs.ErrNotExist.
func Extract(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %w", file, err)
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	budget := st.Size()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", file, err)
		}
		for _, comp := range strings.Split(h.Name, "/") {
			if comp == ".." {
				return fmt.Errorf("%s: unsafe path %q in archive", file, h.Name)
			}
		}
		clean := filepath.Clean("/" + h.Name)
		if clean == "/" {
			continue
		}
		target := filepath.Join(dir, clean)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if h.Size > budget {
				return fmt.Errorf("%s: entry %q claims %d bytes, more than the archive holds", file, h.Name, h.Size)
			}
			budget -= h.Size
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			_, err = io.Copy(out, tr)
			out.Close()
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
		default:
			return fmt.Errorf("%s: unexpected entry %q of type %q in an OCI archive", file, h.Name, h.Typeflag)
		}
	}
}
