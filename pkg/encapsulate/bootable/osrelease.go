package bootable

import (
	"bufio"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"strings"
)

// osReleasePaths are read in this order, as os-release(5) says: the first that exists wins.
var osReleasePaths = []string{"usr/lib/os-release", "etc/os-release"}

// readOSRelease returns the os-release(5) fields of root and the file they came from; none, and
// "", if there is no os-release file. Symlinks are followed inside root only.
func readOSRelease(root *os.Root) (map[string]string, string, error) {
	for _, p := range osReleasePaths {
		data, err := root.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, p, err
		}
		return parseOSRelease(data), p, nil
	}
	return nil, "", nil
}

// osReleaseVersion picks the commit version from os-release fields: VERSION_ID, else VERSION.
func osReleaseVersion(fields map[string]string) string {
	if v := fields["VERSION_ID"]; v != "" {
		return v
	}
	return fields["VERSION"]
}

// parseOSRelease parses os-release(5): KEY=VALUE lines, where VALUE may be quoted with " or ' and
// use shell backslash escapes inside double quotes. Comments, blank and malformed lines are
// skipped.
func parseOSRelease(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			continue
		}
		out[k] = unquoteShell(v)
	}
	return out
}

func unquoteShell(v string) string {
	if len(v) >= 2 {
		switch q := v[0]; {
		case q == '\'' && v[len(v)-1] == '\'':
			return v[1 : len(v)-1]
		case q == '"' && v[len(v)-1] == '"':
			v = v[1 : len(v)-1]
			var b strings.Builder
			for i := 0; i < len(v); i++ {
				if v[i] == '\\' && i+1 < len(v) && strings.IndexByte("\"\\$`", v[i+1]) >= 0 {
					i++
				}
				b.WriteByte(v[i])
			}
			return b.String()
		}
	}
	return v
}
