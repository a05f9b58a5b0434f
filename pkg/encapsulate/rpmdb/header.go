package rpmdb

import (
	"bytes"
	"encoding/binary"
	"math"
	"strings"
)

// RPM header tags read by this package.
const (
	tagName          = 1000
	tagVersion       = 1001
	tagRelease       = 1002
	tagEpoch         = 1003
	tagBuildTime     = 1006
	tagArch          = 1022
	tagOldFilenames  = 1027
	tagSourceRPM     = 1044
	tagChangelogTime = 1080
	tagDirIndexes    = 1116
	tagBasenames     = 1117
	tagDirNames      = 1118
)

// RPM header data types.
const (
	typeNull        = 0
	typeChar        = 1
	typeInt8        = 2
	typeInt16       = 3
	typeInt32       = 4
	typeInt64       = 5
	typeString      = 6
	typeBin         = 7
	typeStringArray = 8
	typeI18NString  = 9
)

const (
	// indexEntrySize is the size of one header index entry.
	indexEntrySize = 16
	// maxIndexEntries and maxDataLength are rpm's own sanity limits
	// (hdrchkTags, hdrchkData in lib/header.c).
	maxIndexEntries = 0xffff
	maxDataLength   = 256 << 20
	// pathFactor bounds the bytes of the file paths of a header relative
	// to the header size. Files share directory names stored once, so
	// the joined paths can be larger than the header, but in real headers
	// every file also carries a digest, mode, size, owner and more, and
	// the paths take less room than the header itself.
	pathFactor = 16
)

// indexEntry is one entry of a header index: a tag and where its value is.
type indexEntry struct {
	typ, offset, count uint32
}

// header is a parsed RPM header blob as rpm stores it in its database: a
// big-endian entry count il and data length dl, il index entries of 16 bytes
// ({tag, type, offset, count}) and dl bytes of data. The blob normally starts
// with an immutable region (tag 63) whose trailer lives in the data; it is
// not interpreted: all entries are read, and for a tag listed more than once
// the last entry wins, as rpm lets entries after the region ("dribbles")
// replace those in it.
type header struct {
	entries map[uint32]indexEntry
	data    []byte
	size    int // bytes of the whole blob
}

// parseHeader parses the index of an RPM header blob. Values are checked
// when they are read.
func parseHeader(blob []byte) (*header, error) {
	if len(blob) < 8 {
		return nil, corruptf("header of %d bytes", len(blob))
	}
	il := binary.BigEndian.Uint32(blob)
	dl := binary.BigEndian.Uint32(blob[4:])
	if il == 0 || il > maxIndexEntries || dl > maxDataLength {
		return nil, corruptf("header with %d entries and %d data bytes", il, dl)
	}
	dataStart := 8 + uint64(il)*indexEntrySize
	if dataStart+uint64(dl) > uint64(len(blob)) {
		return nil, corruptf("header of %d entries and %d data bytes truncated to %d bytes", il, dl, len(blob))
	}
	h := &header{
		entries: make(map[uint32]indexEntry, min(il, 64)),
		data:    blob[dataStart : dataStart+uint64(dl)],
		size:    len(blob),
	}
	for i := range uint64(il) {
		e := blob[8+i*indexEntrySize:]
		tag := binary.BigEndian.Uint32(e)
		h.entries[tag] = indexEntry{
			typ:    binary.BigEndian.Uint32(e[4:]),
			offset: binary.BigEndian.Uint32(e[8:]),
			count:  binary.BigEndian.Uint32(e[12:]),
		}
	}
	return h, nil
}

// value returns the data of tag from its offset to the end of the data, after
// checking the type is one of types.
func (h *header) value(tag uint32, types ...uint32) (indexEntry, []byte, bool, error) {
	e, ok := h.entries[tag]
	if !ok {
		return e, nil, false, nil
	}
	typeOK := false
	for _, t := range types {
		typeOK = typeOK || e.typ == t
	}
	if !typeOK {
		return e, nil, false, corruptf("tag %d has type %d", tag, e.typ)
	}
	if e.count == 0 || uint64(e.offset) >= uint64(len(h.data)) {
		return e, nil, false, corruptf("tag %d: offset %d count %d outside %d data bytes", tag, e.offset, e.count, len(h.data))
	}
	return e, h.data[e.offset:], true, nil
}

// stringValue returns a STRING tag (or the first string of an I18NSTRING or
// STRING_ARRAY tag).
func (h *header) stringValue(tag uint32) (string, bool, error) {
	_, d, ok, err := h.value(tag, typeString, typeI18NString, typeStringArray)
	if !ok || err != nil {
		return "", false, err
	}
	end := bytes.IndexByte(d, 0)
	if end < 0 {
		return "", false, corruptf("tag %d: unterminated string", tag)
	}
	return string(d[:end]), true, nil
}

