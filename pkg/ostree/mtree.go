package ostree

import (
	"fmt"
	"sort"
	"strings"
)

func splitTreePath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// Dir returns the subdirectory at path (relative, slash-separated; "" is t itself), or nil.
func (t *MutableTree) Dir(path string) *MutableTree {
	for _, name := range splitTreePath(path) {
		sub, ok := t.dirs[name]
		if !ok {
			return nil
		}
		t = sub
	}
	return t
}

// File returns the content checksum of the file at path.
func (t *MutableTree) File(path string) (Checksum, bool) {
	parts := splitTreePath(path)
	if len(parts) == 0 {
		return Checksum{}, false
	}
	d := t.Dir(strings.Join(parts[:len(parts)-1], "/"))
	if d == nil {
		return Checksum{}, false
	}
	c, ok := d.files[parts[len(parts)-1]]
	if !ok {
		return Checksum{}, false
	}
	return *c, true
}

// Files returns the names of the files directly in t, sorted.
func (t *MutableTree) Files() []string { return sortedKeys(t.files) }

// Dirs returns the names of the subdirectories of t, sorted.
func (t *MutableTree) Dirs() []string { return sortedKeys(t.dirs) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Meta returns the checksum of t's dirmeta, or zero for the default one.
func (t *MutableTree) Meta() Checksum {
	if t.meta == nil {
		return Checksum{}
	}
	return *t.meta
}

// SetMeta sets t's dirmeta checksum (the object must be written, e.g. with
// Transaction.WriteMetadata).
func (t *MutableTree) SetMeta(c Checksum) { t.meta = &c }

// Clear removes everything inside t.
func (t *MutableTree) Clear() {
	t.files = map[string]*Checksum{}
	t.dirs = map[string]*MutableTree{}
}

// Remove deletes the file or directory at path and reports whether there was one.
func (t *MutableTree) Remove(path string) bool {
	parent, name, ok := t.parentOf(path)
	if !ok {
		return false
	}
	if _, isFile := parent.files[name]; isFile {
		delete(parent.files, name)
		return true
	}
	if _, isDir := parent.dirs[name]; isDir {
		delete(parent.dirs, name)
		return true
	}
	return false
}

func (t *MutableTree) parentOf(path string) (*MutableTree, string, bool) {
	parts := splitTreePath(path)
	if len(parts) == 0 {
		return nil, "", false
	}
	parent := t.Dir(strings.Join(parts[:len(parts)-1], "/"))
	return parent, parts[len(parts)-1], parent != nil
}

// MkdirAll returns the directory at path, creating it and missing parents with the default
// dirmeta (or the given one, if not zero). A file in the way is an error.
func (t *MutableTree) MkdirAll(path string, meta Checksum) (*MutableTree, error) {
	cur := t
	for i, name := range splitTreePath(path) {
		if err := ValidateFilename(name); err != nil {
			return nil, err
		}
		if _, isFile := cur.files[name]; isFile {
			return nil, fmt.Errorf("creating %s: %s is a file", path, strings.Join(splitTreePath(path)[:i+1], "/"))
		}
		sub, ok := cur.dirs[name]
		if !ok {
			sub = NewMutableTree()
			if !meta.IsZero() {
				sub.SetMeta(meta)
			}
			cur.dirs[name] = sub
		}
		cur = sub
	}
	return cur, nil
}

// SetFile puts a file with content checksum c at path, replacing a file there. The parent
// directories must exist.
func (t *MutableTree) SetFile(path string, c Checksum) error {
	parent, name, ok := t.parentOf(path)
	if !ok {
		return fmt.Errorf("setting %s: no parent directory", path)
	}
	if err := ValidateFilename(name); err != nil {
		return err
	}
	if _, isDir := parent.dirs[name]; isDir {
		return fmt.Errorf("setting %s: it is a directory", path)
	}
	parent.files[name] = &c
	return nil
}

// Rename moves the file or directory at from to to. The parent of to must exist and to must not.
func (t *MutableTree) Rename(from, to string) error {
	if to == from || strings.HasPrefix(strings.Trim(to, "/")+"/", strings.Trim(from, "/")+"/") {
		return fmt.Errorf("renaming %s to %s: cannot move a directory into itself", from, to)
	}
	src, sname, ok := t.parentOf(from)
	if !ok {
		return fmt.Errorf("renaming %s: not found", from)
	}
	dst, dname, ok := t.parentOf(to)
	if !ok {
		return fmt.Errorf("renaming %s to %s: the parent of %s does not exist", from, to, to)
	}
	if err := ValidateFilename(dname); err != nil {
		return err
	}
	if _, exists := dst.files[dname]; exists {
		return fmt.Errorf("renaming %s to %s: %s exists", from, to, to)
	}
	if _, exists := dst.dirs[dname]; exists {
		return fmt.Errorf("renaming %s to %s: %s exists", from, to, to)
	}
	if f, isFile := src.files[sname]; isFile {
		delete(src.files, sname)
		dst.files[dname] = f
		return nil
	}
	if d, isDir := src.dirs[sname]; isDir {
		delete(src.dirs, sname)
		dst.dirs[dname] = d
		return nil
	}
	return fmt.Errorf("renaming %s: not found", from)
}
