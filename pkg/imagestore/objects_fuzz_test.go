package imagestore

import (
	"archive/tar"
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// FuzzImportObjects feeds arbitrary tar streams to the layer importer: it must fail cleanly or
// import only objects that hash to their names (checked by fsck-like verification below).
func FuzzImportObjects(f *testing.F) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	h := ostree.FileHeader{Mode: ostree.ModeRegular | 0o644}
	sum := ostree.ContentChecksum(&h, []byte("hello\n")).String()
	blob := ostree.MarshalXattrs(nil)
	blobPath := objectsPrefix + "e3/b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855.file-xattrs"
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobPath, Size: int64(len(blob)), Mode: 0o644})
	tw.Write(blob)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: objectsPrefix + sum[:2] + "/" + sum[2:] + ".file-xattrs-link", Linkname: blobPath})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: objectsPrefix + sum[:2] + "/" + sum[2:] + ".file", Size: 6, Mode: 0o644})
	tw.Write([]byte("hello\n"))
	dm := ostree.DefaultDirMeta.Marshal()
	dms := ostree.DefaultDirMeta.Checksum().String()
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: objectsPrefix + dms[:2] + "/" + dms[2:] + ".dirmeta", Size: int64(len(dm)), Mode: 0o644})
	tw.Write(dm)
	tw.Close()
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "r"), ostree.ModeArchive, ostree.WithFsync(false))
		if err != nil {
			t.Fatal(err)
		}
		tx, err := repo.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Abort()
		if _, err := ImportObjects(tx, bytes.NewReader(data)); err != nil {
			return
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		// Whatever was imported is intact.
		objs, _ := filepath.Glob(filepath.Join(repo.Path(), "objects", "*", "*.filez"))
		for _, o := range objs {
			name := filepath.Base(filepath.Dir(o)) + filepath.Base(o)[:62]
			c, err := ostree.ParseChecksum(name)
			if err != nil {
				t.Fatalf("object file %s", o)
			}
			obj, err := repo.OpenContent(c)
			if err != nil {
				t.Fatal(err)
			}
			hh := ostree.NewContentHash(obj.Header)
			if obj.Content != nil {
				buf := new(bytes.Buffer)
				buf.ReadFrom(obj.Content)
				hh.Write(buf.Bytes())
			}
			obj.Close()
			var got ostree.Checksum
			hh.Sum(got[:0])
			if got != c {
				t.Fatalf("imported %s holds content hashing to %s", c, got)
			}
		}
	})
}
