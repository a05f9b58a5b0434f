// Package osrelease reads os-release(5) files: the one home of where they are and how their
// values are quoted.
package osrelease

import (
	"errors"
	"io/fs"
	"os"
	"strings"
)

// Paths are where os-release lives, relative to a root, in the order os-release(5) gives: the
// first that exists wins.
var Paths = []string{"usr/lib/os-release", "etc/os-release"}

// Read returns the fields of root's os-release and the path (one of Paths) they came from; no
// fields and "" if there is none. Symlinks are followed inside root only.
func Read(root *os.Root) (map[string]string, string, error) {
	for _, p := range Paths {
		data, err := root.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, p, err
		}
		return Parse(data), p, nil
	}
	return nil, "", nil
}

// Parse parses os-release(5) as libostree does (parse_os_release): every line that is not a
// # comment and has an '=' is KEY=VALUE, the value unquoted as by g_shell_unquote; a line whose
// value does not unquote (an unclosed quote) is skipped. Of a key set twice, the last counts.
// Lines whose key is empty or holds whitespace are skipped too: libostree keeps them under keys
// no lookup of a variable name can match, so the two agree on every key worth asking for.
func Parse(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\r\v\f") {
			continue
		}
		if u, ok := ShellUnquote(v); ok {
			out[k] = u
		}
	}
	return out
}

// ShellUnquote is the part of g_shell_unquote os-release values need: single quotes taken
// literally, double quotes with backslash escapes of $ ` " \ and newline, and backslash
// escapes outside quotes. It fails on an unclosed quote.
func ShellUnquote(s string) (string, bool) {
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
