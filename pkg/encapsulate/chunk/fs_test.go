package chunk

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
)

// entryKind is what a path of a test tree is.
type entryKind int

const (
	kindDir entryKind = iota + 1
	kindFile
	kindSymlink
)

// lstater looks up one path of a tree in commit layout without following symlinks.
type lstater interface {
	lstat(p string) (kind entryKind, target string, ok bool)
}

// resolveIn walks p component by component in the tree, following symlinks in directory
// components (and in the last one if followLast), at most 40 times. /etc stands for /usr/etc,
// as in a commit.
func resolveIn(t lstater, p string, followLast bool) (string, bool) {
	todo := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	cur := "/"
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		if next == "/etc" {
			next = "/usr/etc"
		}
		kind, target, ok := t.lstat(next)
		if !ok {
			return "", false
		}
		if kind == kindSymlink && (len(todo) > 0 || followLast) {
			if hops++; hops > 40 {
				return "", false
			}
			if strings.HasPrefix(target, "/") {
				cur = "/"
			}
			todo = append(strings.FieldsFunc(target, func(r rune) bool { return r == '/' }), todo...)
			continue
		}
		if len(todo) > 0 && kind != kindDir {
			return "", false
		}
		cur = next
	}
	return cur, true
}

// memFS is an in-memory commit tree.
type memFS struct {
	entries map[string]memEntry
}

type memEntry struct {
	kind   entryKind
	data   []byte
	target string
}

func newMemFS() *memFS {
	return &memFS{entries: map[string]memEntry{"/": {kind: kindDir}}}
}

func (m *memFS) mkdirs(p string) {
	for d := p; d != "/"; d = path.Dir(d) {
		if _, ok := m.entries[d]; !ok {
			m.entries[d] = memEntry{kind: kindDir}
		}
	}
}

// file adds a regular file, creating its parent directories.
func (m *memFS) file(p string, data []byte) *memFS {
	m.mkdirs(path.Dir(p))
	m.entries[p] = memEntry{kind: kindFile, data: data}
	return m
}

// text adds a regular file with text content.
func (m *memFS) text(p, s string) *memFS { return m.file(p, []byte(s)) }

// symlink adds a symlink, creating its parent directories.
func (m *memFS) symlink(p, target string) *memFS {
	m.mkdirs(path.Dir(p))
	m.entries[p] = memEntry{kind: kindSymlink, target: target}
	return m
}

func (m *memFS) lstat(p string) (entryKind, string, bool) {
	e, ok := m.entries[p]
	return e.kind, e.target, ok
}

func (m *memFS) Resolve(p string) (string, bool) { return resolveIn(m, p, false) }

func (m *memFS) ReadFile(p string) ([]byte, error) {
	rp, ok := resolveIn(m, p, true)
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	e := m.entries[rp]
	if e.kind != kindFile {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	return bytes.Clone(e.data), nil
}

// files lists the regular files and symlinks of the tree as Attribute takes them, with
// objects named by a hash of their content.
func (m *memFS) files(component map[string]string) []File {
	var out []File
	for _, p := range sortedKeys(m.entries) {
		e := m.entries[p]
		var f File
		switch e.kind {
		case kindFile:
			f = File{Path: p, Object: objectID("file", e.data), Size: int64(len(e.data))}
		case kindSymlink:
			f = File{Path: p, Object: objectID("symlink", []byte(e.target))}
		default:
			continue
		}
		f.Component = inheritedComponent(component, p)
		out = append(out, f)
	}
	return out
}

// inheritedComponent returns the component of p or of its nearest ancestor in component.
func inheritedComponent(component map[string]string, p string) string {
	for d := p; ; d = path.Dir(d) {
		if c, ok := component[d]; ok {
			return c
		}
		if d == "/" {
			return ""
		}
	}
}

func objectID(kind string, data []byte) string {
	h := sha256.New()
	h.Write([]byte(kind + "\x00"))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

// dirFS is a root filesystem in a host directory seen in commit layout: its /etc appears as
// /usr/etc, as ostree commits store it.
type dirFS struct {
	root string
}

// hostPath maps a commit path to the host path under root.
func (d dirFS) hostPath(p string) string {
	switch {
	case p == "/usr/etc":
		return filepath.Join(d.root, "etc")
	case strings.HasPrefix(p, "/usr/etc/"):
		return filepath.Join(d.root, "etc", strings.TrimPrefix(p, "/usr/etc/"))
	case p == "/etc" || strings.HasPrefix(p, "/etc/"):
		return "" // the commit has no /etc
	}
	return filepath.Join(d.root, filepath.FromSlash(p))
}

func (d dirFS) lstat(p string) (entryKind, string, bool) {
	hp := d.hostPath(p)
	if hp == "" {
		return 0, "", false
	}
	fi, err := os.Lstat(hp)
	if err != nil {
		return 0, "", false
	}
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(hp)
		if err != nil {
			return 0, "", false
		}
		return kindSymlink, target, true
	case fi.IsDir():
		return kindDir, "", true
	default:
		return kindFile, "", true
	}
}

func (d dirFS) Resolve(p string) (string, bool) { return resolveIn(d, p, false) }

func (d dirFS) ReadFile(p string) ([]byte, error) {
	rp, ok := resolveIn(d, p, true)
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	return os.ReadFile(d.hostPath(rp))
}

// files walks the tree and lists its regular files and symlinks with commit paths.
func (d dirFS) files(t testing.TB) []File {
	t.Helper()
	var out []File
	err := filepath.WalkDir(d.root, func(hp string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(d.root, hp)
		if err != nil {
			return err
		}
		p := "/" + filepath.ToSlash(rel)
		if p == "/etc" || strings.HasPrefix(p, "/etc/") {
			p = "/usr" + p
		}
		switch {
		case de.Type().IsRegular():
			data, err := os.ReadFile(hp)
			if err != nil {
				return err
			}
			out = append(out, File{Path: p, Object: objectID("file", data), Size: int64(len(data))})
		case de.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(hp)
			if err != nil {
				return err
			}
			out = append(out, File{Path: p, Object: objectID("symlink", []byte(target))})
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", d.root, err)
	}
	return out
}

// gz compresses s.
func gz(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// changelog renders a Debian changelog with one entry per date (RFC 1123Z with day name).
func changelog(pkg string, dates ...string) string {
	var b strings.Builder
	for i, d := range dates {
		fmt.Fprintf(&b, "%s (1.0-%d) unstable; urgency=medium\n\n  * Change %d.\n\n -- Jane Doe <jane@example.org>  %s\n\n", pkg, len(dates)-i, i, d)
	}
	return b.String()
}
