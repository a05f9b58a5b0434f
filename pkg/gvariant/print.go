package gvariant

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Print renders v in GVariant text format, as g_variant_print does: with annotate, type
// annotations are added where the text alone would not give the type (the first element of an
// array speaks for the rest).
func Print(t *Type, v any, annotate bool) string {
	var b strings.Builder
	printValue(&b, t, v, annotate)
	return b.String()
}

var annotations = map[byte]string{'y': "byte", 'n': "int16", 'q': "uint16", 'u': "uint32", 'x': "int64", 't': "uint64", 'h': "handle", 'o': "objectpath", 'g': "signature"}

func printValue(b *strings.Builder, t *Type, v any, annotate bool) {
	if annotate {
		if a, ok := annotations[t.kind]; ok {
			b.WriteString(a + " ")
		}
	}
	switch t.kind {
	case 'y':
		fmt.Fprintf(b, "0x%02x", v.(uint8))
	case 'b':
		b.WriteString(strconv.FormatBool(v.(bool)))
	case 'n':
		fmt.Fprint(b, v.(int16))
	case 'q':
		fmt.Fprint(b, v.(uint16))
	case 'i', 'h':
		fmt.Fprint(b, v.(int32))
	case 'u':
		fmt.Fprint(b, v.(uint32))
	case 'x':
		fmt.Fprint(b, v.(int64))
	case 't':
		fmt.Fprint(b, v.(uint64))
	case 'd':
		s := strconv.FormatFloat(v.(float64), 'g', -1, 64)
		if !strings.ContainsAny(s, ".eEnN") {
			s += ".0"
		}
		b.WriteString(s)
	case 's', 'o', 'g':
		b.WriteString(quote(v.(string)))
	case 'v':
		x := v.(Variant)
		b.WriteByte('<')
		printValue(b, x.Type, x.Value, true)
		b.WriteByte('>')
	case 'm':
		x := v.(Maybe)
		if !x.Valid {
			if annotate {
				b.WriteString("@" + t.str + " ")
			}
			b.WriteString("nothing")
			return
		}
		if t.elem.kind == 'm' {
			b.WriteString("just ")
		}
		printValue(b, t.elem, x.Value, annotate)
	case 'a':
		printArray(b, t, v, annotate)
	case '(', '{':
		fields := v.([]any)
		if t.kind == '{' {
			b.WriteByte('{')
			printValue(b, t.fields[0], fields[0], annotate)
			b.WriteString(": ")
			printValue(b, t.fields[1], fields[1], annotate)
			b.WriteByte('}')
			return
		}
		b.WriteByte('(')
		for i, f := range t.fields {
			if i > 0 {
				b.WriteString(", ")
			}
			printValue(b, f, fields[i], annotate)
		}
		if len(t.fields) == 1 {
			b.WriteByte(',')
		}
		b.WriteByte(')')
	}
}

func printArray(b *strings.Builder, t *Type, v any, annotate bool) {
	if t.elem.kind == 'y' {
		data := v.([]byte)
		if len(data) > 0 && data[len(data)-1] == 0 && isPrintableBytestring(data[:len(data)-1]) {
			b.WriteString("b" + quote(string(data[:len(data)-1])))
			return
		}
		if len(data) == 0 {
			if annotate {
				b.WriteString("@ay ")
			}
			b.WriteString("[]")
			return
		}
		b.WriteByte('[')
		for i, c := range data {
			if i > 0 {
				b.WriteString(", ")
			}
			if i == 0 && annotate {
				b.WriteString("byte ")
			}
			fmt.Fprintf(b, "0x%02x", c)
		}
		b.WriteByte(']')
		return
	}
	elems := v.([]any)
	if len(elems) == 0 {
		if annotate {
			b.WriteString("@" + t.str + " ")
		}
		b.WriteString("[]")
		return
	}
	if t.elem.kind == '{' {
		b.WriteByte('{')
		for i, e := range elems {
			if i > 0 {
				b.WriteString(", ")
			}
			kv := e.([]any)
			printValue(b, t.elem.fields[0], kv[0], annotate && i == 0)
			b.WriteString(": ")
			printValue(b, t.elem.fields[1], kv[1], annotate && i == 0)
		}
		b.WriteByte('}')
		return
	}
	b.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			b.WriteString(", ")
		}
		printValue(b, t.elem, e, annotate && i == 0)
	}
	b.WriteByte(']')
}

func isPrintableBytestring(b []byte) bool {
	for _, c := range b {
		if c == 0 || c >= 0x80 || !unicode.IsPrint(rune(c)) && c != '\n' && c != '\t' {
			return false
		}
	}
	return true
}

func quoteWith(s string, q byte) string {
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch r {
		case rune(q), '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\a':
			b.WriteString(`\a`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\v':
			b.WriteString(`\v`)
		default:
			if unicode.IsPrint(r) {
				b.WriteRune(r)
			} else if r < 0x10000 {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				fmt.Fprintf(&b, `\U%08x`, r)
			}
		}
	}
	b.WriteByte(q)
	return b.String()
}

// quote picks single quotes unless the string holds a single quote and no double quote.
func quote(s string) string {
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		return quoteWith(s, '"')
	}
	return quoteWith(s, '\'')
}
