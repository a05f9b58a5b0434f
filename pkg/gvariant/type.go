// Package gvariant encodes and decodes GVariant serialized data (GVariant specification 1.0, as
// implemented by GLib's gvariant-serialiser) for the types OSTree uses.
//
// Encoding always produces normal form. Decoding is strict: it refuses anything that is not in
// normal form (wrong framing offsets, non-zero padding, wider offsets than needed, wrong sizes,
// trailing data, invalid UTF-8 in strings), because every object OSTree names by checksum is
// written in normal form and any other serialization of the same value would hash differently.
//
// Go representations of values, by type:
//
//	y uint8        b bool          n int16         q uint16
//	i int32        u uint32        x int64         t uint64
//	h int32        d float64       s, o, g string
//	ay []byte      aT []any        mT Maybe        (…), {…} []any (one element per member)
//	v Variant
//
// Numbers are serialized little-endian (the host order of every platform we build for). OSTree
// stores its own numeric fields big-endian by swapping the value before serialization; that is the
// caller's business (see package ostree).
package gvariant

import (
	"errors"
	"fmt"
)

// MaxDepth bounds the nesting of containers, so that hostile input cannot exhaust the stack.
const MaxDepth = 64

// ErrInvalidType reports a malformed type string.
var ErrInvalidType = errors.New("invalid GVariant type string")

// Type is a parsed GVariant type. The zero value is not valid; use ParseType or MustParseType.
type Type struct {
	str    string
	kind   byte    // the first character of str: a basic type code, 'a', 'm', 'v', '(' or '{'
	elem   *Type   // element of an array or maybe
	fields []*Type // members of a tuple or dict entry
	align  int     // alignment in bytes: 1, 2, 4 or 8
	fixed  int     // serialized size if fixed-size, 0 if variable-size
}

// String returns the type string, e.g. "(a{sv}aya(say)sstayay)".
func (t *Type) String() string { return t.str }

// Alignment returns the type's alignment in bytes.
func (t *Type) Alignment() int { return t.align }

// FixedSize returns the serialized size of a fixed-size type, or 0 for a variable-size one.
func (t *Type) FixedSize() int { return t.fixed }

// ParseType parses a single complete type string.
func ParseType(s string) (*Type, error) {
	t, rest, err := parseOne(s, 0)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("%w: %q has trailing %q", ErrInvalidType, s, rest)
	}
	return t, nil
}

// MustParseType is ParseType for type strings that are constants of the program.
func MustParseType(s string) *Type {
	t, err := ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

func parseOne(s string, depth int) (*Type, string, error) {
	if depth > MaxDepth {
		return nil, "", fmt.Errorf("%w: nested deeper than %d", ErrInvalidType, MaxDepth)
	}
	if s == "" {
		return nil, "", fmt.Errorf("%w: unexpected end", ErrInvalidType)
	}
	c := s[0]
	switch c {
	case 'y', 'b':
		return &Type{str: s[:1], kind: c, align: 1, fixed: 1}, s[1:], nil
	case 'n', 'q':
		return &Type{str: s[:1], kind: c, align: 2, fixed: 2}, s[1:], nil
	case 'i', 'u', 'h':
		return &Type{str: s[:1], kind: c, align: 4, fixed: 4}, s[1:], nil
	case 'x', 't', 'd':
		return &Type{str: s[:1], kind: c, align: 8, fixed: 8}, s[1:], nil
	case 's', 'o', 'g':
		return &Type{str: s[:1], kind: c, align: 1}, s[1:], nil
	case 'v':
		return &Type{str: s[:1], kind: c, align: 8}, s[1:], nil
	case 'a', 'm':
		elem, rest, err := parseOne(s[1:], depth+1)
		if err != nil {
			return nil, "", err
		}
		n := len(s) - len(rest)
		return &Type{str: s[:n], kind: c, elem: elem, align: elem.align}, rest, nil
	case '(', '{':
		end := byte(')')
		if c == '{' {
			end = '}'
		}
		t := &Type{kind: c, align: 1}
		rest := s[1:]
		for {
			if rest == "" {
				return nil, "", fmt.Errorf("%w: unterminated %q", ErrInvalidType, s)
			}
			if rest[0] == end {
				rest = rest[1:]
				break
			}
			f, r, err := parseOne(rest, depth+1)
			if err != nil {
				return nil, "", err
			}
			t.fields = append(t.fields, f)
			rest = r
		}
		t.str = s[:len(s)-len(rest)]
		if c == '{' {
			if len(t.fields) != 2 || !isBasic(t.fields[0].kind) {
				return nil, "", fmt.Errorf("%w: dict entry %q needs a basic key and one value", ErrInvalidType, t.str)
			}
		}
		fixed := true
		off := 0
		for _, f := range t.fields {
			if f.align > t.align {
				t.align = f.align
			}
			if f.fixed == 0 {
				fixed = false
			} else {
				off = alignUp(off, f.align) + f.fixed
			}
		}
		if fixed {
			if len(t.fields) == 0 {
				t.fixed = 1 // the unit tuple is one zero byte
			} else {
				t.fixed = alignUp(off, t.align)
			}
		}
		return t, rest, nil
	}
	return nil, "", fmt.Errorf("%w: unknown type code %q", ErrInvalidType, c)
}

func isBasic(c byte) bool {
	switch c {
	case 'y', 'b', 'n', 'q', 'i', 'u', 'x', 't', 'h', 'd', 's', 'o', 'g':
		return true
	}
	return false
}

func alignUp(n, a int) int { return (n + a - 1) &^ (a - 1) }

// Variant is a value of type "v": a value together with its type.
type Variant struct {
	Type  *Type
	Value any
}

// Maybe is a value of a maybe type "mT". Valid false is Nothing.
type Maybe struct {
	Valid bool
	Value any
}
