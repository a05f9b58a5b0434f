package rpmdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf16"
)

// This file is a minimal, read-only reader of the SQLite database file format
// (https://www.sqlite.org/fileformat2.html). It understands just enough to
// find a table's root page in sqlite_schema and to visit every row of a
// rowid table: the database header, table b-tree interior and leaf pages,
// cell payloads with their overflow chains, and the record format. It never
// reads a write-ahead log, index b-trees, the freelist or pointer-map pages.

const (
	sqliteMagic     = "SQLite format 3\x00"
	dbHeaderSize    = 100
	pageTableInner  = 0x05 // table b-tree interior page
	pageTableLeaf   = 0x0d // table b-tree leaf page
	pageIndexInner  = 0x02 // index b-tree interior page
	pageIndexLeaf   = 0x0a // index b-tree leaf page
	minUsableSize   = 480
	maxBtreeDepth   = 40      // SQLite itself gives up at 20
	maxPayloadBytes = 1 << 31 // SQLite's hard limit on a row is below 2^31
	// maxRecordColumns bounds the columns decoded from one record; no
	// table this package reads has more.
	maxRecordColumns = 8
)

// Text encodings, database header offset 56.
const (
	encUTF8    = 1
	encUTF16LE = 2
	encUTF16BE = 3
)

// pageStats counts the pages visited while scanning one table, so tests can
// check that interior pages and overflow chains were exercised.
type pageStats struct {
	interior, leaf, overflow int
}

// sqliteDB is an open SQLite file. Every page is read at most once per
// sqliteDB: a second visit means the file has a cycle or shares pages between
// structures, and is reported as corruption. That bounds the work (and the
// bytes of payload produced) by the file size.
type sqliteDB struct {
	r        io.ReaderAt
	pageSize int    // bytes per page
	usable   int    // page size minus reserved bytes at the end of each page
	npages   uint32 // pages in the file
	encoding int    // text encoding of the database
	wal      bool   // the file is in WAL mode
	used     map[uint32]struct{}
	bufs     [][]byte // one page buffer per b-tree depth
	ovf      []byte   // buffer for overflow pages
	extents  []extent // scratch space for leaf cell extents
	stats    *pageStats
}

// extent is the byte range of one cell within its page.
type extent struct{ start, end int }

// corruptf returns an error wrapping ErrCorrupt with a formatted context.
func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// openSQLite validates the database header of the size-byte file r.
func openSQLite(r io.ReaderAt, size int64) (*sqliteDB, error) {
	if size < int64(len(sqliteMagic)) {
		return nil, fmt.Errorf("%w: file is %d bytes", ErrNotSQLite, size)
	}
	hdr := make([]byte, dbHeaderSize)
	n, err := r.ReadAt(hdr[:min(int64(len(hdr)), size)], 0)
	if n < len(sqliteMagic) {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("read database header: %w", err)
	}
	if string(hdr[:len(sqliteMagic)]) != sqliteMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrNotSQLite)
	}
	if size < dbHeaderSize || n < dbHeaderSize {
		return nil, corruptf("truncated database header")
	}

	pageSize := int(binary.BigEndian.Uint16(hdr[16:]))
	if pageSize == 1 {
		pageSize = 65536
	}
	if pageSize < 512 || pageSize > 65536 || pageSize&(pageSize-1) != 0 {
		return nil, corruptf("bad page size %d", pageSize)
	}
	readVersion := hdr[19]
	if readVersion != 1 && readVersion != 2 {
		return nil, corruptf("unsupported file format read version %d", readVersion)
	}
	usable := pageSize - int(hdr[20])
	if usable < minUsableSize {
		return nil, corruptf("usable page size %d too small", usable)
	}
	if hdr[21] != 64 || hdr[22] != 32 || hdr[23] != 32 {
		return nil, corruptf("bad payload fractions %d/%d/%d", hdr[21], hdr[22], hdr[23])
	}
	encoding := int(binary.BigEndian.Uint32(hdr[56:]))
	switch encoding {
	case 0: // not yet set in a database with no schema
		encoding = encUTF8
	case encUTF8, encUTF16LE, encUTF16BE:
	default:
		return nil, corruptf("bad text encoding %d", encoding)
	}

	filePages := size / int64(pageSize)
	if filePages == 0 {
		return nil, corruptf("file shorter than one page")
	}
	npages := uint32(min(filePages, int64(^uint32(0))))
	// The in-header size is authoritative when valid (its change counter
	// matches); trailing pages beyond it are not part of the database.
	if inHeader := binary.BigEndian.Uint32(hdr[28:]); inHeader != 0 &&
		binary.BigEndian.Uint32(hdr[24:]) == binary.BigEndian.Uint32(hdr[92:]) {
		npages = min(npages, inHeader)
	}

	return &sqliteDB{
		r:        r,
		pageSize: pageSize,
		usable:   usable,
		npages:   npages,
		encoding: encoding,
		wal:      readVersion == 2,
		used:     make(map[uint32]struct{}),
		ovf:      make([]byte, pageSize),
	}, nil
}

