package ignition

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bootc-go/bootc/internal/atomicfile"
)

// tree maps the host's paths onto a Target: /var and /home (as /var/home) onto Var, the rest
// onto Root. Paths handled here are "virtual": absolute, as the host sees them.
type tree struct {
	root, varDir string
}

func newTree(t Target) *tree {
	v := t.Var
	if v == "" {
		v = filepath.Join(t.Root, "var")
	}
	return &tree{root: t.Root, varDir: v}
}

// real is where the clean virtual path v is in the target.
func (t *tree) real(v string) string {
	switch {
	case under(v, "/var"):
		return filepath.Join(t.varDir, strings.TrimPrefix(v, "/var"))
	case under(v, "/home"):
		return filepath.Join(t.varDir, "home", strings.TrimPrefix(v, "/home"))
	}
	return filepath.Join(t.root, v)
}

// under reports whether v is dir or below it.
func under(v, dir string) bool { return v == dir || strings.HasPrefix(v, dir+"/") }

// maxLinks is how many symbolic links resolve follows, as the kernel's limit.
const maxLinks = 40

// resolve follows the symbolic links of v's components inside the tree (the last one too with
// followLast) and returns the virtual path they lead to: an absolute link restarts at the
// tree's root and ".." stops there, so the result is always inside the tree. Components that
// do not exist are taken as they are.
func (t *tree) resolve(v string, followLast bool) (string, error) {
	rest := strings.Split(v, "/")
	cur, links := "/", 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		if len(rest) == 0 && !followLast {
			cur = next
			break
		}
		fi, err := os.Lstat(t.real(next))
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
			return "", err
		}
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", v)
		}
		target, err := os.Readlink(t.real(next))
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// writable resolves v (its last component followed with followLast) and checks that it stays
// under /etc, /var or /home; it returns the resolved virtual path.
func (t *tree) writable(v string, followLast bool) (string, error) {
	r, err := t.resolve(v, followLast)
	if err != nil {
		return "", err
	}
	for _, top := range []string{"/etc/", "/var/", "/home/"} {
		if strings.HasPrefix(r, top) {
			return r, nil
		}
	}
	if r == v {
		return "", fmt.Errorf("%s is outside /etc, /var and /home: the rest of a bootc host comes from the image", v)
	}
	return "", fmt.Errorf("%s leads to %s through a symbolic link, outside /etc, /var and /home: the rest of a bootc host comes from the image", v, r)
}

// mkdirParents creates the missing parent directories of the resolved virtual path r: mode
// 0755, owned by root.
func (t *tree) mkdirParents(r string) error {
	return os.MkdirAll(filepath.Dir(t.real(r)), 0o755)
}

// owner is a file's owner; -1 leaves one unchanged (as os.Chown).
type owner struct{ uid, gid int }

var rootOwner = owner{0, 0}

// writeFile replaces the file at the virtual path v (resolved: its parents followed inside the
// tree, the last component not) with data, atomically, creating the parents.
func (t *tree) writeFile(v string, data []byte, mode fs.FileMode, o owner) error {
	dst, err := t.prepare(v)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(dst, data, mode, atomicfile.WithOwner(o.uid, o.gid))
}

// prepare resolves v for a new file or link (its parents followed inside the tree, the last
// component not), creates the parents and removes an empty directory at v; it returns the
// real path.
func (t *tree) prepare(v string) (string, error) {
	r, err := t.writable(v, false)
	if err != nil {
		return "", err
	}
	if err := t.mkdirParents(r); err != nil {
		return "", err
	}
	dst := t.real(r)
	if fi, err := os.Lstat(dst); err == nil && fi.IsDir() {
		if err := os.Remove(dst); err != nil {
			return "", fmt.Errorf("replacing the directory %s: %w", v, err)
		}
	}
	return dst, nil
}

