package gvariant

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// Marshal serializes v as a value of type t, in normal form.
func Marshal(t *Type, v any) ([]byte, error) {
	return appendValue(nil, t, v, 0)
}

// AppendMarshal is Marshal appending to buf. buf's length must be a multiple of t's alignment for
// the result to be a valid serialization at that offset; at offset 0 that always holds.
func AppendMarshal(buf []byte, t *Type, v any) ([]byte, error) {
	return appendValue(buf, t, v, 0)
}

func typeErr(t *Type, v any) error {
	return fmt.Errorf("gvariant: cannot encode %T as %q", v, t.str)
}

func pad(buf []byte, base, align int) []byte {
	for (len(buf)-base)%align != 0 {
		buf = append(buf, 0)
	}
	return buf
}

// offsetSize is the framing offset width for a container whose serialized size is size.
func offsetSize(size int) int {
	switch {
	case size == 0:
		return 0
	case size <= 0xff:
		return 1
	case size <= 0xffff:
		return 2
	case uint64(size) <= 0xffffffff:
		return 4
	}
	return 8
}

// appendOffsets appends the framing offsets of a container whose body (from base) is already in
// buf, choosing the smallest width that frames the whole container.
func appendOffsets(buf []byte, base int, offsets []int) []byte {
	if len(offsets) == 0 {
		return buf
	}
	body := len(buf) - base
	w := 1
	for ; w < 8; w *= 2 {
		if uint64(body)+uint64(w*len(offsets)) <= (uint64(1)<<(8*w))-1 {
			break
		}
	}
	for _, o := range offsets {
		buf = appendUint(buf, uint64(o), w)
	}
	return buf
}

func appendUint(buf []byte, v uint64, w int) []byte {
	for i := 0; i < w; i++ {
		buf = append(buf, byte(v>>(8*i)))
	}
	return buf
}

func appendValue(buf []byte, t *Type, v any, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, fmt.Errorf("gvariant: value nested deeper than %d", MaxDepth)
	}
	switch t.kind {
	case 'y':
		x, ok := v.(uint8)
		if !ok {
			return nil, typeErr(t, v)
		}
		return append(buf, x), nil
	case 'b':
		x, ok := v.(bool)
		if !ok {
			return nil, typeErr(t, v)
		}
		if x {
			return append(buf, 1), nil
		}
		return append(buf, 0), nil
	case 'n':
		x, ok := v.(int16)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint16(buf, uint16(x)), nil
	case 'q':
		x, ok := v.(uint16)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint16(buf, x), nil
	case 'i', 'h':
		x, ok := v.(int32)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint32(buf, uint32(x)), nil
	case 'u':
		x, ok := v.(uint32)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint32(buf, x), nil
	case 'x':
		x, ok := v.(int64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(buf, uint64(x)), nil
	case 't':
		x, ok := v.(uint64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(buf, x), nil
	case 'd':
		x, ok := v.(float64)
		if !ok {
			return nil, typeErr(t, v)
		}
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(x)), nil
	case 's', 'o', 'g':
		x, ok := v.(string)
		if !ok {
			return nil, typeErr(t, v)
		}
		if err := checkString(t.kind, x); err != nil {
			return nil, err
		}
		buf = append(buf, x...)
		return append(buf, 0), nil
	case 'v':
		x, ok := v.(Variant)
		if !ok || x.Type == nil {
			return nil, typeErr(t, v)
		}
		// The child sits at the variant's start, which is 8-aligned, so its alignment holds.
		buf, err := appendValue(buf, x.Type, x.Value, depth+1)
		if err != nil {
			return nil, err
		}
		buf = append(buf, 0)
		return append(buf, x.Type.str...), nil
	case 'm':
		x, ok := v.(Maybe)
		if !ok {
			return nil, typeErr(t, v)
		}
		if !x.Valid {
			return buf, nil
		}
		buf, err := appendValue(buf, t.elem, x.Value, depth+1)
		if err != nil {
			return nil, err
		}
		if t.elem.fixed == 0 {
			buf = append(buf, 0)
		}
		return buf, nil
	case 'a':
		return appendArray(buf, t, v, depth)
	case '(', '{':
		return appendTuple(buf, t, v, depth)
	}
	return nil, fmt.Errorf("gvariant: unsupported type %q", t.str)
}

func appendArray(buf []byte, t *Type, v any, depth int) ([]byte, error) {
	if t.elem.kind == 'y' {
		x, ok := v.([]byte)
		if !ok {
			return nil, typeErr(t, v)
		}
		return append(buf, x...), nil
	}
	elems, ok := v.([]any)
	if !ok {
		return nil, typeErr(t, v)
	}
	base := len(buf)
	var err error
	if t.elem.fixed != 0 {
		for _, e := range elems {
			if buf, err = appendValue(buf, t.elem, e, depth+1); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
	offsets := make([]int, 0, len(elems))
	for _, e := range elems {
		buf = pad(buf, base, t.elem.align)
		if buf, err = appendValue(buf, t.elem, e, depth+1); err != nil {
			return nil, err
		}
		offsets = append(offsets, len(buf)-base)
	}
	return appendOffsets(buf, base, offsets), nil
}

func appendTuple(buf []byte, t *Type, v any, depth int) ([]byte, error) {
	members, ok := v.([]any)
	if !ok || len(members) != len(t.fields) {
		return nil, typeErr(t, v)
	}
	if len(t.fields) == 0 {
		return append(buf, 0), nil
	}
	base := len(buf)
	var offsets []int
	var err error
	for i, f := range t.fields {
		buf = pad(buf, base, f.align)
		if buf, err = appendValue(buf, f, members[i], depth+1); err != nil {
			return nil, err
		}
		if f.fixed == 0 && i != len(t.fields)-1 {
			offsets = append(offsets, len(buf)-base)
		}
	}
	if t.fixed != 0 {
		return pad(buf, base, t.align), nil
	}
	// Framing offsets of a tuple are stored in reverse member order.
	for i, j := 0, len(offsets)-1; i < j; i, j = i+1, j-1 {
		offsets[i], offsets[j] = offsets[j], offsets[i]
	}
	return appendOffsets(buf, base, offsets), nil
}

func checkString(kind byte, s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return fmt.Errorf("gvariant: string contains a NUL byte")
		}
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("gvariant: string is not valid UTF-8")
	}
	switch kind {
	case 'o':
		if !validObjectPath(s) {
			return fmt.Errorf("gvariant: %q is not a valid object path", s)
		}
	case 'g':
		if !validSignature(s) {
			return fmt.Errorf("gvariant: %q is not a valid signature", s)
		}
	}
	return nil
}

func validObjectPath(s string) bool {
	if s == "/" {
		return true
	}
	if len(s) < 2 || s[0] != '/' || s[len(s)-1] == '/' {
		return false
	}
	prevSlash := true
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/':
			if prevSlash {
				return false
			}
			prevSlash = true
			continue
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		default:
			return false
		}
		prevSlash = false
	}
	return true
}

func validSignature(s string) bool {
	for s != "" {
		_, rest, err := parseOne(s, 0)
		if err != nil {
			return false
		}
		s = rest
	}
	return true
}
