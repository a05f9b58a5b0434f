package lint

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Root is the root filesystem being linted. Paths given to its methods are relative to it
// ("etc/passwd"); they never resolve outside it.
type Root struct {
	root *os.Root
	path string
	dev  uint64
	// mounts are the mount points inside the root (relative paths) from /proc/self/mountinfo;
	// with the device numbers they tell which entries are mounted over and not image content.
	mounts   map[string]bool
	maxShown int
}

// Close releases the root.
func (r *Root) Close() error { return r.root.Close() }

// lstat is Lstat, with a missing entry (or a missing parent, or a parent that is not a
// directory) reported as nil, nil.
func (r *Root) lstat(name string) (fs.FileInfo, error) {
	fi, err := r.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	return fi, err
}

// isDir reports whether name is a directory (not a symlink to one).
func (r *Root) isDir(name string) (bool, error) {
	fi, err := r.lstat(name)
	return fi != nil && fi.IsDir(), err
}

// readFile reads a regular file; a missing one is nil, nil. A symlink is followed inside the root.
func (r *Root) readFile(name string) ([]byte, error) {
	b, err := r.root.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	return b, err
}

// readDir lists a directory, sorted by name. It does not follow a symlink at name.
func (r *Root) readDir(name string) ([]fs.DirEntry, error) {
	fi, err := r.root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: "/" + name, Err: syscall.ENOTDIR}
	}
	f, err := r.root.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ents, err := f.ReadDir(-1)
	sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
	return ents, err
}

// entry is one entry found by walk.
type entry struct {
	// rel is the path relative to the root ("var/log/x").
	rel  string
	info fs.FileInfo
	// mountPoint is set when something is mounted on the entry: it is not image content, and walk
	// does not descend into it.
	mountPoint bool
}

// walk calls fn for every entry below dir (a relative path; "." for the root), depth first, in
// name order, without following symlinks and without descending into mount points. When fn
// returns false for a directory, walk does not descend into it. Only one directory listing per
// level is held at a time.
func (r *Root) walk(ctx context.Context, dir string, fn func(e entry) (bool, error)) error {
	fi, err := r.lstat(dir)
	if err != nil || fi == nil || !fi.IsDir() {
		return err
	}
	return r.walkDir(ctx, dir, devOf(fi), fn)
}

func (r *Root) walkDir(ctx context.Context, dir string, dev uint64, fn func(e entry) (bool, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ents, err := r.readDir(dir)
	if err != nil {
		return err
	}
	for _, de := range ents {
		rel := path.Join(dir, de.Name())
		info, err := r.root.Lstat(rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we walk
		}
		if err != nil {
			return err
		}
		e := entry{rel: rel, info: info, mountPoint: devOf(info) != dev || r.mounts[rel]}
		descend, err := fn(e)
		if err != nil {
			return err
		}
		if descend && info.IsDir() && !e.mountPoint {
			if err := r.walkDir(ctx, rel, dev, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func devOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}

// mountPoints reads /proc/self/mountinfo and returns the mount points strictly inside abs, as
// relative paths. Without /proc there are none; the device numbers still find most mounts.
func mountPoints(abs string) map[string]bool {
	mounts := map[string]bool{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return mounts
	}
	defer f.Close()
	prefix := strings.TrimSuffix(abs, "/") + "/"
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if rel, ok := strings.CutPrefix(mp, prefix); ok && rel != "" {
			mounts[path.Clean(rel)] = true
		}
	}
	return mounts
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of /proc/self/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// display shows a relative path as an absolute one, quoted if it is not printable UTF-8.
func display(rel string) string {
	p := "/" + strings.TrimPrefix(rel, "./")
	if rel == "." {
		p = "/"
	}
	if !utf8.ValidString(p) || strings.IndexFunc(p, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(p)
	}
	return p
}

// paths collects offending paths for a message, keeping only the first few unless told not to.
type paths struct {
	max   int // < 0: keep all
	shown []string
	total int
}

func (r *Root) newPaths() *paths { return &paths{max: r.maxShown} }

func (p *paths) add(s string) {
	p.total++
	if p.max < 0 || len(p.shown) < p.max {
		p.shown = append(p.shown, s)
	}
}

func (p *paths) empty() bool { return p.total == 0 }

// inlineAfter is header + p.inline(), or "" if there are no paths.
func (p *paths) inlineAfter(header string) string {
	if p.empty() {
		return ""
	}
	return header + p.inline()
}

// linesAfter is header + p.lines(), or "" if there are no paths.
func (p *paths) linesAfter(header string) string {
	if p.empty() {
		return ""
	}
	return header + p.lines()
}

// joinNonEmpty joins the non-empty parts with sep.
func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, s := range parts {
		if s != "" {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, sep)
}

// inline is "a, b, c (and 2 more)".
func (p *paths) inline() string {
	s := strings.Join(p.shown, ", ")
	if more := p.total - len(p.shown); more > 0 {
		s += fmt.Sprintf(" (and %d more)", more)
	}
	return s
}

// lines is one "  path" line per path, then "  ...and N more".
func (p *paths) lines() string {
	var b strings.Builder
	for _, s := range p.shown {
		fmt.Fprintf(&b, "\n  %s", s)
	}
	if more := p.total - len(p.shown); more > 0 {
		fmt.Fprintf(&b, "\n  ...and %d more", more)
	}
	return b.String()
}