// readFile reads the file at the virtual path v, following links inside the tree; a missing
// file is nil and no error.
func (t *tree) readFile(v string) ([]byte, error) {
	r, err := t.resolve(v, true)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(t.real(r))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// symlink makes the virtual path v a symbolic link to target, replacing what is there
// (a directory only if it is empty), by renaming a new link over it.
func (t *tree) symlink(v, target string, o owner) error {
	return t.replaceWith(v, o, func(tmp string) error { return os.Symlink(target, tmp) })
}

// hardlink makes the virtual path v a hard link to the file at the virtual path target.
func (t *tree) hardlink(v, target string) error {
	rt, err := t.writable(target, true)
	if err != nil {
		return err
	}
	return t.replaceWith(v, owner{-1, -1}, func(tmp string) error { return os.Link(t.real(rt), tmp) })
}

// replaceWith makes a node with mk at a temporary name next to v and renames it over v.
func (t *tree) replaceWith(v string, o owner, mk func(tmp string) error) error {
	dst, err := t.prepare(v)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(dst), ".tmp-"+filepath.Base(dst))
	os.Remove(tmp)
	if err := mk(tmp); err != nil {
		return err
	}
	if o.uid >= 0 || o.gid >= 0 {
		if err := os.Lchown(tmp, o.uid, o.gid); err != nil {
			os.Remove(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// remove removes the node at the virtual path v (not following a last link); a missing one is
// no error.
func (t *tree) remove(v string) error {
	r, err := t.writable(v, false)
	if err != nil {
		return err
	}
	if err := os.Remove(t.real(r)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// lstat stats the node at the virtual path v, its parents followed inside the tree.
func (t *tree) lstat(v string) (fs.FileInfo, error) {
	r, err := t.resolve(v, false)
	if err != nil {
		return nil, err
	}
	return os.Lstat(t.real(r))
}

// stat stats the node at the virtual path v, following links inside the tree.
func (t *tree) stat(v string) (fs.FileInfo, error) {
	r, err := t.resolve(v, true)
	if err != nil {
		return nil, err
	}
	return os.Stat(t.real(r))
}

// readlink reads the link at the virtual path v.
func (t *tree) readlink(v string) (string, error) {
	r, err := t.resolve(v, false)
	if err != nil {
		return "", err
	}
	return os.Readlink(t.real(r))
}

// mkdir creates the directory at the virtual path v (and its parents, 0755 root) with mode
// and owner o unless it exists (a link to a directory counts); it reports whether it created it.
func (t *tree) mkdir(v string, mode fs.FileMode, o owner) (bool, error) {
	r, err := t.writable(v, true)
	if err != nil {
		return false, err
	}
	if err := t.mkdirParents(r); err != nil {
		return false, err
	}
	dst := t.real(r)
	if err := os.Mkdir(dst, 0o700); errors.Is(err, fs.ErrExist) {
		if fi, err := os.Stat(dst); err != nil || !fi.IsDir() {
			return false, fmt.Errorf("%s exists and is no directory", v)
		}
		return false, nil
	} else if err != nil {
		return false, err
	}
	return true, t.setAttrs(v, &mode, &o)
}

// setAttrs sets the owner (first, as chown clears setuid bits) and the mode of the node at the
// virtual path v (following a last link inside the tree); nil leaves one as it is.
func (t *tree) setAttrs(v string, mode *fs.FileMode, o *owner) error {
	r, err := t.writable(v, true)
	if err != nil {
		return err
	}
	if o != nil {
		if err := os.Chown(t.real(r), o.uid, o.gid); err != nil {
			return err
		}
	}
	if mode != nil {
		return os.Chmod(t.real(r), *mode)
	}
	return nil
}

// fileMode converts an Ignition mode (an integer with the setuid, setgid and sticky bits) to
// a fs.FileMode.
func fileMode(m *int, def fs.FileMode) fs.FileMode {
	if m == nil {
		return def
	}
	mode := fs.FileMode(*m & 0o777)
	for bit, fm := range map[int]fs.FileMode{0o4000: fs.ModeSetuid, 0o2000: fs.ModeSetgid, 0o1000: fs.ModeSticky} {
		if *m&bit != 0 {
			mode |= fm
		}
	}
	return mode
}