// readPage reads page pgno into buf (len pageSize), refusing pages outside the
// file and pages already read.
func (db *sqliteDB) readPage(pgno uint32, buf []byte) error {
	if pgno == 0 || pgno > db.npages {
		return corruptf("page number %d out of range 1..%d", pgno, db.npages)
	}
	if _, dup := db.used[pgno]; dup {
		return corruptf("page %d referenced twice", pgno)
	}
	db.used[pgno] = struct{}{}
	n, err := db.r.ReadAt(buf, int64(pgno-1)*int64(db.pageSize))
	if n == len(buf) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return corruptf("page %d: short read", pgno)
	}
	return fmt.Errorf("read page %d: %w", pgno, err)
}

// pageBuf returns the page buffer for b-tree depth depth.
func (db *sqliteDB) pageBuf(depth int) []byte {
	for len(db.bufs) <= depth {
		db.bufs = append(db.bufs, make([]byte, db.pageSize))
	}
	return db.bufs[depth]
}

// rowFunc receives one row of a table: its rowid and its record payload. The
// payload is only valid during the call.
type rowFunc func(rowid int64, payload []byte) error

// scanTable calls fn for every row of the table b-tree rooted at page root,
// in rowid order.
func (db *sqliteDB) scanTable(root uint32, fn rowFunc) error {
	return db.walk(root, 0, fn)
}

func (db *sqliteDB) walk(pgno uint32, depth int, fn rowFunc) error {
	if depth >= maxBtreeDepth {
		return corruptf("b-tree deeper than %d pages at page %d", maxBtreeDepth, pgno)
	}
	page := db.pageBuf(depth)
	if err := db.readPage(pgno, page); err != nil {
		return err
	}
	hdr := 0
	if pgno == 1 {
		hdr = dbHeaderSize
	}
	switch page[hdr] {
	case pageTableInner:
		return db.walkInterior(pgno, page, hdr, depth, fn)
	case pageTableLeaf:
		return db.walkLeaf(pgno, page, hdr, fn)
	case pageIndexInner, pageIndexLeaf:
		return corruptf("page %d: index page in a table b-tree", pgno)
	default:
		return corruptf("page %d: bad b-tree page type %#x", pgno, page[hdr])
	}
}

// cellPointers returns the cell count of a b-tree page whose header (of
// hdrLen bytes) starts at hdr, and the offset of its cell pointer array.
func (db *sqliteDB) cellPointers(pgno uint32, page []byte, hdr, hdrLen int) (ncells, ptrs int, err error) {
	ncells = int(binary.BigEndian.Uint16(page[hdr+3:]))
	ptrs = hdr + hdrLen
	if ptrs+2*ncells > db.usable {
		return 0, 0, corruptf("page %d: %d cells do not fit", pgno, ncells)
	}
	return ncells, ptrs, nil
}

// cellOffset returns the offset of cell i, checked to lie in the cell content
// area (after the pointer array, before the reserved space).
func (db *sqliteDB) cellOffset(pgno uint32, page []byte, ptrs, ncells, i int) (int, error) {
	off := int(binary.BigEndian.Uint16(page[ptrs+2*i:]))
	if off < ptrs+2*ncells || off >= db.usable {
		return 0, corruptf("page %d: cell %d offset %d out of range", pgno, i, off)
	}
	return off, nil
}

