package sysroot

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// Origin groups and keys this package knows (spec §2.4).
const (
	originGroup             = "origin"
	originContainerImageRef = "container-image-reference"
	transientGroup          = "libostree-transient"
	pinnedKey               = "pinned"
)

// Origin is a deployment's origin keyfile (spec §2.4): groups of key=value lines, kept in
// order so that what we do not know survives a rewrite.
//
// The syntax is GLib's GKeyFile: comments (#) and blank lines are kept where they are, values
// are unescaped on Get (\s \n \t \r \\) and escaped on Set. The read methods accept a nil
// *Origin (a deployment without an .origin file) and find nothing in it.
type Origin struct {
	// head holds the comment and blank lines before the first group.
	head   []string
	groups []*keyGroup
}

type keyGroup struct {
	name  string
	lines []originLine
}

// originLine is a key=value line (key != "") or a comment or blank line kept verbatim (raw).
type originLine struct {
	key, value string
	raw        string
}

// NewContainerOrigin returns an origin with [origin] container-image-reference=ref.
func NewContainerOrigin(ref string) *Origin {
	o := &Origin{}
	o.Set(originGroup, originContainerImageRef, ref)
	return o
}

// ParseOrigin parses an origin keyfile. A key=value line outside a group, a line that is
// neither, or a group header that does not close is an error, as GKeyFile has it.
func ParseOrigin(data []byte) (*Origin, error) {
	o := &Origin{}
	var cur *keyGroup
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#':
			if cur == nil {
				o.head = append(o.head, line)
			} else {
				cur.lines = append(cur.lines, originLine{raw: line})
			}
		case trimmed[0] == '[':
			if trimmed[len(trimmed)-1] != ']' || len(trimmed) < 3 {
				return nil, fmt.Errorf("origin line %d: invalid group header %q", n, line)
			}
			name := trimmed[1 : len(trimmed)-1]
			if strings.ContainsAny(name, "[]") {
				return nil, fmt.Errorf("origin line %d: invalid group name %q", n, name)
			}
			if cur = o.group(name); cur == nil {
				cur = &keyGroup{name: name}
				o.groups = append(o.groups, cur)
			}
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return nil, fmt.Errorf("origin line %d: %q is not a key=value line, a [group] or a # comment", n, line)
			}
			if cur == nil {
				return nil, fmt.Errorf("origin line %d: key %q comes before any [group]", n, k)
			}
			cur.set(k, strings.TrimLeft(v, " \t"))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading origin: %w", err)
	}
	return o, nil
}

func (o *Origin) group(name string) *keyGroup {
	if o == nil {
		return nil
	}
	for _, g := range o.groups {
		if g.name == name {
			return g
		}
	}
	return nil
}

// set sets a raw (escaped) value, replacing the key's line if it exists.
func (g *keyGroup) set(key, raw string) {
	for i := range g.lines {
		if g.lines[i].key == key {
			g.lines[i].value = raw
			return
		}
	}
	// Before any trailing blank or comment lines, which separate this group from the next.
	at := len(g.lines)
	for at > 0 && g.lines[at-1].key == "" {
		at--
	}
	g.lines = append(g.lines, originLine{})
	copy(g.lines[at+1:], g.lines[at:])
	g.lines[at] = originLine{key: key, value: raw}
}

// Get returns group.key.
func (o *Origin) Get(group, key string) (string, bool) {
	g := o.group(group)
	if g == nil {
		return "", false
	}
	for _, l := range g.lines {
		if l.key == key {
			return unescapeKeyFile(l.value), true
		}
	}
	return "", false
}

// Set sets group.key (adding the group if needed).
func (o *Origin) Set(group, key, value string) {
	g := o.group(group)
	if g == nil {
		g = &keyGroup{name: group}
		o.groups = append(o.groups, g)
	}
	g.set(key, escapeKeyFile(value))
}

// Remove deletes group.key. A group left empty is removed too.
func (o *Origin) Remove(group, key string) {
	g := o.group(group)
	if g == nil {
		return
	}
	lines := g.lines[:0]
	keys := 0
	for _, l := range g.lines {
		if l.key == key {
			continue
		}
		if l.key != "" {
			keys++
		}
		lines = append(lines, l)
	}
	g.lines = lines
	if keys == 0 {
		for i, og := range o.groups {
			if og == g {
				o.groups = append(o.groups[:i], o.groups[i+1:]...)
				break
			}
		}
	}
}

// HasGroup reports whether group exists (bootc treats rpm-ostree groups as incompatible).
func (o *Origin) HasGroup(group string) bool { return o.group(group) != nil }

// ContainerImageReference returns [origin] container-image-reference.
func (o *Origin) ContainerImageReference() (string, bool) {
	return o.Get(originGroup, originContainerImageRef)
}

// Marshal writes the keyfile as g_key_file_to_data does: each group as "[name]" and its lines,
// groups separated by at least one blank line.
func (o *Origin) Marshal() []byte {
	var b bytes.Buffer
	if o == nil {
		return nil
	}
	for _, l := range o.head {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for i, g := range o.groups {
		if n := b.Len(); i > 0 && n >= 2 && b.Bytes()[n-2] != '\n' {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", g.name)
		for _, l := range g.lines {
			if l.key == "" {
				b.WriteString(l.raw)
			} else {
				b.WriteString(l.key + "=" + l.value)
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// clone returns a deep copy.
func (o *Origin) clone() *Origin {
	if o == nil {
		return nil
	}
	c := &Origin{head: append([]string(nil), o.head...)}
	for _, g := range o.groups {
		c.groups = append(c.groups, &keyGroup{name: g.name, lines: append([]originLine(nil), g.lines...)})
	}
	return c
}

// escapeKeyFile escapes a string value as g_key_file_set_string: backslash, newline, tab,
// carriage return, and a leading space.
func escapeKeyFile(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
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

// unescapeKeyFile reverses escapeKeyFile; an unknown escape is kept as it is.
func unescapeKeyFile(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
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
			b.WriteByte(s[i])
		}
	}
	return b.String()
}
