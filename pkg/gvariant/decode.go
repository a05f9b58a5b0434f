package gvariant

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// ErrNotNormal reports serialized data that is malformed or not in normal form.
var ErrNotNormal = errors.New("gvariant: data is not in normal form")

func malformed(t *Type, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrNotNormal, t.str, fmt.Sprintf(format, args...))
}

// Unmarshal decodes data as a value of type t. It fails with an error wrapping ErrNotNormal unless
// data is exactly the normal-form serialization of some value of type t. The result never aliases
// data.
func Unmarshal(t *Type, data []byte) (any, error) {
	v, err := decodeValue(t, data, 0)
	if err != nil {
		return nil, err
	}
	// Structural checks above catch bad framing; re-encoding catches every remaining deviation
	// from normal form (non-zero padding, over-wide offsets, elements not packed tightly).
	again, err := Marshal(t, v)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotNormal, err)
	}
	if !bytes.Equal(again, data) {
		return nil, malformed(t, "serialization differs from normal form")
	}
	return v, nil
}

func readUint(b []byte, w int) uint64 {
	var v uint64
	for i := 0; i < w; i++ {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

func decodeValue(t *Type, b []byte, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, malformed(t, "nested deeper than %d", MaxDepth)
	}
	if t.fixed != 0 && len(b) != t.fixed {
		return nil, malformed(t, "size %d, want %d", len(b), t.fixed)
	}
	switch t.kind {
	case 'y':
		return b[0], nil
	case 'b':
		if b[0] > 1 {
			return nil, malformed(t, "boolean byte %#x", b[0])
		}
		return b[0] == 1, nil
	case 'n':
		return int16(binary.LittleEndian.Uint16(b)), nil
	case 'q':
		return binary.LittleEndian.Uint16(b), nil
	case 'i', 'h':
		return int32(binary.LittleEndian.Uint32(b)), nil
	case 'u':
		return binary.LittleEndian.Uint32(b), nil
	case 'x':
		return int64(binary.LittleEndian.Uint64(b)), nil
	case 't':
		return binary.LittleEndian.Uint64(b), nil
	case 'd':
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case 's', 'o', 'g':
		if len(b) == 0 || b[len(b)-1] != 0 {
			return nil, malformed(t, "string is not NUL-terminated")
		}
		s := b[:len(b)-1]
		if bytes.IndexByte(s, 0) >= 0 {
			return nil, malformed(t, "string contains a NUL byte")
		}
		if !utf8.Valid(s) {
			return nil, malformed(t, "string is not valid UTF-8")
		}
		str := string(s)
		if err := checkString(t.kind, str); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotNormal, err)
		}
		return str, nil
	case 'v':
		i := bytes.LastIndexByte(b, 0)
		if i < 0 {
			return nil, malformed(t, "variant has no type separator")
		}
		ct, err := ParseType(string(b[i+1:]))
		if err != nil {
			return nil, fmt.Errorf("%w: variant type: %v", ErrNotNormal, err)
		}
		child, err := decodeValue(ct, b[:i], depth+1)
		if err != nil {
			return nil, err
		}
		return Variant{Type: ct, Value: child}, nil
	case 'm':
		if len(b) == 0 {
			return Maybe{}, nil
		}
		cb := b
		if t.elem.fixed == 0 {
			if b[len(b)-1] != 0 {
				return nil, malformed(t, "maybe is not terminated by a zero byte")
			}
			cb = b[:len(b)-1]
		}
		child, err := decodeValue(t.elem, cb, depth+1)
		if err != nil {
			return nil, err
		}
		return Maybe{Valid: true, Value: child}, nil
	case 'a':
		return decodeArray(t, b, depth)
	case '(', '{':
		return decodeTuple(t, b, depth)
	}
	return nil, fmt.Errorf("gvariant: unsupported type %q", t.str)
}

func decodeArray(t *Type, b []byte, depth int) (any, error) {
	e := t.elem
	if e.kind == 'y' {
		return bytes.Clone(b), nil
	}
	if e.fixed != 0 {
		if len(b)%e.fixed != 0 {
			return nil, malformed(t, "size %d is not a multiple of the element size %d", len(b), e.fixed)
		}
		n := len(b) / e.fixed
		out := make([]any, 0, n)
		for i := 0; i < n; i++ {
			v, err := decodeValue(e, b[i*e.fixed:(i+1)*e.fixed], depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	if len(b) == 0 {
		return []any{}, nil
	}
	w := offsetSize(len(b))
	end := readUint(b[len(b)-w:], w)
	if end > uint64(len(b)) {
		return nil, malformed(t, "last framing offset %d beyond size %d", end, len(b))
	}
	table := uint64(len(b)) - end
	if table%uint64(w) != 0 || table == 0 {
		return nil, malformed(t, "framing table of %d bytes with offset width %d", table, w)
	}
	n := int(table / uint64(w))
	out := make([]any, 0, min(n, 1024))
	start := 0
	for i := 0; i < n; i++ {
		off := int(end) + i*w
		elemEnd := readUint(b[off:off+w], w)
		start = alignUp(start, e.align)
		if elemEnd > end || uint64(start) > elemEnd {
			return nil, malformed(t, "element %d framing offset %d out of range", i, elemEnd)
		}
		v, err := decodeValue(e, b[start:elemEnd], depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		start = int(elemEnd)
	}
	return out, nil
}

func decodeTuple(t *Type, b []byte, depth int) (any, error) {
	if len(t.fields) == 0 {
		// Size was checked against the fixed size 1; the byte must be zero (checked by re-encoding).
		return []any{}, nil
	}
	w := 0
	if t.fixed == 0 {
		w = offsetSize(len(b))
	}
	tableEnd := len(b) // the framing table grows down from the end
	out := make([]any, 0, len(t.fields))
	pos := 0
	for i, f := range t.fields {
		pos = alignUp(pos, f.align)
		var end int
		switch {
		case f.fixed != 0:
			end = pos + f.fixed
		case i == len(t.fields)-1:
			end = tableEnd
		default:
			if tableEnd-w < 0 || w == 0 {
				return nil, malformed(t, "framing table too short")
			}
			tableEnd -= w
			o := readUint(b[tableEnd:tableEnd+w], w)
			if o > uint64(len(b)) {
				return nil, malformed(t, "member %d framing offset %d beyond size %d", i, o, len(b))
			}
			end = int(o)
		}
		if pos > end || end > tableEnd {
			return nil, malformed(t, "member %d spans %d..%d outside the container", i, pos, end)
		}
		v, err := decodeValue(f, b[pos:end], depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		pos = end
	}
	if t.fixed != 0 {
		return out, nil
	}
	if pos != tableEnd {
		return nil, malformed(t, "%d unused bytes before the framing table", tableEnd-pos)
	}
	return out, nil
}
