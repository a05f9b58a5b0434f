package ostree

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/bootc-go/bootc/internal/lockfile"
	"github.com/klauspost/compress/flate"
	"golang.org/x/sys/unix"
)

// Transaction writes objects and refs to a repository, crash-safely.
//
// Order of operations, as libostree's: each object is written to a file in a private staging
// directory under tmp/ and renamed there to its name once its checksum is known; Commit then
// syncs the filesystem, renames every staged object into objects/, syncs again, and only then
// writes the refs (each atomically, by rename). A crash at any point leaves no partial object
// under objects/ and no ref naming a commit whose objects are not all durable. Abort, or a crash,
// leaves only the staging directory, which is removed by Abort (or by hand: tmp/staging-*).
//
// Writes are safe from many goroutines at once.
type Transaction struct {
	repo   *Repo
	dir    string
	unlock func()
	mu     sync.Mutex
	staged map[ObjectName]struct{}
	refs   map[string]*Checksum
	done   bool
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// Begin starts a transaction. It holds a shared lock on the repository until Commit or Abort,
// waiting while Prune holds it exclusively (until ctx is done).
func (r *Repo) Begin(ctx context.Context) (*Transaction, error) {
	unlock, err := r.lock(ctx, lockfile.Shared)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(filepath.Join(r.path, "tmp"), "staging-")
	if err != nil {
		unlock()
		return nil, fmt.Errorf("starting transaction: %w", err)
	}
	return &Transaction{repo: r, dir: dir, unlock: unlock, staged: map[ObjectName]struct{}{}, refs: map[string]*Checksum{}}, nil
}

// Repo returns the transaction's repository.
func (tx *Transaction) Repo() *Repo { return tx.repo }

// Has reports whether the object is in the repository or staged in this transaction.
func (tx *Transaction) Has(n ObjectName) (bool, error) {
	tx.mu.Lock()
	_, ok := tx.staged[n]
	tx.mu.Unlock()
	if ok {
		return true, nil
	}
	return tx.repo.HasObject(n)
}

// stage renames a finished temporary object to its name in the staging directory, or drops it if
// the object already exists. It reports whether the object was new.
func (tx *Transaction) stage(tmp string, n ObjectName) (bool, error) {
	if ok, err := tx.Has(n); err != nil || ok {
		os.Remove(tmp)
		return false, err
	}
	if err := os.Rename(tmp, filepath.Join(tx.dir, n.String())); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("staging %s: %w", n, err)
	}
	tx.mu.Lock()
	tx.staged[n] = struct{}{}
	tx.mu.Unlock()
	return true, nil
}

// WriteMetadata writes a metadata object and returns its checksum.
func (tx *Transaction) WriteMetadata(t ObjectType, data []byte) (Checksum, error) {
	if !t.IsMeta() || t == ObjectCommitMeta {
		return Checksum{}, fmt.Errorf("WriteMetadata: %s is not a content-addressed metadata type", t)
	}
	c := Checksum(sha256Sum(data))
	n := ObjectName{c, t}
	if ok, err := tx.Has(n); err != nil || ok {
		return c, err
	}
	return c, tx.writeSmall(n, data)
}

// WriteCommitMeta writes the detached metadata of commit c, replacing any it had.
func (tx *Transaction) WriteCommitMeta(c Checksum, m Metadata) error {
	data, err := MarshalMetadata(m)
	if err != nil {
		return fmt.Errorf("detached metadata: %w", err)
	}
	return tx.writeSmall(ObjectName{c, ObjectCommitMeta}, data)
}