func (db *sqliteDB) walkInterior(pgno uint32, page []byte, hdr, depth int, fn rowFunc) error {
	if db.stats != nil {
		db.stats.interior++
	}
	ncells, ptrs, err := db.cellPointers(pgno, page, hdr, 12)
	if err != nil {
		return err
	}
	right := binary.BigEndian.Uint32(page[hdr+8:])
	for i := range ncells {
		off, err := db.cellOffset(pgno, page, ptrs, ncells, i)
		if err != nil {
			return err
		}
		if off+4 > db.usable {
			return corruptf("page %d: cell %d truncated", pgno, i)
		}
		// The page buffer for this depth stays intact while the children
		// (which use deeper buffers) are visited.
		if err := db.walk(binary.BigEndian.Uint32(page[off:]), depth+1, fn); err != nil {
			return err
		}
	}
	return db.walk(right, depth+1, fn)
}

// localPayload returns how many of a cell's payload bytes are stored on a
// table leaf page; the rest is in overflow pages.
func (db *sqliteDB) localPayload(payload uint64) uint64 {
	u := uint64(db.usable)
	maxLocal := u - 35
	if payload <= maxLocal {
		return payload
	}
	minLocal := (u-12)*32/255 - 23
	k := minLocal + (payload-minLocal)%(u-4)
	if k <= maxLocal {
		return k
	}
	return minLocal
}

func (db *sqliteDB) walkLeaf(pgno uint32, page []byte, hdr int, fn rowFunc) error {
	if db.stats != nil {
		db.stats.leaf++
	}
	ncells, ptrs, err := db.cellPointers(pgno, page, hdr, 8)
	if err != nil {
		return err
	}
	type cell struct {
		rowid       int64
		size, local uint64
		body        int // offset of the local payload
	}
	// First pass: decode and bounds-check every cell and make sure no two
	// overlap, so the local payloads together never exceed the page.
	cells := make([]cell, ncells)
	db.extents = db.extents[:0]
	for i := range ncells {
		off, err := db.cellOffset(pgno, page, ptrs, ncells, i)
		if err != nil {
			return err
		}
		area := page[off:db.usable]
		size, n1 := varint(area)
		if n1 == 0 {
			return corruptf("page %d: cell %d truncated", pgno, i)
		}
		rowid, n2 := varint(area[n1:])
		if n2 == 0 {
			return corruptf("page %d: cell %d truncated", pgno, i)
		}
		if size > maxPayloadBytes {
			return corruptf("page %d: cell %d payload of %d bytes", pgno, i, size)
		}
		local := db.localPayload(size)
		end := uint64(off+n1+n2) + local
		if local < size {
			end += 4 // first overflow page number
		}
		if end > uint64(db.usable) {
			return corruptf("page %d: cell %d overruns the page", pgno, i)
		}
		cells[i] = cell{rowid: int64(rowid), size: size, local: local, body: off + n1 + n2}
		db.extents = append(db.extents, extent{off, int(end)})
	}
	slices.SortFunc(db.extents, func(a, b extent) int { return a.start - b.start })
	for i := 1; i < len(db.extents); i++ {
		if db.extents[i].start < db.extents[i-1].end {
			return corruptf("page %d: overlapping cells", pgno)
		}
	}

	for _, c := range cells {
		local := page[c.body : c.body+int(c.local)]
		payload := local
		if c.local < c.size {
			first := binary.BigEndian.Uint32(page[c.body+int(c.local):])
			payload, err = db.overflow(local, c.size, first)
			if err != nil {
				return fmt.Errorf("row %d: %w", c.rowid, err)
			}
		}
		if err := fn(c.rowid, payload); err != nil {
			return err
		}
	}
	return nil
}

// overflow assembles a payload of size bytes from its local part and the
// overflow chain starting at page first.
func (db *sqliteDB) overflow(local []byte, size uint64, first uint32) ([]byte, error) {
	perPage := uint64(db.usable - 4)
	rest := size - uint64(len(local))
	need := (rest + perPage - 1) / perPage
	if free := uint64(db.npages) - uint64(len(db.used)); need > free {
		return nil, corruptf("payload of %d bytes needs %d overflow pages, file has %d unread", size, need, free)
	}
	out := make([]byte, size)
	pos := copy(out, local)
	pgno := first
	for range need {
		if err := db.readPage(pgno, db.ovf); err != nil {
			return nil, fmt.Errorf("overflow chain: %w", err)
		}
		if db.stats != nil {
			db.stats.overflow++
		}
		pgno = binary.BigEndian.Uint32(db.ovf)
		pos += copy(out[pos:], db.ovf[4:db.usable])
	}
	// A well-formed chain ends exactly here (next page 0); a longer chain
	// is harmless to a reader and is not chased.
	return out, nil
}

