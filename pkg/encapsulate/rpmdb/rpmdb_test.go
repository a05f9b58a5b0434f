package rpmdb

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	smallDB   = "testdata/rpmdb-small.sqlite"
	smallJSON = "testdata/rpmdb-small.json"
)

// readTestdata returns the bytes of testdata/rpmdb-small.sqlite.
func readTestdata(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(smallDB)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestReadTestdata reads the checked-in database and compares it with what
// rpm reported for it when it was made.
func TestReadTestdata(t *testing.T) {
	js, err := os.ReadFile(smallJSON)
	if err != nil {
		t.Fatal(err)
	}
	var want []Package
	if err := json.Unmarshal(js, &want); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(smallDB)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	comparePackages(t, want, got)
	checkChangelogDates(t, smallSpecs(), got)

	// The file must exercise interior pages, overflow chains and a
	// gpg-pubkey header, or this test proves little.
	var st pageStats
	var names []string
	data := readTestdata(t)
	err = scanHeaders(bytes.NewReader(data), int64(len(data)), &st, func(_ int64, blob []byte) error {
		h, err := parseHeader(blob)
		if err != nil {
			return err
		}
		name, _, err := h.stringValue(tagName)
		names = append(names, name)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if st.interior == 0 || st.overflow == 0 {
		t.Errorf("testdata has %+v pages; want interior and overflow pages", st)
	}
	if !slices.Contains(names, gpgPubkeyName) {
		t.Errorf("testdata has no gpg-pubkey header: %v", names)
	}
}

func TestNEVRA(t *testing.T) {
	for _, tc := range []struct {
		p    Package
		want string
	}{
		{Package{Name: "bash", Version: "5.2.26", Release: "4.el10", Arch: "x86_64"}, "bash-5.2.26-4.el10.x86_64"},
		{Package{Name: "shadow-utils", Epoch: 2, Version: "4.15.0", Release: "5.el10", Arch: "x86_64"}, "shadow-utils-2:4.15.0-5.el10.x86_64"},
		{Package{Name: "nosrc", Version: "1", Release: "1"}, "nosrc-1-1"},
	} {
		if got := tc.p.NEVRA(); got != tc.want {
			t.Errorf("NEVRA() = %q, want %q", got, tc.want)
		}
	}
}

func TestReadFileWAL(t *testing.T) {
	data := readTestdata(t)

	t.Run("content only in log", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rpmdb.sqlite")
		writeFile(t, path, nil)
		writeFile(t, path+"-wal", []byte("not empty"))
		_, err := ReadFile(path)
		if !errors.Is(err, ErrNotSQLite) || !strings.Contains(err.Error(), "write-ahead log") {
			t.Fatalf("ReadFile = %v, want ErrNotSQLite mentioning the write-ahead log", err)
		}
	})
	t.Run("log not read", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rpmdb.sqlite")
		writeFile(t, path, data)
		writeFile(t, path+"-wal", bytes.Repeat([]byte{0xff}, 4096))
		pkgs, err := ReadFile(path)
		if err != nil || len(pkgs) != 3 {
			t.Fatalf("ReadFile = %d packages, %v; want the 3 packages of the main file", len(pkgs), err)
		}
	})
	t.Run("error mentions log", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "rpmdb.sqlite")
		writeFile(t, path, data[:len(data)/2])
		writeFile(t, path+"-wal", []byte("not empty"))
		_, err := ReadFile(path)
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "write-ahead log") {
			t.Fatalf("ReadFile = %v, want ErrCorrupt mentioning the write-ahead log", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := ReadFile(filepath.Join(t.TempDir(), "rpmdb.sqlite"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("ReadFile = %v, want ErrNotExist", err)
		}
	})
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// testCell locates one cell of the Packages table in a database file.
type testCell struct {
	page     uint32 // leaf page number
	ptr      int    // file offset of the cell's pointer in the pointer array
	cell     int    // file offset of the cell
	payload  int    // file offset of the payload's local part
	size     uint64 // payload size
	local    int    // payload bytes on the leaf page
	overflow int    // file offset of the first overflow page number, or -1
}

// testLayout is where things are in a database file.
type testLayout struct {
	pageSize int
	root     uint32 // root page of Packages
	leaves   []uint32
	cells    []testCell
}

// layout walks the Packages table of a valid database file, independently
// of scanTable, to find pages and cells to corrupt.
func layout(t *testing.T, data []byte) testLayout {
	t.Helper()
	db, err := openSQLite(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	root, err := db.tableRoot(packagesTable)
	if err != nil {
		t.Fatal(err)
	}
	l := testLayout{pageSize: db.pageSize, root: root}
	var walk func(pgno uint32)
	walk = func(pgno uint32) {
		base := int(pgno-1) * db.pageSize
		page := data[base : base+db.pageSize]
		ncells := int(binary.BigEndian.Uint16(page[3:]))
		switch page[0] {
		case pageTableInner:
			for i := range ncells {
				off := int(binary.BigEndian.Uint16(page[12+2*i:]))
				walk(binary.BigEndian.Uint32(page[off:]))
			}
			walk(binary.BigEndian.Uint32(page[8:]))
		case pageTableLeaf:
			l.leaves = append(l.leaves, pgno)
			for i := range ncells {
				off := int(binary.BigEndian.Uint16(page[8+2*i:]))
				size, n1 := varint(page[off:])
				_, n2 := varint(page[off+n1:])
				c := testCell{page: pgno, ptr: base + 8 + 2*i, cell: base + off, payload: base + off + n1 + n2, size: size, overflow: -1}
				c.local = int(db.localPayload(size))
				if uint64(c.local) < size {
					c.overflow = c.payload + c.local
				}
				l.cells = append(l.cells, c)
			}
		default:
			t.Fatalf("page %d: unexpected type %#x", pgno, page[0])
		}
	}
	walk(root)
	return l
}

func be32(b []byte, v uint32) { binary.BigEndian.PutUint32(b, v) }
func be16(b []byte, v uint16) { binary.BigEndian.PutUint16(b, v) }

// TestCorruptFiles checks that damaged database files give ErrNotSQLite or
// ErrCorrupt, never a panic or a wrong result.
func TestCorruptFiles(t *testing.T) {
	orig := readTestdata(t)
	l := layout(t, orig)
	if len(l.leaves) < 2 || l.root == l.leaves[0] {
		t.Fatalf("testdata Packages table should have an interior root: %+v", l)
	}
	pageOff := func(pgno uint32) int { return int(pgno-1) * l.pageSize }
	// A cell whose overflow chain has at least two pages.
	var longCell *testCell
	for i, c := range l.cells {
		if c.overflow >= 0 && c.size-uint64(c.local) > uint64(2*(l.pageSize-4)) {
			longCell = &l.cells[i]
			break
		}
	}
	if longCell == nil {
		t.Fatal("testdata has no cell with a long overflow chain")
	}
	// A leaf with two cells.
	var twoCellLeaf uint32
	for _, pg := range l.leaves {
		if binary.BigEndian.Uint16(orig[pageOff(pg)+3:]) >= 2 {
			twoCellLeaf = pg
		}
	}
	if twoCellLeaf == 0 {
		t.Fatal("testdata has no leaf with two cells")
	}

	for _, tc := range []struct {
		name   string
		mutate func(d []byte) []byte
		want   error
	}{
		{"empty", func(d []byte) []byte { return nil }, ErrNotSQLite},
		{"text", func(d []byte) []byte { return bytes.Repeat([]byte("hello, world\n"), 100) }, ErrNotSQLite},
		{"magic only", func(d []byte) []byte { return d[:16] }, ErrCorrupt},
		{"truncated header", func(d []byte) []byte { return d[:60] }, ErrCorrupt},
		{"one page", func(d []byte) []byte { return d[:l.pageSize] }, ErrCorrupt},
		{"truncated file", func(d []byte) []byte { return d[:len(d)/2] }, ErrCorrupt},
		{"page size not a power of two", func(d []byte) []byte { be16(d[16:], 1000); return d }, ErrCorrupt},
		{"page size 256", func(d []byte) []byte { be16(d[16:], 256); return d }, ErrCorrupt},
		{"page size 65536 beyond file", func(d []byte) []byte { be16(d[16:], 1); return d }, ErrCorrupt},
		{"page size zero", func(d []byte) []byte { be16(d[16:], 0); return d }, ErrCorrupt},
		{"read version 3", func(d []byte) []byte { d[19] = 3; return d }, ErrCorrupt},
		{"reserved space too large", func(d []byte) []byte { d[20] = 100; return d }, ErrCorrupt},
		{"payload fractions", func(d []byte) []byte { d[21] = 63; return d }, ErrCorrupt},
		{"text encoding", func(d []byte) []byte { be32(d[56:], 7); return d }, ErrCorrupt},
		{"no Packages table", func(d []byte) []byte {
			copy(d, bytes.ReplaceAll(d[:l.pageSize], []byte("Packages"), []byte("Xackages")))
			return d
		}, ErrCorrupt},
		{"root points to itself", func(d []byte) []byte {
			be32(d[pageOff(l.root)+8:], l.root)
			return d
		}, ErrCorrupt},
		{"child is the schema page", func(d []byte) []byte {
			be32(d[pageOff(l.root)+8:], 1)
			return d
		}, ErrCorrupt},
		{"child out of range", func(d []byte) []byte {
			be32(d[pageOff(l.root)+8:], 0xffffffff)
			return d
		}, ErrCorrupt},
		{"child page zero", func(d []byte) []byte {
			be32(d[pageOff(l.root)+8:], 0)
			return d
		}, ErrCorrupt},
		{"bad page type", func(d []byte) []byte { d[pageOff(l.leaves[0])] = 0x07; return d }, ErrCorrupt},
		{"index page in table", func(d []byte) []byte { d[pageOff(l.leaves[0])] = pageIndexLeaf; return d }, ErrCorrupt},
		{"cell count too large", func(d []byte) []byte { be16(d[pageOff(l.leaves[0])+3:], 0xffff); return d }, ErrCorrupt},
		{"cell offset out of range", func(d []byte) []byte {
			be16(d[l.cells[0].ptr:], uint16(l.pageSize))
			return d
		}, ErrCorrupt},
		{"cell offset in pointer array", func(d []byte) []byte { be16(d[l.cells[0].ptr:], 8); return d }, ErrCorrupt},
		{"overlapping cells", func(d []byte) []byte {
			p := pageOff(twoCellLeaf)
			copy(d[p+10:p+12], d[p+8:p+10])
			return d
		}, ErrCorrupt},
		{"payload size beyond file", func(d []byte) []byte {
			// The payload size is the cell's first varint: set all
			// but its last byte to 0xff, keeping its length.
			for i := l.cells[0].cell; d[i]&0x80 != 0; i++ {
				d[i] = 0xff
			}
			return d
		}, ErrCorrupt},
		{"overflow page points to itself", func(d []byte) []byte {
			first := binary.BigEndian.Uint32(d[longCell.overflow:])
			be32(d[pageOff(first):], first)
			return d
		}, ErrCorrupt},
		{"overflow chain ends early", func(d []byte) []byte {
			first := binary.BigEndian.Uint32(d[longCell.overflow:])
			be32(d[pageOff(first):], 0)
			return d
		}, ErrCorrupt},
		{"overflow to a leaf", func(d []byte) []byte {
			be32(d[longCell.overflow:], longCell.page)
			return d
		}, ErrCorrupt},
		{"overflow out of range", func(d []byte) []byte {
			be32(d[longCell.overflow:], uint32(len(d)/l.pageSize+1))
			return d
		}, ErrCorrupt},
		{"record header size", func(d []byte) []byte { d[l.cells[0].payload] = 0; return d }, ErrCorrupt},
		{"blob column is text", func(d []byte) []byte {
			// Record header: size, NULL (hnum), blob serial type
			// varint whose last byte's low bit makes it text.
			p := l.cells[0].payload
			hsize := int(d[p])
			d[p+hsize-1] ^= 1
			return d
		}, ErrCorrupt},
		{"header entry count", func(d []byte) []byte {
			p := l.cells[0].payload
			be32(d[p+int(d[p]):], 0x7fffffff)
			return d
		}, ErrCorrupt},
		{"header data length", func(d []byte) []byte {
			p := l.cells[0].payload
			be32(d[p+int(d[p])+4:], 1<<20)
			return d
		}, ErrCorrupt},
		{"header index pointing outside data", func(d []byte) []byte {
			// The index entry of NAME: tag 1000, type STRING.
			name := []byte{0, 0, 0x03, 0xe8, 0, 0, 0, typeString}
			i := bytes.Index(d, name)
			if i < 0 || (i+12)/l.pageSize != i/l.pageSize {
				t.Fatal("cannot find the NAME index entry within one page")
			}
			be32(d[i+8:], 0x7ffffff0)
			return d
		}, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := tc.mutate(bytes.Clone(orig))
			pkgs, err := ReadPackages(bytes.NewReader(data), int64(len(data)))
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadPackages = %d packages, error %v; want %v", len(pkgs), err, tc.want)
			}
			if pkgs != nil {
				t.Errorf("ReadPackages returned packages with an error")
			}
			t.Logf("error: %v", err)
		})
	}
}

// errReaderAt fails every read.
type errReaderAt struct{ err error }

func (r errReaderAt) ReadAt([]byte, int64) (int, error) { return 0, r.err }

// TestReadError checks that I/O errors are passed on, not reported as
// corruption.
func TestReadError(t *testing.T) {
	ioErr := errors.New("disk on fire")
	_, err := ReadPackages(errReaderAt{ioErr}, 1<<20)
	if !errors.Is(err, ioErr) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("ReadPackages = %v, want the read error", err)
	}
}