func (tx *Transaction) writeSmall(n ObjectName, data []byte) error {
	f, err := os.CreateTemp(tx.dir, "tmp-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", n, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("writing %s: %w", n, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(tx.dir, n.String())); err != nil {
		return fmt.Errorf("staging %s: %w", n, err)
	}
	tx.mu.Lock()
	tx.staged[n] = struct{}{}
	tx.mu.Unlock()
	return nil
}

// WriteContent streams a content object: for a regular file, exactly size bytes of content read
// from r; for a symlink (h.SymlinkTarget set), nothing (r may be nil). It returns the object's
// checksum. The content is hashed while it is written, never held in memory.
func (tx *Transaction) WriteContent(h *FileHeader, r io.Reader, size int64) (Checksum, error) {
	if err := h.Validate(); err != nil {
		return Checksum{}, err
	}
	c, _, err := tx.writeContent(h, r, size)
	return c, err
}

func (tx *Transaction) writeContent(h *FileHeader, r io.Reader, size int64) (Checksum, bool, error) {
	h.Xattrs = h.Xattrs.Canonical()
	hasher := NewContentHash(h)
	mode := tx.repo.mode
	if mode == ModeBare && h.IsSymlink() {
		return tx.writeBareSymlink(h, hasher)
	}
	f, err := os.CreateTemp(tx.dir, "tmp-")
	if err != nil {
		return Checksum{}, false, fmt.Errorf("writing content: %w", err)
	}
	tmp := f.Name()
	fail := func(err error) (Checksum, bool, error) {
		f.Close()
		os.Remove(tmp)
		return Checksum{}, false, err
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)

	switch mode {
	case ModeArchive:
		if h.IsSymlink() {
			size = 0
		}
		if _, err := f.Write(lenPrefixed(h.MarshalArchive(uint64(size)))); err != nil {
			return fail(fmt.Errorf("writing content: %w", err))
		}
		if !h.IsSymlink() {
			zw, err := flate.NewWriter(f, tx.repo.zlibLevel)
			if err != nil {
				return fail(err)
			}
			if err := copyExactly(io.MultiWriter(hasher, zw), r, size, *bp); err != nil {
				return fail(err)
			}
			if err := zw.Close(); err != nil {
				return fail(fmt.Errorf("writing content: %w", err))
			}
		}
		if err := f.Chmod(0o644); err != nil {
			return fail(err)
		}
	case ModeBare, ModeBareUser:
		if h.IsSymlink() { // bare-user: a regular file holding the target and a NUL
			if _, err := f.Write(append([]byte(h.SymlinkTarget), 0)); err != nil {
				return fail(fmt.Errorf("writing content: %w", err))
			}
		} else if err := copyExactly(io.MultiWriter(hasher, f), r, size, *bp); err != nil {
			return fail(err)
		}
		fd := int(f.Fd())
		if mode == ModeBare {
			if err := unix.Fchown(fd, int(h.UID), int(h.GID)); err != nil {
				return fail(fmt.Errorf("mode bare needs root to store owner %d:%d: %w (use mode bare-user)", h.UID, h.GID, err))
			}
			if err := unix.Fchmod(fd, h.Mode&0o7777); err != nil {
				return fail(err)
			}
			for _, x := range h.Xattrs {
				if err := unix.Fsetxattr(fd, x.Name, x.Value, 0); err != nil {
					return fail(fmt.Errorf("setting xattr %s: %w", x.Name, err))
				}
			}
		} else {
			perm := uint32(0o644)
			if !h.IsSymlink() {
				perm = h.Mode&0o775 | 0o400
			}
			if err := unix.Fchmod(fd, perm); err != nil {
				return fail(err)
			}
			if err := unix.Fsetxattr(fd, bareUserMetaXattr, h.Meta().Marshal(), 0); err != nil {
				return fail(fmt.Errorf("setting %s: %w", bareUserMetaXattr, err))
			}
		}
		if err := unix.Futimes(fd, []unix.Timeval{{}, {}}); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return Checksum{}, false, fmt.Errorf("writing content: %w", err)
	}
	var c Checksum
	hasher.Sum(c[:0])
	isNew, err := tx.stage(tmp, ObjectName{c, ObjectFile})
	return c, isNew, err
}

func (tx *Transaction) writeBareSymlink(h *FileHeader, hasher hash.Hash) (Checksum, bool, error) {
	var c Checksum
	hasher.Sum(c[:0])
	n := ObjectName{c, ObjectFile}
	if ok, err := tx.Has(n); err != nil || ok {
		return c, false, err
	}
	f, err := os.CreateTemp(tx.dir, "tmp-link-")
	if err != nil {
		return c, false, err
	}
	tmp := f.Name()
	f.Close()
	os.Remove(tmp)
	if err := os.Symlink(h.SymlinkTarget, tmp); err != nil {
		return c, false, fmt.Errorf("writing symlink object: %w", err)
	}
	if err := unix.Lchown(tmp, int(h.UID), int(h.GID)); err != nil {
		os.Remove(tmp)
		return c, false, fmt.Errorf("mode bare needs root to store owner %d:%d: %w (use mode bare-user)", h.UID, h.GID, err)
	}
	for _, x := range h.Xattrs {
		if err := unix.Lsetxattr(tmp, x.Name, x.Value, 0); err != nil {
			os.Remove(tmp)
			return c, false, fmt.Errorf("setting xattr %s on symlink: %w", x.Name, err)
		}
	}
	isNew, err := tx.stage(tmp, n)
	return c, isNew, err
}

// copyExactly copies exactly n bytes from r to w, failing if r has fewer or more.
func copyExactly(w io.Writer, r io.Reader, n int64, buf []byte) error {
	if r == nil {
		if n == 0 {
			return nil
		}
		return fmt.Errorf("writing content: no reader for %d bytes", n)
	}
	got, err := io.CopyBuffer(w, io.LimitReader(r, n), buf)
	if err != nil {
		return fmt.Errorf("writing content: %w", err)
	}
	if got != n {
		return fmt.Errorf("writing content: got %d bytes, expected %d (did the file change while it was read?)", got, n)
	}
	// The content must end here too.
	var one [1]byte
	if k, _ := io.ReadFull(r, one[:]); k != 0 {
		return fmt.Errorf("writing content: more than the expected %d bytes (did the file change while it was read?)", n)
	}
	return nil
}

// SetRef records that ref is to point at c when the transaction commits; a nil c deletes it.
func (tx *Transaction) SetRef(ref string, c *Checksum) error {
	if err := ValidateRef(ref); err != nil {
		return err
	}
	tx.mu.Lock()
	tx.refs[ref] = c
	tx.mu.Unlock()
	return nil
}

// Commit publishes the staged objects and then the refs (see Transaction for the order).
func (tx *Transaction) Commit(ctx context.Context) error {
	if tx.done {
		return errors.New("transaction already finished")
	}
	defer tx.Abort()
	if err := ctx.Err(); err != nil {
		return err
	}
	r := tx.repo
	if err := tx.syncfs(); err != nil {
		return err
	}
	names := make([]ObjectName, 0, len(tx.staged))
	for n := range tx.staged {
		names = append(names, n)
	}
	// Metadata last: a reader that finds a commit or tree can then find what it names.
	sort.Slice(names, func(i, j int) bool {
		return names[i].Type < names[j].Type || names[i].Type == names[j].Type && string(names[i].Checksum[:]) < string(names[j].Checksum[:])
	})
	madeDirs := map[string]bool{}
	for _, n := range names {
		dst := r.ObjectPath(n)
		dir := filepath.Dir(dst)
		if !madeDirs[dir] {
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("publishing objects: %w", err)
			}
			madeDirs[dir] = true
		}
		if err := os.Rename(filepath.Join(tx.dir, n.String()), dst); err != nil {
			return fmt.Errorf("publishing %s: %w", n, err)
		}
	}
	if len(names) > 0 {
		if err := tx.syncfs(); err != nil {
			return err
		}
	}
	refs := make([]string, 0, len(tx.refs))
	for ref := range tx.refs {
		refs = append(refs, ref)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		if err := r.writeRef(ref, tx.refs[ref]); err != nil {
			return err
		}
	}
	r.log.Debug("transaction committed", "objects", len(names), "refs", len(refs))
	return nil
}

func (tx *Transaction) syncfs() error {
	if !tx.repo.fsync {
		return nil
	}
	if err := syncfs(tx.dir); err != nil {
		return fmt.Errorf("syncing repository filesystem: %w", err)
	}
	return nil
}

func syncfs(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// Abort discards everything the transaction staged. It is a no-op after Commit.
func (tx *Transaction) Abort() error {
	if tx.done {
		return nil
	}
	tx.done = true
	err := os.RemoveAll(tx.dir)
	tx.unlock()
	return err
}
