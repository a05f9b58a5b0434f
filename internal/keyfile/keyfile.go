// Package keyfile reads, edits and writes GLib key files (GKeyFile), the format of OSTree's
// repository config and of deployment origin files, byte-compatible with GLib where they meet.
//
// A File keeps every line it was parsed from, so an edit changes only the lines it must
// (Bytes), and can also be written as g_key_file_to_data writes it (Canonical).
//
// The syntax, as GKeyFile has it: leading whitespace of a line is ignored; blank lines and lines
// starting with '#' are comments; "[name]" starts a group (a name repeated continues the group);
// "key=value" sets a key of the current group: the key is trimmed, the value loses its leading
// spaces and tabs only. A trailing '\r' is dropped from every line. Values are unescaped on Get
// (\s \n \t \r \\) and escaped on Set as g_key_file_set_string does. Of a key set twice, the last
// value counts.
package keyfile

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// File is a parsed key file.
type File struct {
	lines []line
}

// line is one line of the file: a group header (group set, key empty), a key (key set) or a
// comment or blank line (both empty). raw is the line as read, written back by Bytes until the
// line is edited (raw == "" for a line made or changed by an edit).
type line struct {
	group      string // the group the line is in ("" before the first header)
	header     bool
	key, value string // value as stored: escaped
	raw        string
	edited     bool
}

// Parse parses a key file. A key=value line outside a group, a line that is neither a group
// header, a key=value line nor a comment, and a group header that does not close or names no
// group are errors (as for GKeyFile).
func Parse(data []byte) (*File, error) {
	f := &File{}
	group := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		raw := strings.TrimRight(sc.Text(), "\r") // CRLF line ends; every trailing CR goes, so our output reparses the same
		t := strings.TrimSpace(raw)
		switch {
		case t == "" || t[0] == '#':
			f.lines = append(f.lines, line{group: group, raw: raw})
		case t[0] == '[':
			if len(t) < 3 || t[len(t)-1] != ']' {
				return nil, fmt.Errorf("line %d: invalid group header %q", n, raw)
			}
			name := t[1 : len(t)-1]
			if err := ValidateGroup(name); err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			group = name
			f.lines = append(f.lines, line{group: group, header: true, raw: raw})
		default:
			k, v, ok := strings.Cut(strings.TrimLeft(raw, " \t"), "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("line %d: %q is not a key=value line, a [group] or a # comment", n, raw)
			}
			if group == "" {
				return nil, fmt.Errorf("line %d: key %q comes before any [group]", n, k)
			}
			f.lines = append(f.lines, line{group: group, key: k, value: strings.TrimLeft(v, " \t"), raw: raw})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading key file: %w", err)
	}
	return f, nil
}

// ValidateGroup checks that name can be a group name: not empty, without brackets or line
// breaks.
func ValidateGroup(name string) error {
	if name == "" || strings.ContainsAny(name, "[]\n\r") {
		return fmt.Errorf("key file group %q: must be non-empty, without brackets or line breaks", name)
	}
	return nil
}

// ValidateKey checks that key can be a key name: not empty, not starting with '#' (a comment),
// without '=', brackets, line breaks or surrounding whitespace.
func ValidateKey(key string) error {
	if key == "" || key[0] == '#' || strings.ContainsAny(key, "=[]\n\r") || strings.TrimSpace(key) != key {
		return fmt.Errorf("key file key %q: must be non-empty, not start with '#', without '=', brackets, line breaks or surrounding spaces", key)
	}
	return nil
}

// Groups returns the names of the groups, in the order they first appear.
func (f *File) Groups() []string {
	if f == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range f.lines {
		if l.header && !seen[l.group] {
			seen[l.group] = true
			out = append(out, l.group)
		}
	}
	return out
}

// HasGroup reports whether the group exists. A nil *File has no groups.
func (f *File) HasGroup(group string) bool {
	if f == nil {
		return false
	}
	for _, l := range f.lines {
		if l.header && l.group == group {
			return true
		}
	}
	return false
}

// Keys returns the keys of group, in order, each once.
func (f *File) Keys(group string) []string {
	if f == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, l := range f.lines {
		if l.key != "" && l.group == group && !seen[l.key] {
			seen[l.key] = true
			out = append(out, l.key)
		}
	}
	return out
}

// Get returns the unescaped value of group.key (the last, if it is set twice).
func (f *File) Get(group, key string) (string, bool) {
	raw, ok := f.GetRaw(group, key)
	if !ok {
		return "", false
	}
	return Unescape(raw), true
}

// GetRaw returns the value of group.key as written in the file, not unescaped.
func (f *File) GetRaw(group, key string) (string, bool) {
	if f == nil {
		return "", false
	}
	for i := len(f.lines) - 1; i >= 0; i-- {
		if l := f.lines[i]; l.key == key && l.group == group {
			return l.value, true
		}
	}
	return "", false
}