// testEntry is one tag of a synthetic header.
type testEntry struct {
	tag, typ, count uint32
	data            []byte
	offset          *uint32 // overrides the computed offset
}

func strEntry(tag uint32, s string) testEntry {
	return testEntry{tag: tag, typ: typeString, count: 1, data: []byte(s + "\x00")}
}

func strArrayEntry(tag uint32, ss ...string) testEntry {
	var b []byte
	for _, s := range ss {
		b = append(append(b, s...), 0)
	}
	return testEntry{tag: tag, typ: typeStringArray, count: uint32(len(ss)), data: b}
}

func int32Entry(tag uint32, vs ...uint32) testEntry {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		be32(b[4*i:], v)
	}
	return testEntry{tag: tag, typ: typeInt32, count: uint32(len(vs)), data: b}
}

// buildHeader encodes a header blob like rpm's headerExport, without an
// immutable region, aligning values to 8 bytes.
func buildHeader(entries ...testEntry) []byte {
	var index, data []byte
	for _, e := range entries {
		for len(data)%8 != 0 {
			data = append(data, 0)
		}
		off := uint32(len(data))
		if e.offset != nil {
			off = *e.offset
		}
		index = binary.BigEndian.AppendUint32(index, e.tag)
		index = binary.BigEndian.AppendUint32(index, e.typ)
		index = binary.BigEndian.AppendUint32(index, off)
		index = binary.BigEndian.AppendUint32(index, e.count)
		data = append(data, e.data...)
	}
	blob := binary.BigEndian.AppendUint32(nil, uint32(len(entries)))
	blob = binary.BigEndian.AppendUint32(blob, uint32(len(data)))
	return append(append(blob, index...), data...)
}

