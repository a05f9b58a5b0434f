package ostree

import (
	"io"

	"crypto/sha256"
	"encoding/hex"
	"github.com/klauspost/compress/flate"
	"strings"
	"testing"
	"time"
)

func mustChecksum(t *testing.T, s string) Checksum {
	t.Helper()
	c, err := ParseChecksum(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The vectors of shared/spec/ostree-container-format.md §1, verified there against ostree 2022.7.
func TestContentChecksumVectors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hdr     FileHeader
		content string
		want    string
		prefix  string // expected length-prefixed header, if given
	}{
		{"regular hello", FileHeader{Mode: ModeRegular | 0o644}, "hello\n",
			"44f778e59f0a4748d6b0c90a47347212a231c4ad1e8f7ea5c5dffc7749153a6b",
			"00000012 00000000 00000000 00000000 000081a4 00000000 00 11"},
		{"symlink to hello", FileHeader{Mode: ModeSymlink | 0o777, SymlinkTarget: "hello"}, "",
			"73baaba0102e9154b8522687d33eedb8ed1bc78eadb82428b2616144ec502934", ""},
		{"empty regular", FileHeader{Mode: ModeRegular | 0o644}, "",
			"cc700d46f407c6c5ab2d5dde474366a928b7398277e61162e7f8ec06f469f07e", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.hdr.Validate(); err != nil {
				t.Fatal(err)
			}
			if tc.prefix != "" {
				if got := hex.EncodeToString(lenPrefixed(tc.hdr.Marshal())); got != strings.ReplaceAll(tc.prefix, " ", "") {
					t.Errorf("prefixed header = %s, want %s", got, tc.prefix)
				}
			}
			if got := ContentChecksum(&tc.hdr, []byte(tc.content)).String(); got != tc.want {
				t.Errorf("checksum = %s, want %s", got, tc.want)
			}
			back, err := UnmarshalFileHeader(tc.hdr.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			if back.Mode != tc.hdr.Mode || back.SymlinkTarget != tc.hdr.SymlinkTarget {
				t.Errorf("round trip = %+v", back)
			}
		})
	}
}

