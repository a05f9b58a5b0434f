package sysroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// prepareEtc creates a fresh deployment's etc/ as a copy of its usr/etc (spec §2.5), as
// prepare_deployment_etc: an empty etc/ next to usr/etc is dropped; a tree with a populated
// etc/ and no usr/etc has it moved to usr/etc first; both populated is an error. The copy
// comes from the repository (commit subtree usr/etc, or etc for a moved one), never by
// hardlink: /etc is edited in place.
func prepareEtc(ctx context.Context, repo *ostree.Repo, commit ostree.Checksum, root string) error {
	etc, usrEtc := filepath.Join(root, "etc"), filepath.Join(root, "usr", "etc")
	etcState, err := dirState(etc)
	if err != nil {
		return fmt.Errorf("preparing /etc: %w", err)
	}
	_, err = os.Lstat(usrEtc)
	usrEtcExists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("preparing /etc: %w", err)
	}
	src := "/usr/etc"
	switch etcState {
	case dirEmpty:
		if usrEtcExists {
			if err := os.Remove(etc); err != nil {
				return fmt.Errorf("preparing /etc: %w", err)
			}
		}
	case dirPopulated:
		if usrEtcExists {
			return fmt.Errorf("preparing /etc: commit %s contains both /etc and /usr/etc; a bootable commit keeps its /etc defaults in /usr/etc only (rebuild it, e.g. with `bootc compose commit`)", commit)
		}
		if err := os.Rename(etc, usrEtc); err != nil {
			return fmt.Errorf("preparing /etc: moving etc to usr/etc: %w", err)
		}
		usrEtcExists, src = true, "/etc"
	}
	if !usrEtcExists {
		return nil
	}
	tree, meta, err := subtree(ctx, repo, commit, src)
	if err != nil {
		return fmt.Errorf("preparing /etc: %w", err)
	}
	if err := repo.CheckoutTree(ctx, tree, meta, etc, ostree.WithForceCopy()); err != nil {
		return fmt.Errorf("preparing /etc: copying %s: %w", src, err)
	}
	return nil
}

// resetEtc makes a staged deployment's etc/ what prepareEtc made it, a copy of the commit's
// defaults, again: whatever an interrupted finalization merged into it is dropped. The copy
// comes from the commit's /usr/etc, or from its /etc when prepareEtc moved that to usr/etc.
func resetEtc(ctx context.Context, repo *ostree.Repo, commit ostree.Checksum, root string) error {
	etc := filepath.Join(root, "etc")
	if err := os.RemoveAll(etc); err != nil {
		return fmt.Errorf("resetting /etc: %w", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "usr", "etc")); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("resetting /etc: %w", err)
	}
	tree, meta, err := subtree(ctx, repo, commit, "/usr/etc")
	if err != nil {
		if tree, meta, err = subtree(ctx, repo, commit, "/etc"); err != nil {
			return fmt.Errorf("resetting /etc: %w", err)
		}
	}
	if err := repo.CheckoutTree(ctx, tree, meta, etc, ostree.WithForceCopy()); err != nil {
		return fmt.Errorf("resetting /etc: %w", err)
	}
	return nil
}

type dirStateKind int

const (
	dirMissing dirStateKind = iota
	dirEmpty
	dirPopulated
)

func dirState(path string) (dirStateKind, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return dirMissing, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return dirPopulated, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	return dirEmpty, nil
}

// subtree returns the dirtree and dirmeta of directory p of commit c.
func subtree(ctx context.Context, repo *ostree.Repo, c ostree.Checksum, p string) (tree, meta ostree.Checksum, err error) {
	found := false
	err = repo.Walk(ctx, c, p, ostree.WalkOptions{DirOnly: true}, func(e *ostree.TreeEntry) error {
		if e.IsDir() {
			tree, meta, found = e.Tree, e.MetaChecksum, true
		}
		return nil
	})
	if err == nil && !found {
		err = fmt.Errorf("%s is not a directory in commit %s", p, c)
	}
	return tree, meta, err
}

// etcDiff is ostree_diff_dirs of the merge deployment's usr/etc (a) and etc (b), ignoring
// xattrs: paths relative to etc, in the order the diff finds them.
type etcDiff struct {
	modified, removed, added []string
}