// parseTestHeader parses a blob into a Package like ReadPackages does.
func parseTestHeader(blob []byte) (Package, error) {
	h, err := parseHeader(blob)
	if err != nil {
		return Package{}, err
	}
	return packageFromHeader(h)
}

func TestParseHeader(t *testing.T) {
	base := []testEntry{
		strEntry(tagName, "pkg"),
		strEntry(tagVersion, "1.2"),
		strEntry(tagRelease, "3"),
		strEntry(tagArch, "x86_64"),
		strEntry(tagSourceRPM, "pkg-1.2-3.src.rpm"),
		int32Entry(tagEpoch, 4),
		int32Entry(tagBuildTime, 0xfffffff0), // after 2038: unsigned
		int32Entry(tagChangelogTime, 300, 200, 100),
	}
	t.Run("new style files", func(t *testing.T) {
		p, err := parseTestHeader(buildHeader(append(base,
			strArrayEntry(tagDirNames, "/usr/bin/", "/etc/"),
			strArrayEntry(tagBasenames, "a", "b.conf", "c"),
			int32Entry(tagDirIndexes, 0, 1, 0),
		)...))
		if err != nil {
			t.Fatal(err)
		}
		want := Package{Name: "pkg", Version: "1.2", Release: "3", Arch: "x86_64", SourceRPM: "pkg-1.2-3.src.rpm",
			Epoch: 4, BuildTime: 0xfffffff0, Files: []string{"/usr/bin/a", "/etc/b.conf", "/usr/bin/c"},
			ChangelogTimes: []int64{300, 200, 100}}
		comparePackages(t, []Package{want}, []Package{p})
		if p.NEVRA() != "pkg-4:1.2-3.x86_64" {
			t.Errorf("NEVRA = %s", p.NEVRA())
		}
	})
	t.Run("old style files", func(t *testing.T) {
		p, err := parseTestHeader(buildHeader(append(base, strArrayEntry(tagOldFilenames, "/bin/sh", "/etc/x"))...))
		if err != nil || !slices.Equal(p.Files, []string{"/bin/sh", "/etc/x"}) {
			t.Fatalf("files %q, %v", p.Files, err)
		}
	})
	t.Run("later entry wins", func(t *testing.T) {
		p, err := parseTestHeader(buildHeader(append(base, strEntry(tagName, "renamed"))...))
		if err != nil || p.Name != "renamed" {
			t.Fatalf("name %q, %v", p.Name, err)
		}
	})
	t.Run("i18n string and no optional tags", func(t *testing.T) {
		p, err := parseTestHeader(buildHeader(testEntry{tag: tagName, typ: typeI18NString, count: 2, data: []byte("C\x00de\x00")}))
		if err != nil || p.Name != "C" || p.Files != nil || p.ChangelogTimes != nil || p.Epoch != 0 {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
	t.Run("int64 build time", func(t *testing.T) {
		p, err := parseTestHeader(buildHeader(strEntry(tagName, "n"),
			testEntry{tag: tagBuildTime, typ: typeInt64, count: 1, data: []byte{0, 0, 0, 1, 0, 0, 0, 0}}))
		if err != nil || p.BuildTime != 1<<32 {
			t.Fatalf("got %+v, %v", p, err)
		}
	})
}

func TestCorruptHeaders(t *testing.T) {
	name := strEntry(tagName, "pkg")
	off := func(v uint32) *uint32 { return &v }
	longDir := strings.Repeat("d", 4000)
	manyFiles := make([]string, 2000)
	manyIndexes := make([]uint32, 2000)
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"empty", nil},
		{"short", []byte{0, 0, 0, 1}},
		{"no entries", buildHeader()},
		{"too many entries", binary.BigEndian.AppendUint32([]byte{0, 1, 0, 0}, 0)},
		{"data too long", []byte{0, 0, 0, 1, 0x10, 0, 0, 1}},
		{"truncated index", buildHeader(name, strEntry(tagVersion, "1"))[:30]},
		{"truncated data", func() []byte { b := buildHeader(name); return b[:len(b)-1] }()},
		{"no name", buildHeader(strEntry(tagVersion, "1"))},
		{"name offset outside data", buildHeader(testEntry{tag: tagName, typ: typeString, count: 1, data: []byte("x\x00"), offset: off(2)})},
		{"name offset huge", buildHeader(testEntry{tag: tagName, typ: typeString, count: 1, data: []byte("x\x00"), offset: off(0xffffffff)})},
		{"name not a string", buildHeader(int32Entry(tagName, 7))},
		{"name unterminated", buildHeader(testEntry{tag: tagName, typ: typeString, count: 1, data: []byte("pkg")})},
		{"zero count", buildHeader(testEntry{tag: tagName, typ: typeString, count: 0, data: []byte("pkg\x00")})},
		{"epoch overruns data", buildHeader(name, testEntry{tag: tagEpoch, typ: typeInt32, count: 1, data: []byte{0, 1}})},
		{"epoch negative", buildHeader(name, testEntry{tag: tagEpoch, typ: typeInt64, count: 1, data: bytes.Repeat([]byte{0xff}, 8)})},
		{"changelog count huge", buildHeader(name, testEntry{tag: tagChangelogTime, typ: typeInt32, count: 0xffffffff, data: make([]byte, 8)})},
		{"string array count huge", buildHeader(name, testEntry{tag: tagBasenames, typ: typeStringArray, count: 0xffffffff, data: []byte("a\x00")})},
		{"string array unterminated", buildHeader(name, testEntry{tag: tagOldFilenames, typ: typeStringArray, count: 2, data: []byte("a\x00b")})},
		{"basenames without dir indexes", buildHeader(name, strArrayEntry(tagDirNames, "/"), strArrayEntry(tagBasenames, "a"))},
		{"dir index out of range", buildHeader(name, strArrayEntry(tagDirNames, "/"), strArrayEntry(tagBasenames, "a"), int32Entry(tagDirIndexes, 1))},
		{"dir index without dirnames", buildHeader(name, strArrayEntry(tagBasenames, "a"), int32Entry(tagDirIndexes, 0))},
		{"paths blow up", buildHeader(name, strArrayEntry(tagDirNames, longDir), strArrayEntry(tagBasenames, manyFiles...),
			int32Entry(tagDirIndexes, manyIndexes...))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := parseTestHeader(tc.blob)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %+v, %v; want ErrCorrupt", p, err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestVarint(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		v    uint64
		size int
	}{
		{[]byte{0x00}, 0, 1},
		{[]byte{0x7f, 0xff}, 127, 1},
		{[]byte{0x81, 0x00}, 128, 2},
		{[]byte{0x82, 0x80, 0x01}, 1<<15 | 1, 3},
		{bytes.Repeat([]byte{0xff}, 9), ^uint64(0), 9},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x81, 0x02}, 1<<8 | 2, 9},
		{nil, 0, 0},
		{[]byte{0x80}, 0, 0},
		{bytes.Repeat([]byte{0xff}, 8), 0, 0},
	} {
		v, n := varint(tc.in)
		if v != tc.v || n != tc.size {
			t.Errorf("varint(% x) = %d, %d; want %d, %d", tc.in, v, n, tc.v, tc.size)
		}
	}
}