// stringArray returns the strings of a STRING_ARRAY or I18NSTRING tag.
func (h *header) stringArray(tag uint32) ([]string, bool, error) {
	e, d, ok, err := h.value(tag, typeStringArray, typeI18NString)
	if !ok || err != nil {
		return nil, false, err
	}
	// Every string takes at least its terminating NUL byte.
	if uint64(e.count) > uint64(len(d)) {
		return nil, false, corruptf("tag %d: %d strings in %d bytes", tag, e.count, len(d))
	}
	out := make([]string, e.count)
	for i := range out {
		end := bytes.IndexByte(d, 0)
		if end < 0 {
			return nil, false, corruptf("tag %d: unterminated string %d", tag, i)
		}
		out[i] = string(d[:end])
		d = d[end+1:]
	}
	return out, true, nil
}

// ints returns the values of an integer tag. INT8, INT16 and INT32 values
// are read as unsigned, as rpm prints them; INT64 values as signed.
func (h *header) ints(tag uint32) ([]int64, bool, error) {
	e, d, ok, err := h.value(tag, typeChar, typeInt8, typeInt16, typeInt32, typeInt64)
	if !ok || err != nil {
		return nil, false, err
	}
	width := uint64(1)
	switch e.typ {
	case typeInt16:
		width = 2
	case typeInt32:
		width = 4
	case typeInt64:
		width = 8
	}
	if uint64(e.count)*width > uint64(len(d)) {
		return nil, false, corruptf("tag %d: %d values of %d bytes overrun the data", tag, e.count, width)
	}
	out := make([]int64, e.count)
	for i := range out {
		v := d[uint64(i)*width:]
		switch width {
		case 1:
			out[i] = int64(v[0])
		case 2:
			out[i] = int64(binary.BigEndian.Uint16(v))
		case 4:
			out[i] = int64(binary.BigEndian.Uint32(v))
		default:
			out[i] = int64(binary.BigEndian.Uint64(v))
		}
	}
	return out, true, nil
}

// intValue returns the first value of an integer tag.
func (h *header) intValue(tag uint32) (int64, bool, error) {
	v, ok, err := h.ints(tag)
	if !ok || err != nil {
		return 0, false, err
	}
	return v[0], true, nil
}

// files returns the file paths of the header: DIRNAMES[DIRINDEXES[i]] +
// BASENAMES[i], or OLDFILENAMES in headers from before rpm 4.
func (h *header) files() ([]string, error) {
	base, ok, err := h.stringArray(tagBasenames)
	if err != nil {
		return nil, err
	}
	if !ok {
		old, _, err := h.stringArray(tagOldFilenames)
		return old, err
	}
	dirs, _, err := h.stringArray(tagDirNames)
	if err != nil {
		return nil, err
	}
	idx, _, err := h.ints(tagDirIndexes)
	if err != nil {
		return nil, err
	}
	if len(idx) != len(base) {
		return nil, corruptf("%d basenames but %d dir indexes", len(base), len(idx))
	}
	// Joining paths can take far more memory than the header (a long
	// directory shared by many files): refuse unreasonable blow-ups.
	budget := uint64(pathFactor) * uint64(h.size)
	total := uint64(0)
	for i, d := range idx {
		if d < 0 || d >= int64(len(dirs)) {
			return nil, corruptf("dir index %d of file %d out of range (%d dirs)", d, i, len(dirs))
		}
		total += uint64(len(dirs[d]) + len(base[i]))
		if total > budget {
			return nil, corruptf("file paths exceed %d bytes", budget)
		}
	}
	// All paths share one backing string: one allocation instead of one
	// per file.
	var sb strings.Builder
	sb.Grow(int(total))
	for i, d := range idx {
		sb.WriteString(dirs[d])
		sb.WriteString(base[i])
	}
	all := sb.String()
	out := make([]string, len(base))
	pos := 0
	for i, d := range idx {
		n := len(dirs[d]) + len(base[i])
		out[i] = all[pos : pos+n]
		pos += n
	}
	return out, nil
}

// packageFromHeader extracts a Package from a parsed header.
func packageFromHeader(h *header) (Package, error) {
	var p Package
	name, ok, err := h.stringValue(tagName)
	if err != nil {
		return p, err
	}
	if !ok {
		return p, corruptf("header has no name")
	}
	p.Name = name
	for _, f := range []struct {
		tag uint32
		dst *string
	}{
		{tagVersion, &p.Version},
		{tagRelease, &p.Release},
		{tagArch, &p.Arch},
		{tagSourceRPM, &p.SourceRPM},
	} {
		if *f.dst, _, err = h.stringValue(f.tag); err != nil {
			return p, err
		}
	}
	epoch, _, err := h.intValue(tagEpoch)
	if err != nil {
		return p, err
	}
	if epoch < 0 || epoch > math.MaxUint32 {
		return p, corruptf("epoch %d out of range", epoch)
	}
	p.Epoch = int(epoch)
	if p.BuildTime, _, err = h.intValue(tagBuildTime); err != nil {
		return p, err
	}
	if p.ChangelogTimes, _, err = h.ints(tagChangelogTime); err != nil {
		return p, err
	}
	if p.Files, err = h.files(); err != nil {
		return p, err
	}
	return p, nil
}