// varint decodes an SQLite variable-length integer (1 to 9 bytes, big-endian,
// 7 bits per byte except the ninth which contributes 8). It returns the
// value and its length, or length 0 if b is too short.
func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	if len(b) < 9 {
		return 0, 0
	}
	return v<<8 | uint64(b[8]), 9
}

// Kinds of record values.
const (
	valNull = iota
	valInt
	valFloat
	valText
	valBlob
)

// value is one column of a record. Text and blob bytes alias the payload.
type value struct {
	kind  int
	num   int64
	bytes []byte
}

// parseRecord decodes the first maxCols columns of a record. Columns the
// record does not have are returned as NULL (as after ALTER TABLE ADD COLUMN).
func parseRecord(p []byte, maxCols int) ([]value, error) {
	hsize, n := varint(p)
	if n == 0 || hsize < uint64(n) || hsize > uint64(len(p)) {
		return nil, corruptf("bad record header size")
	}
	vals := make([]value, maxCols)
	pos, body := n, int(hsize)
	for col := 0; col < maxCols && pos < int(hsize); col++ {
		st, k := varint(p[pos:hsize])
		if k == 0 {
			return nil, corruptf("truncated record header")
		}
		pos += k
		var size uint64
		v := &vals[col]
		switch {
		case st == 0:
			v.kind = valNull
		case st <= 6:
			v.kind = valInt
			size = [...]uint64{0, 1, 2, 3, 4, 6, 8}[st]
		case st == 7:
			v.kind = valFloat
			size = 8
		case st == 8 || st == 9:
			v.kind, v.num = valInt, int64(st-8)
		case st == 10 || st == 11:
			return nil, corruptf("reserved serial type %d", st)
		case st%2 == 0:
			v.kind, size = valBlob, (st-12)/2
		default:
			v.kind, size = valText, (st-13)/2
		}
		if size > uint64(len(p)-body) {
			return nil, corruptf("record value overruns payload")
		}
		data := p[body : body+int(size)]
		body += int(size)
		switch v.kind {
		case valInt:
			if size > 0 {
				u := uint64(0)
				for _, b := range data {
					u = u<<8 | uint64(b)
				}
				shift := 64 - 8*size
				v.num = int64(u<<shift) >> shift // sign-extend
			}
		case valText, valBlob:
			v.bytes = data
		}
	}
	return vals, nil
}

// text decodes a text value in the database encoding.
func (db *sqliteDB) text(v value) string {
	if v.kind != valText {
		return ""
	}
	if db.encoding == encUTF8 {
		return string(v.bytes)
	}
	u := make([]uint16, len(v.bytes)/2)
	for i := range u {
		if db.encoding == encUTF16LE {
			u[i] = binary.LittleEndian.Uint16(v.bytes[2*i:])
		} else {
			u[i] = binary.BigEndian.Uint16(v.bytes[2*i:])
		}
	}
	return string(utf16.Decode(u))
}

// tableRoot looks table name up in sqlite_schema (case-insensitively, like
// SQLite) and returns its root page.
func (db *sqliteDB) tableRoot(name string) (uint32, error) {
	var root uint32
	found := false
	err := db.scanTable(1, func(_ int64, payload []byte) error {
		// type, name, tbl_name, rootpage, sql
		cols, err := parseRecord(payload, 4)
		if err != nil {
			return fmt.Errorf("sqlite_schema: %w", err)
		}
		if found || db.text(cols[0]) != "table" || !strings.EqualFold(db.text(cols[1]), name) {
			return nil
		}
		if cols[3].kind != valInt || cols[3].num < 2 || cols[3].num > int64(db.npages) {
			return corruptf("sqlite_schema: table %s has bad root page", name)
		}
		root, found = uint32(cols[3].num), true
		return nil
	})
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, corruptf("no %s table", name)
	}
	return root, nil
}