func TestLocalPayload(t *testing.T) {
	// Values from the rules in fileformat2.html §1.6 for U = 4096:
	// X = 4061, M = 489.
	db := &sqliteDB{usable: 4096}
	for _, tc := range []struct{ p, want uint64 }{
		{0, 0},
		{4061, 4061},
		{4062, 489},                 // K = 489 + (4062-489)%4092 = 4062 > X
		{489 + 4092 + 100, 589},     // K = 589 <= X
		{489 + 2*4092 + 3572, 4061}, // K = X exactly
		{1 << 30, 489 + (1<<30-489)%4092},
	} {
		if got := db.localPayload(tc.p); got != tc.want {
			t.Errorf("localPayload(%d) = %d, want %d", tc.p, got, tc.want)
		}
	}
}

func TestParseRecord(t *testing.T) {
	// Header: size 7; NULL, int8, int48, 0, 1, text of 2, blob of 1.
	rec := []byte{8, 0, 1, 5, 8, 9, 17, 14, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfd, 'h', 'i', 0x42}
	vals, err := parseRecord(rec, 8)
	if err != nil {
		t.Fatal(err)
	}
	want := []value{
		{kind: valNull}, {kind: valInt, num: -2}, {kind: valInt, num: -3}, {kind: valInt, num: 0},
		{kind: valInt, num: 1}, {kind: valText, bytes: []byte("hi")}, {kind: valBlob, bytes: []byte{0x42}}, {kind: valNull},
	}
	for i := range want {
		if vals[i].kind != want[i].kind || vals[i].num != want[i].num || !bytes.Equal(vals[i].bytes, want[i].bytes) {
			t.Errorf("column %d = %+v, want %+v", i, vals[i], want[i])
		}
	}
	for _, bad := range [][]byte{nil, {9, 0}, {2, 10}, {2, 14}, {3, 0x80}} {
		if _, err := parseRecord(bad, 4); !errors.Is(err, ErrCorrupt) {
			t.Errorf("parseRecord(% x) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestText(t *testing.T) {
	for enc, b := range map[int][]byte{
		encUTF8:    []byte("Packages"),
		encUTF16LE: []byte("P\x00a\x00c\x00k\x00a\x00g\x00e\x00s\x00"),
		encUTF16BE: []byte("\x00P\x00a\x00c\x00k\x00a\x00g\x00e\x00s"),
	} {
		db := &sqliteDB{encoding: enc}
		if got := db.text(value{kind: valText, bytes: b}); got != "Packages" {
			t.Errorf("encoding %d: text = %q", enc, got)
		}
	}
}

// TestDeepTree checks the b-tree depth limit on a chain of interior pages
// without cells, each pointing to the next.
func TestDeepTree(t *testing.T) {
	const pageSize, pages = 512, 2 * maxBtreeDepth
	data := make([]byte, pageSize*pages)
	for pg := 2; pg <= pages; pg++ {
		p := data[(pg-1)*pageSize:]
		p[0] = pageTableInner
		be32(p[8:], uint32(pg+1))
	}
	db := &sqliteDB{r: bytes.NewReader(data), pageSize: pageSize, usable: pageSize, npages: pages,
		used: map[uint32]struct{}{}, ovf: make([]byte, pageSize)}
	err := db.scanTable(2, func(int64, []byte) error { return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "deeper") {
		t.Fatalf("scanTable = %v, want ErrCorrupt for depth", err)
	}
}
