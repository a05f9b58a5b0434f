// Package treediff compares two directory trees the way OSTree sees them: entry names, file
// types, permission bits, owners, extended attributes, symlink targets and file content.
// Timestamps are ignored. Tests use it to check that a checkout reproduces its source.
package treediff

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Options tune the comparison.
type Options struct {
	// IgnoreOwners skips uid/gid (for user-mode checkouts).
	IgnoreOwners bool
	// IgnoreXattrs skips extended attributes.
	IgnoreXattrs bool
	// PermMask limits which mode bits are compared (default 07777).
	PermMask uint32
	// IgnoreRootMeta skips the metadata of the two roots themselves.
	IgnoreRootMeta bool
}

type node struct {
	mode, uid, gid uint32
	size           int64
	target         string
	sum            [32]byte
	xattrs         string
}

// Diff returns one line per difference between trees a and b (empty if they are the same).
func Diff(a, b string, o Options) ([]string, error) {
	if o.PermMask == 0 {
		o.PermMask = 0o7777
	}
	na, err := scan(a, o)
	if err != nil {
		return nil, err
	}
	nb, err := scan(b, o)
	if err != nil {
		return nil, err
	}
	var out []string
	paths := map[string]bool{}
	for p := range na {
		paths[p] = true
	}
	for p := range nb {
		paths[p] = true
	}
	sorted := make([]string, 0, len(paths))
	for p := range paths {
		sorted = append(sorted, p)
	}
	sort.Strings(sorted)
	for _, p := range sorted {
		x, okx := na[p]
		y, oky := nb[p]
		switch {
		case !okx:
			out = append(out, fmt.Sprintf("%s: only in %s", p, b))
			continue
		case !oky:
			out = append(out, fmt.Sprintf("%s: only in %s", p, a))
			continue
		}
		if p == "/" && o.IgnoreRootMeta {
			continue
		}
		if x.mode&unix.S_IFMT != y.mode&unix.S_IFMT {
			out = append(out, fmt.Sprintf("%s: type %#o vs %#o", p, x.mode&unix.S_IFMT, y.mode&unix.S_IFMT))
			continue
		}
		if x.mode&unix.S_IFMT != unix.S_IFLNK && x.mode&o.PermMask != y.mode&o.PermMask {
			out = append(out, fmt.Sprintf("%s: mode %#o vs %#o", p, x.mode&0o7777, y.mode&0o7777))
		}
		if !o.IgnoreOwners && (x.uid != y.uid || x.gid != y.gid) {
			out = append(out, fmt.Sprintf("%s: owner %d:%d vs %d:%d", p, x.uid, x.gid, y.uid, y.gid))
		}
		if x.target != y.target {
			out = append(out, fmt.Sprintf("%s: symlink target %q vs %q", p, x.target, y.target))
		}
		if x.size != y.size || x.sum != y.sum {
			out = append(out, fmt.Sprintf("%s: content differs (%d vs %d bytes)", p, x.size, y.size))
		}
		if !o.IgnoreXattrs && x.xattrs != y.xattrs {
			out = append(out, fmt.Sprintf("%s: xattrs %s vs %s", p, x.xattrs, y.xattrs))
		}
	}
	return out, nil
}

func scan(root string, o Options) (map[string]node, error) {
	out := map[string]node{}
	err := filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = "/" + filepath.ToSlash(rel)
		if rel == "/." {
			rel = "/"
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		n := node{mode: st.Mode, uid: st.Uid, gid: st.Gid}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			t, err := os.Readlink(path)
			if err != nil {
				return err
			}
			n.target = t
		case unix.S_IFREG:
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			h := sha256.New()
			n.size, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
			h.Sum(n.sum[:0])
		}
		if !o.IgnoreXattrs {
			x, err := xattrs(path)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			n.xattrs = x
		}
		out[rel] = n
		return nil
	})
	return out, err
}

func xattrs(path string) (string, error) {
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz == 0 {
		return "{}", err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, name := range strings.Split(string(bytes.TrimRight(buf[:sz], "\x00")), "\x00") {
		vs, err := unix.Lgetxattr(path, name, nil)
		if err != nil {
			return "", err
		}
		v := make([]byte, vs)
		if vs, err = unix.Lgetxattr(path, name, v); err != nil {
			return "", err
		}
		if vs == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s=%x", name, v[:vs]))
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, " ") + "}", nil
}