// diffEtc compares two trees as ostree_diff_dirs with OSTREE_DIFF_FLAGS_IGNORE_XATTRS: an entry
// of a missing from b is removed (not descended into); one whose type changed is modified; one
// of the same type is modified if its owner, mode, content or symlink target differ, and a
// directory is descended into either way; an entry of b missing from a is added, and so is
// everything below it.
func diffEtc(ctx context.Context, a, b string) (*etcDiff, error) {
	d := &etcDiff{}
	if err := d.dirs(ctx, a, b, ""); err != nil {
		return nil, fmt.Errorf("computing the /etc changes: %w", err)
	}
	return d, nil
}

func (d *etcDiff) dirs(ctx context.Context, a, b, rel string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	aNames, err := readDirNames(filepath.Join(a, rel))
	if err != nil {
		return err
	}
	for _, name := range aNames {
		p := filepath.Join(rel, name)
		var sa, sb unix.Stat_t
		if err := unix.Lstat(filepath.Join(a, p), &sa); err != nil {
			return err
		}
		err := unix.Lstat(filepath.Join(b, p), &sb)
		if errors.Is(err, unix.ENOENT) {
			d.removed = append(d.removed, p)
			continue
		}
		if err != nil {
			return err
		}
		if sa.Mode&unix.S_IFMT != sb.Mode&unix.S_IFMT {
			d.modified = append(d.modified, p)
			continue
		}
		same, err := sameFile(filepath.Join(a, p), filepath.Join(b, p), &sa, &sb)
		if err != nil {
			return err
		}
		if !same {
			d.modified = append(d.modified, p)
		}
		if sa.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := d.dirs(ctx, a, b, p); err != nil {
				return err
			}
		}
	}
	bNames, err := readDirNames(filepath.Join(b, rel))
	if err != nil {
		return err
	}
	for _, name := range bNames {
		p := filepath.Join(rel, name)
		if _, err := os.Lstat(filepath.Join(a, p)); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if err := d.addAll(filepath.Join(b, p), p); err != nil {
			return err
		}
	}
	return nil
}

// addAll adds p and, for a directory, everything below it (diff_add_dir_recurse).
func (d *etcDiff) addAll(abs, p string) error {
	d.added = append(d.added, p)
	st, err := os.Lstat(abs)
	if err != nil || !st.IsDir() {
		return err
	}
	names, err := readDirNames(abs)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := d.addAll(filepath.Join(abs, n), filepath.Join(p, n)); err != nil {
			return err
		}
	}
	return nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// sameFile compares what an ostree file checksum without xattrs covers: owner, mode, and the
// content of a regular file or the target of a symlink.
func sameFile(a, b string, sa, sb *unix.Stat_t) (bool, error) {
	if sa.Uid != sb.Uid || sa.Gid != sb.Gid || sa.Mode != sb.Mode {
		return false, nil
	}
	switch sa.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		ta, err := os.Readlink(a)
		if err != nil {
			return false, err
		}
		tb, err := os.Readlink(b)
		return ta == tb, err
	case unix.S_IFREG:
		if sa.Size != sb.Size {
			return false, nil
		}
		if sa.Dev == sb.Dev && sa.Ino == sb.Ino {
			return true, nil
		}
		return sameContent(a, b)
	case unix.S_IFDIR:
		return true, nil
	}
	return sa.Rdev == sb.Rdev, nil
}

// compareBufs are sameContent's buffers, reused: /etc holds hundreds of files to compare.
var compareBufs = sync.Pool{New: func() any { return &[2][]byte{make([]byte, 64<<10), make([]byte, 64<<10)} }}

func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	bufs := compareBufs.Get().(*[2][]byte)
	defer compareBufs.Put(bufs)
	bufA, bufB := bufs[0], bufs[1]
	for {
		na, errA := io.ReadFull(fa, bufA)
		nb, errB := io.ReadFull(fb, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		doneA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		doneB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		switch {
		case errA != nil && !doneA:
			return false, errA
		case errB != nil && !doneB:
			return false, errB
		case doneA || doneB:
			return doneA == doneB, nil
		}
	}
}