// Map returns every group's keys and unescaped values.
func (f *File) Map() map[string]map[string]string {
	out := map[string]map[string]string{}
	if f == nil {
		return out
	}
	for _, l := range f.lines {
		if l.header && out[l.group] == nil {
			out[l.group] = map[string]string{}
		}
		if l.key != "" {
			out[l.group][l.key] = Unescape(l.value)
		}
	}
	return out
}

// Set sets group.key to value, escaped as g_key_file_set_string does. Every line setting the
// key in the group is rewritten; a missing key is added after the group's last key (or its
// header), a missing group at the end, after a blank line. The caller checks names with
// ValidateGroup and ValidateKey.
func (f *File) Set(group, key, value string) {
	f.SetRaw(group, key, Escape(value))
}

// SetRaw is Set with a value that is already escaped.
func (f *File) SetRaw(group, key, raw string) {
	found := false
	insertAt := -1
	for i := range f.lines {
		l := &f.lines[i]
		if l.group != group {
			continue
		}
		if l.key == key {
			l.value, l.edited, found = raw, true, true
		}
		if l.header || l.key != "" {
			insertAt = i + 1
		}
	}
	if found {
		return
	}
	nl := line{group: group, key: key, value: raw, edited: true}
	if insertAt >= 0 {
		f.lines = append(f.lines[:insertAt], append([]line{nl}, f.lines[insertAt:]...)...)
		return
	}
	if n := len(f.lines); n > 0 && !f.lines[n-1].isBlank() {
		f.lines = append(f.lines, line{group: f.lines[n-1].group, edited: true})
	}
	f.lines = append(f.lines, line{group: group, header: true, edited: true}, nl)
}

func (l line) isBlank() bool {
	return !l.header && l.key == "" && strings.TrimSpace(l.raw) == ""
}

// Remove deletes group.key. A group left without keys is removed too, with its comments.
func (f *File) Remove(group, key string) {
	if f == nil {
		return
	}
	out := f.lines[:0]
	keys := 0
	for _, l := range f.lines {
		if l.group == group && l.key == key {
			continue
		}
		if l.group == group && l.key != "" {
			keys++
		}
		out = append(out, l)
	}
	f.lines = out
	if keys > 0 {
		return
	}
	out = f.lines[:0]
	for _, l := range f.lines {
		if l.group != group {
			out = append(out, l)
		}
	}
	f.lines = out
}

// Bytes returns the file with every line it was parsed from as it was, except those Set
// changed or added ("key=value", "[group]"). Every line ends with a newline.
func (f *File) Bytes() []byte {
	if f == nil {
		return nil
	}
	var b bytes.Buffer
	for _, l := range f.lines {
		b.WriteString(l.text(false))
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Canonical returns the file as g_key_file_to_data writes it: the lines before the first group,
// then each group once ("[name]", its comments and "key=value" lines, those of a repeated
// group's later parts after its first), groups separated by at least one blank line.
func (f *File) Canonical() []byte {
	if f == nil {
		return nil
	}
	var b bytes.Buffer
	for _, l := range f.lines {
		if l.group == "" {
			b.WriteString(l.text(true))
			b.WriteByte('\n')
		}
	}
	for i, g := range f.Groups() {
		if n := b.Len(); i > 0 && n >= 2 && b.Bytes()[n-2] != '\n' {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", g)
		for _, l := range f.lines {
			if l.group == g && !l.header {
				b.WriteString(l.text(true))
				b.WriteByte('\n')
			}
		}
	}
	return b.Bytes()
}

func (l line) text(canonical bool) string {
	switch {
	case !l.edited && !canonical:
		return l.raw
	case l.header:
		return "[" + l.group + "]"
	case l.key != "":
		return l.key + "=" + l.value
	}
	return l.raw
}

// Clone returns a deep copy.
func (f *File) Clone() *File {
	if f == nil {
		return nil
	}
	return &File{lines: append([]line(nil), f.lines...)}
}

// Escape escapes a string value as g_key_file_set_string does: backslash, newline, tab,
// carriage return, and a leading space.
func Escape(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == ' ' && i == 0:
			b.WriteString(`\s`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape reverses Escape; an unknown escape is kept as it is.
func Unescape(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' || i+1 == len(v) {
			b.WriteByte(v[i])
			continue
		}
		i++
		switch v[i] {
		case 's':
			b.WriteByte(' ')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case '\\':
			b.WriteByte('\\')
		default:
			b.WriteByte('\\')
			b.WriteByte(v[i])
		}
	}
	return b.String()
}
