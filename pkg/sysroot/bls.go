package sysroot

import (
	"bufio"
	"bytes"
	"strings"
)

// blsEntry is a Boot Loader Specification entry, /boot/loader.N/entries/*.conf: "key value"
// lines, in order.
type blsEntry struct {
	keys   []string
	values map[string]string
}

// parseBLS reads an entry as ostree-bootconfig-parser.c does: the key runs to the first space
// or tab, the value is the rest of the line with surrounding blanks removed; "#" lines and
// blank lines are skipped; a repeated key keeps its last value.
func parseBLS(data []byte) *blsEntry {
	e := &blsEntry{values: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, _ := strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
		e.set(k, strings.TrimSpace(v))
	}
	return e
}

func (e *blsEntry) get(k string) string { return e.values[k] }

func (e *blsEntry) set(k, v string) {
	if _, ok := e.values[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.values[k] = v
}

// blsKeyOrder is the order ostree_bootconfig_parser_write_at puts known keys in; other keys
// follow in the order they were set.
var blsKeyOrder = []string{"title", "version", "options", "devicetree", "linux", "initrd"}

// marshal writes "key value\n" lines, known keys first in blsKeyOrder.
func (e *blsEntry) marshal() []byte {
	var b bytes.Buffer
	done := map[string]bool{}
	write := func(k string) {
		if v, ok := e.values[k]; ok && !done[k] {
			b.WriteString(k + " " + v + "\n")
			done[k] = true
		}
	}
	for _, k := range blsKeyOrder {
		write(k)
	}
	for _, k := range e.keys {
		write(k)
	}
	return b.Bytes()
}

// osReleaseTitle returns PRETTY_NAME, else ID, from an os-release file, unquoted as by
// g_shell_unquote; "" if neither is set.
func osReleaseTitle(data []byte) string {
	vals := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if u, ok := shellUnquote(v); ok {
			vals[k] = u
		}
	}
	if v, ok := vals["PRETTY_NAME"]; ok {
		return v
	}
	return vals["ID"]
}

// shellUnquote is the part of g_shell_unquote os-release values need: single quotes taken
// literally, double quotes with backslash escapes of $ ` " \ and newline, and backslash
// escapes outside quotes.
func shellUnquote(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return "", false
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
		case '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return "", false
			}
		case '\\':
			if i+1 < len(s) {
				i++
				if s[i] != '\n' {
					b.WriteByte(s[i])
				}
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}