// mergeEtc carries the local changes of the merge deployment's /etc (mergeRoot/etc against
// mergeRoot/usr/etc) into the new deployment's etc (merge_configuration_from): removed paths
// are removed, modified and added ones copied over, and the local version always wins.
func mergeEtc(ctx context.Context, mergeRoot, newRoot string) (*etcDiff, error) {
	orig, mod, dst := filepath.Join(mergeRoot, "usr", "etc"), filepath.Join(mergeRoot, "etc"), filepath.Join(newRoot, "etc")
	for _, dir := range []string{orig, mod, dst} {
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return &etcDiff{}, nil // nothing to merge from or into
		}
	}
	d, err := diffEtc(ctx, orig, mod)
	if err != nil {
		return nil, err
	}
	for _, p := range d.removed {
		if err := os.RemoveAll(filepath.Join(dst, p)); err != nil {
			return nil, fmt.Errorf("merging /etc: removing %s: %w", p, err)
		}
	}
	for _, list := range [][]string{d.modified, d.added} {
		for _, p := range list {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if err := copyModified(mod, dst, p); err != nil {
				return nil, fmt.Errorf("merging /etc: %w", err)
			}
		}
	}
	return d, nil
}

// copyModified copies mod/p over dst/p (copy_modified_config_file): missing parent directories
// are created like those of mod; a directory already in dst stays (its entries are merged one
// by one), unless the local version is not a directory, which cannot be merged.
func copyModified(mod, dst, p string) error {
	var ms unix.Stat_t
	if err := unix.Lstat(filepath.Join(mod, p), &ms); err != nil {
		return fmt.Errorf("reading modified config file %s: %w", p, err)
	}
	if parent := filepath.Dir(p); parent != "." {
		if err := ensureDirFrom(mod, dst, parent); err != nil {
			return err
		}
	}
	var ds unix.Stat_t
	err := unix.Lstat(filepath.Join(dst, p), &ds)
	switch {
	case err == nil && ds.Mode&unix.S_IFMT == unix.S_IFDIR:
		if ms.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("modified config file /etc/%s newly defaults to a directory, cannot merge: move your version away in the current deployment's /etc (or remove it) and deploy again", p)
		}
		return nil
	case err == nil:
		if err := os.Remove(filepath.Join(dst, p)); err != nil {
			return err
		}
	case !errors.Is(err, unix.ENOENT):
		return err
	}
	return copyEntry(filepath.Join(mod, p), filepath.Join(dst, p))
}

// ensureDirFrom creates directory dst/p and its missing parents with the owner, mode and
// xattrs of mod/p (ensure_directory_from_template).
func ensureDirFrom(mod, dst, p string) error {
	if _, err := os.Lstat(filepath.Join(dst, p)); err == nil {
		return nil
	}
	if parent := filepath.Dir(p); parent != "." {
		if err := ensureDirFrom(mod, dst, parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(dst, p), 0o700); err != nil {
		return err
	}
	return copyAttrs(filepath.Join(mod, p), filepath.Join(dst, p))
}

// copyEntry copies a regular file, symlink or directory tree with owners, modes, xattrs and
// times. Other file types (devices, sockets, FIFOs) are skipped, as libostree skips them in
// /etc.
func copyEntry(src, dst string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return err
	}
	switch {
	case st.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil {
			return err
		}
		names, err := readDirNames(src)
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := copyEntry(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
				return err
			}
		}
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	case st.Mode().IsRegular():
		if err := copyRegular(src, dst); err != nil {
			return err
		}
	default:
		return nil
	}
	return copyAttrs(src, dst)
}

// copyAttrs copies owner, xattrs, mode (after chown, which clears setuid) and times from src
// to dst, neither followed if a symlink.
func copyAttrs(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("copying owner of %s: %w", src, err)
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		return fmt.Errorf("reading xattrs of %s: %w", src, err)
	}
	for _, n := range names {
		v, err := getXattr(src, n)
		if err != nil {
			return fmt.Errorf("reading xattr %s of %s: %w", n, src, err)
		}
		if err := unix.Lsetxattr(dst, n, v, 0); err != nil {
			return fmt.Errorf("setting xattr %s on %s: %w", n, dst, err)
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		return nil, err
	}
	if size == 0 {
		return nil, nil
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range strings.Split(string(buf[:n]), "\x00") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

func getXattr(path, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(path, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