func TestXattrOrderDoesNotChangeChecksum(t *testing.T) {
	a := FileHeader{Mode: ModeRegular | 0o644, Xattrs: Xattrs{{"user.zzz", []byte("last")}, {"user.aaa", []byte("first")}}}
	b := FileHeader{Mode: ModeRegular | 0o644, Xattrs: Xattrs{{"user.aaa", []byte("first")}, {"user.zzz", []byte("last")}}}
	if ContentChecksum(&a, nil) != ContentChecksum(&b, nil) {
		t.Fatal("xattr order changed the checksum")
	}
	// The name is stored with its NUL terminator.
	raw := MarshalXattrs(b.Xattrs)
	if !strings.Contains(string(raw), "user.aaa\x00first") {
		t.Fatalf("xattrs %x do not hold the NUL-terminated name", raw)
	}
	if e := sha256.Sum256(MarshalXattrs(nil)); hex.EncodeToString(e[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatal("empty xattrs are not the empty blob")
	}
}

func TestDirMetaVector(t *testing.T) {
	m := DefaultDirMeta
	if got := hex.EncodeToString(m.Marshal()); got != "00000000"+"00000000"+"000041ed" {
		t.Fatalf("dirmeta bytes = %s", got)
	}
	if got := m.Checksum().String(); got != "446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488" {
		t.Fatalf("dirmeta checksum = %s", got)
	}
	if _, err := UnmarshalDirMeta(m.Marshal()); err != nil {
		t.Fatal(err)
	}
	file := DirMeta{Mode: ModeRegular | 0o644}
	if _, err := UnmarshalDirMeta(file.Marshal()); err == nil {
		t.Fatal("a dirmeta with a regular-file mode was accepted")
	}
}

func TestDirTreeVectors(t *testing.T) {
	if got := EmptyDirTreeChecksum.String(); got != "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" {
		t.Fatalf("empty dirtree checksum = %s", got)
	}
	empty := DirTree{}
	if got := empty.Marshal(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("empty dirtree = %x", got)
	}
	var c Checksum
	for i := range c {
		c[i] = byte(i)
	}
	tree := DirTree{Files: []TreeFile{{"hello", c}}}
	b := tree.Marshal()
	want := append(append([]byte("hello\x00"), c[:]...), 0x06, 0x27, 0x28)
	if string(b) != string(want) {
		t.Fatalf("dirtree = %x\nwant      %x", b, want)
	}
	back, err := UnmarshalDirTree(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Files) != 1 || back.Files[0].Name != "hello" || back.Files[0].Checksum != c {
		t.Fatalf("round trip = %+v", back)
	}
}

func TestDirTreeRejects(t *testing.T) {
	var c Checksum
	for name, tree := range map[string]DirTree{
		"file and dir":   {Files: []TreeFile{{"a", c}}, Dirs: []TreeDir{{"a", c, c}}},
		"dot dot":        {Files: []TreeFile{{"..", c}}},
		"slash":          {Dirs: []TreeDir{{"a/b", c, c}}},
		"empty name":     {Files: []TreeFile{{"", c}}},
		"duplicate file": {Files: []TreeFile{{"a", c}, {"a", c}}},
	} {
		if _, err := UnmarshalDirTree(tree.Marshal()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCommitVector(t *testing.T) {
	ts := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Commit{
		Metadata:  Metadata{{Key: "version", Value: StringValue("1.0")}},
		Subject:   "subj",
		Body:      "bod",
		Timestamp: uint64(ts.Unix()),
		RootTree:  mustChecksum(t, "14ab874e"+strings.Repeat("0", 56)),
		RootMeta:  DefaultDirMeta.Checksum(),
	}
	// The spec publishes the root tree only as "14ab874e…", so its byte layout is checked here
	// and the full checksum below, with a tree whose commit ostree 2022.7 made.
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 110 {
		t.Fatalf("commit is %d bytes, want 110", len(b))
	}
	if got := hex.EncodeToString(b[:16]); got != hex.EncodeToString([]byte("version\x001.0\x00\x00s"))+"080f" {
		t.Errorf("metadata bytes = %s", got)
	}
	if got := hex.EncodeToString(b[len(b)-6:]); got != "481915101010" {
		t.Errorf("framing = %s, want 481915101010", got)
	}
	if got := hex.EncodeToString(b[32:40]); got != "000000005fee6600" {
		t.Errorf("timestamp bytes = %s", got)
	}
	back, err := UnmarshalCommit(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Subject != "subj" || back.Body != "bod" || back.Timestamp != c.Timestamp || back.RootTree != c.RootTree || back.RootMeta != c.RootMeta {
		t.Fatalf("round trip = %+v", back)
	}
	if v, _ := back.Metadata.String("version"); v != "1.0" {
		t.Fatalf("version = %q", v)
	}
}

// A commit made by ostree 2022.7: a root holding "hello" ("hello\n", 0644), with
// `ostree commit --owner-uid=0 --owner-gid=0 --no-bindings --timestamp='2021-01-01 00:00:00 UTC'
// -s subj --body bod --add-metadata-string=version=1.0`.
func TestCommitChecksumMatchesOstree(t *testing.T) {
	file := FileHeader{Mode: ModeRegular | 0o644}
	tree := DirTree{Files: []TreeFile{{"hello", ContentChecksum(&file, []byte("hello\n"))}}}
	root := Checksum(sha256.Sum256(tree.Marshal()))
	if root.String() != "b203b8cf6333823b9b7701086070db0785483ab6860d28dd3586df29af6879ef" {
		t.Fatalf("root dirtree = %s", root)
	}
	c := Commit{
		Metadata:  Metadata{{Key: "version", Value: StringValue("1.0")}},
		Subject:   "subj",
		Body:      "bod",
		Timestamp: 1609459200,
		RootTree:  root,
		RootMeta:  DefaultDirMeta.Checksum(),
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := Checksum(sha256.Sum256(b)).String(); got != "62e2c480aea5b6174ffb6f2ae4d4fc4539d9a6266f3f563e3de2b35cb6cfb365" {
		t.Fatalf("commit checksum = %s", got)
	}
}

func newFlateWriter(w io.Writer) (io.WriteCloser, error) { return flate.NewWriter(w, 6) }
