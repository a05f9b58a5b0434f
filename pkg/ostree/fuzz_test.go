package ostree

import (
	"bytes"
	"io"
	"testing"
)

// FuzzParseObject feeds arbitrary bytes to every metadata object parser. Whatever parses must
// serialize back to exactly the same bytes (objects are named by the hash of those bytes).
func FuzzParseObject(f *testing.F) {
	var c Checksum
	tree := DirTree{Files: []TreeFile{{"hello", c}}, Dirs: []TreeDir{{"sub", c, c}}}
	commit := Commit{Metadata: Metadata{{Key: "version", Value: StringValue("1")}}, Subject: "s", Parent: Checksum{1}}
	cb, _ := commit.Marshal()
	hdr := FileHeader{Mode: ModeSymlink | 0o777, SymlinkTarget: "t", Xattrs: Xattrs{{"user.a", []byte("v")}}}
	f.Add(uint8(0), tree.Marshal())
	f.Add(uint8(1), cb)
	f.Add(uint8(2), DefaultDirMeta.Marshal())
	f.Add(uint8(3), hdr.Marshal())
	f.Add(uint8(4), hdr.MarshalArchive(0))
	f.Add(uint8(5), MarshalXattrs(hdr.Xattrs))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		var again []byte
		switch which % 6 {
		case 0:
			v, err := UnmarshalDirTree(data)
			if err != nil {
				return
			}
			again = v.Marshal()
		case 1:
			v, err := UnmarshalCommit(data)
			if err != nil {
				return
			}
			if again, err = v.Marshal(); err != nil {
				t.Fatal(err)
			}
		case 2:
			v, err := UnmarshalDirMeta(data)
			if err != nil {
				return
			}
			again = v.Marshal()
		case 3:
			v, err := UnmarshalFileHeader(data)
			if err != nil {
				return
			}
			if err := v.Validate(); err != nil {
				t.Fatalf("parsed header does not validate: %v", err)
			}
			again = v.Marshal()
		case 4:
			v, size, err := UnmarshalArchiveHeader(data)
			if err != nil {
				return
			}
			again = v.MarshalArchive(size)
		case 5:
			v, err := UnmarshalXattrs(data)
			if err != nil {
				return
			}
			again = MarshalXattrs(v)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("parsed %x, re-serialized as %x", data, again)
		}
	})
}

// FuzzArchiveObject reads arbitrary bytes as an archive-mode .filez object: it must fail cleanly
// or yield exactly the declared number of content bytes.
func FuzzArchiveObject(f *testing.F) {
	var buf bytes.Buffer
	h := FileHeader{Mode: ModeRegular | 0o644}
	buf.Write(lenPrefixed(h.MarshalArchive(6)))
	zw, _ := newFlateWriter(&buf)
	zw.Write([]byte("hello\n"))
	zw.Close()
	f.Add(buf.Bytes())
	f.Add(lenPrefixed((&FileHeader{Mode: ModeSymlink | 0o777, SymlinkTarget: "x"}).MarshalArchive(0)))
	f.Fuzz(func(t *testing.T, data []byte) {
		obj, err := readArchiveObject(bytes.NewReader(data))
		if err != nil {
			return
		}
		if obj.Content == nil {
			if !obj.Header.IsSymlink() {
				t.Fatal("regular file without content")
			}
			return
		}
		n, err := io.Copy(io.Discard, io.LimitReader(obj.Content, 1<<20))
		if err == nil && n != obj.Size && n < 1<<20 {
			t.Fatalf("read %d bytes without error, header declared %d", n, obj.Size)
		}
	})
}
