package ostree

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/bootc-go/bootc/pkg/gvariant"
)

// CommitOption configures CommitDir and CommitEntries. The options mirror `ostree commit`.
type CommitOption func(*commitConfig)

type commitConfig struct {
	branch         string
	subject, body  string
	timestamp      *time.Time
	metadata       Metadata
	parent         *Checksum // nil: the branch's current head, if any
	bindings       bool
	bindRefs       []string
	ownerUID       int
	ownerGID       int
	canonicalPerms bool
	noXattrs       bool
	workers        int
	progress       func(CommitProgress)
	skipContents   func(path string) bool
}

// CommitProgress reports how far a commit has got.
type CommitProgress struct {
	Files      int64 // content objects processed
	Bytes      int64 // content bytes read
	NewObjects int64 // content objects that were not in the repository
}

func newCommitConfig(opts []CommitOption) (*commitConfig, error) {
	c := &commitConfig{bindings: true, ownerUID: -1, ownerGID: -1, workers: runtime.GOMAXPROCS(0)}
	for _, o := range opts {
		o(c)
	}
	if c.branch != "" {
		if err := ValidateRef(c.branch); err != nil {
			return nil, fmt.Errorf("branch: %w", err)
		}
	}
	for _, r := range c.bindRefs {
		if err := ValidateRef(r); err != nil {
			return nil, fmt.Errorf("bind ref: %w", err)
		}
	}
	if c.workers < 1 {
		c.workers = 1
	}
	if c.timestamp == nil {
		t := time.Now()
		c.timestamp = &t
	}
	return c, nil
}

// WithBranch makes the commit the new head of branch (and, by default, its parent the old head).
func WithBranch(branch string) CommitOption { return func(c *commitConfig) { c.branch = branch } }

// WithSubject sets the commit subject.
func WithSubject(s string) CommitOption { return func(c *commitConfig) { c.subject = s } }

// WithBody sets the commit body.
func WithBody(s string) CommitOption { return func(c *commitConfig) { c.body = s } }

// WithTimestamp sets the commit time (default: now). For reproducible commits, callers pass a
// fixed time, such as SOURCE_DATE_EPOCH, which the CLI reads: the library reads no environment.
func WithTimestamp(t time.Time) CommitOption { return func(c *commitConfig) { c.timestamp = &t } }

// WithMetadata adds a metadata key, after those added before it.
func WithMetadata(key string, v gvariant.Variant) CommitOption {
	return func(c *commitConfig) { c.metadata.Set(key, v) }
}

// WithMetadataString adds a string metadata key (ostree's --add-metadata-string).
func WithMetadataString(key, value string) CommitOption { return WithMetadata(key, StringValue(value)) }

// WithParent sets the parent commit.
func WithParent(p Checksum) CommitOption { return func(c *commitConfig) { c.parent = &p } }

// WithNoParent makes the commit have no parent even if the branch has a head.
func WithNoParent() CommitOption { return func(c *commitConfig) { c.parent = &Checksum{} } }

// WithoutBindings leaves out the ostree.ref-binding metadata (ostree's --no-bindings).
func WithoutBindings() CommitOption { return func(c *commitConfig) { c.bindings = false } }

// WithBindRefs binds the commit to more refs besides the branch (ostree's --bind-ref).
func WithBindRefs(refs ...string) CommitOption {
	return func(c *commitConfig) { c.bindRefs = append(c.bindRefs, refs...) }
}

// WithOwnerUID stores every file and directory as owned by uid.
func WithOwnerUID(uid uint32) CommitOption { return func(c *commitConfig) { c.ownerUID = int(uid) } }

// WithOwnerGID stores every file and directory as owned by gid.
func WithOwnerGID(gid uint32) CommitOption { return func(c *commitConfig) { c.ownerGID = int(gid) } }

// WithCanonicalPermissions stores uid/gid 0 and drops all mode bits but 0755.
func WithCanonicalPermissions() CommitOption {
	return func(c *commitConfig) { c.canonicalPerms = true }
}

// WithoutXattrs drops extended attributes.
func WithoutXattrs() CommitOption { return func(c *commitConfig) { c.noXattrs = true } }

// WithWorkers sets how many files are hashed and written at once (default GOMAXPROCS).
func WithWorkers(n int) CommitOption { return func(c *commitConfig) { c.workers = n } }

// WithProgress calls fn from time to time while committing, from any goroutine.
func WithProgress(fn func(CommitProgress)) CommitOption {
	return func(c *commitConfig) { c.progress = fn }
}

// WithSkipContents commits each directory for which skip returns true (given its path relative to
// the root, e.g. "dev" or "var/tmp") without its contents. CommitDir only.
func WithSkipContents(skip func(path string) bool) CommitOption {
	return func(c *commitConfig) { c.skipContents = skip }
}

// adjust applies the ownership, permission and xattr options to an object's metadata.
func (c *commitConfig) adjust(uid, gid, mode *uint32, xattrs *Xattrs) {
	if c.ownerUID >= 0 {
		*uid = uint32(c.ownerUID)
	}
	if c.ownerGID >= 0 {
		*gid = uint32(c.ownerGID)
	}
	if c.canonicalPerms {
		*uid, *gid = 0, 0
		if t := *mode & ModeTypeMask; t == ModeRegular || t == ModeDir {
			*mode = t | *mode&0o755
		}
	}
	if c.noXattrs {
		*xattrs = nil
	}
}

// CommitDir commits the directory tree at dir, as `ostree commit --tree=dir=DIR`, in a
// transaction of its own: Transaction.WriteDir, MutableTree.Write and Transaction.WriteCommit,
// then Commit. It returns the commit.
func (r *Repo) CommitDir(ctx context.Context, dir string, opts ...CommitOption) (Checksum, error) {
	return r.commit(ctx, opts, func(tx *Transaction) (*MutableTree, error) {
		return tx.WriteDir(ctx, dir, opts...)
	})
}

// WriteDir writes the directory tree at dir into the transaction and returns it as a
// MutableTree, for the caller to edit, Write and commit (libostree's
// write_directory_to_mtree). Ownership, modes and xattrs are read from the source (subject to
// the options WithOwnerUID, WithOwnerGID, WithCanonicalPermissions, WithoutXattrs); hardlinked
// files are read once; identical files are stored once. Content is hashed and written by
// several workers at once (WithWorkers), with WithProgress and WithSkipContents honoured; the
// other options are WriteCommit's and are ignored here. Device nodes, FIFOs and sockets are
// refused.
func (tx *Transaction) WriteDir(ctx context.Context, dir string, opts ...CommitOption) (*MutableTree, error) {
	cfg, err := newCommitConfig(opts)
	if err != nil {
		return nil, err
	}
	return commitDirTree(ctx, tx, dir, cfg)
}

// commit runs build in a new transaction, then writes the tree it returns and the commit, and
// publishes both; on any error the transaction is aborted.
func (r *Repo) commit(ctx context.Context, opts []CommitOption, build func(*Transaction) (*MutableTree, error)) (Checksum, error) {
	if _, err := newCommitConfig(opts); err != nil {
		return Checksum{}, err
	}
	tx, err := r.Begin(ctx)
	if err != nil {
		return Checksum{}, err
	}
	defer tx.Abort()
	tree, err := build(tx)
	if err != nil {
		return Checksum{}, err
	}
	root, err := tree.Write(ctx, tx)
	if err != nil {
		return Checksum{}, err
	}
	c, err := tx.WriteCommit(ctx, root, opts...)
	if err != nil {
		return Checksum{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Checksum{}, err
	}
	return c, nil
}

type commitJob struct {
	path string
	raw  statInfo
	slot *Checksum
}

func commitDirTree(ctx context.Context, tx *Transaction, dir string, cfg *commitConfig) (*MutableTree, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan commitJob, 512)
	var prog progressCounter
	prog.fn = cfg.progress

	errc := make(chan error, cfg.workers+1)
	for i := 0; i < cfg.workers; i++ {
		go func() {
			var werr error
			for j := range jobs {
				if werr != nil {
					continue // drain
				}
				if werr = commitFile(tx, j, cfg, &prog); werr != nil {
					cancel(werr)
				}
			}
			errc <- werr
		}()
	}
	root := NewMutableTree()
	walkErr := func() error {
		defer close(jobs)
		st, err := lstat(dir)
		if err != nil {
			return fmt.Errorf("committing %s: %w", dir, err)
		}
		if st.mode&ModeTypeMask != ModeDir {
			return fmt.Errorf("committing %s: not a directory", dir)
		}
		w := &dirWalker{ctx: ctx, tx: tx, cfg: cfg, jobs: jobs, links: map[devIno]*Checksum{}}
		return w.walk(dir, "", st, root)
	}()
	var firstErr error
	for i := 0; i < cfg.workers; i++ {
		if err := <-errc; err != nil && firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return nil, firstErr
	}
	if walkErr != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
			return nil, cause
		}
		return nil, walkErr
	}
	prog.report()
	return root, nil
}

type devIno struct{ dev, ino uint64 }

type dirWalker struct {
	ctx   context.Context
	tx    *Transaction
	cfg   *commitConfig
	jobs  chan<- commitJob
	links map[devIno]*Checksum
}

func (w *dirWalker) walk(dirPath, rel string, st statInfo, mt *MutableTree) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	xattrs, err := readXattrs(dirPath, -1)
	if err != nil {
		return fmt.Errorf("%s: %w", dirPath, err)
	}
	meta := DirMeta{UID: st.uid, GID: st.gid, Mode: st.mode, Xattrs: xattrs}
	w.cfg.adjust(&meta.UID, &meta.GID, &meta.Mode, &meta.Xattrs)
	mc, err := w.tx.WriteMetadata(ObjectDirMeta, meta.Marshal())
	if err != nil {
		return err
	}
	mt.meta = &mc
	if rel != "" && w.cfg.skipContents != nil && w.cfg.skipContents(rel) {
		return nil
	}

	f, err := os.Open(dirPath)
	if err != nil {
		return fmt.Errorf("reading directory: %w", err)
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", dirPath, err)
	}
	sort.Strings(names) // a stable order makes errors and progress reproducible
	for _, name := range names {
		if !utf8.ValidString(name) {
			return fmt.Errorf("%s: file name %q is not valid UTF-8, which OSTree cannot store; rename it", dirPath, name)
		}
		p := dirPath + "/" + name
		cst, err := lstat(p)
		if err != nil {
			return err
		}
		switch cst.mode & ModeTypeMask {
		case ModeDir:
			sub := NewMutableTree()
			mt.dirs[name] = sub
			if err := w.walk(p, path.Join(rel, name), cst, sub); err != nil {
				return err
			}
		case ModeRegular, ModeSymlink:
			if cst.nlink > 1 && cst.mode&ModeTypeMask == ModeRegular {
				key := devIno{cst.dev, cst.ino}
				if slot, ok := w.links[key]; ok {
					mt.files[name] = slot // a hardlink of a file already queued
					continue
				}
				slot := new(Checksum)
				w.links[key] = slot
				mt.files[name] = slot
				if err := w.send(commitJob{path: p, raw: cst, slot: slot}); err != nil {
					return err
				}
				continue
			}
			slot := new(Checksum)
			mt.files[name] = slot
			if err := w.send(commitJob{path: p, raw: cst, slot: slot}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: unsupported file type (%s): OSTree stores only regular files, symlinks and directories; remove it from the tree (device nodes belong in a devtmpfs at run time)", p, fileTypeName(cst.mode))
		}
	}
	return nil
}

func (w *dirWalker) send(j commitJob) error {
	select {
	case w.jobs <- j:
		return nil
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
}

func fileTypeName(mode uint32) string {
	switch mode & ModeTypeMask {
	case 0o020000:
		return "character device"
	case 0o060000:
		return "block device"
	case 0o010000:
		return "FIFO"
	case 0o140000:
		return "socket"
	}
	return fmt.Sprintf("mode %#o", mode)
}

func commitFile(tx *Transaction, j commitJob, cfg *commitConfig, prog *progressCounter) error {
	h := &FileHeader{UID: j.raw.uid, GID: j.raw.gid, Mode: j.raw.mode}
	var (
		c     Checksum
		isNew bool
		err   error
	)
	if j.raw.mode&ModeTypeMask == ModeSymlink {
		if h.SymlinkTarget, err = os.Readlink(j.path); err != nil {
			return fmt.Errorf("reading symlink: %w", err)
		}
		if !utf8.ValidString(h.SymlinkTarget) {
			return fmt.Errorf("%s: symlink target %q is not valid UTF-8, which OSTree cannot store", j.path, h.SymlinkTarget)
		}
		if h.Xattrs, err = readXattrs(j.path, -1); err != nil {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		cfg.adjust(&h.UID, &h.GID, &h.Mode, &h.Xattrs)
		if err := h.Validate(); err != nil {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		c, isNew, err = tx.writeContent(h, nil, 0)
	} else {
		f, ferr := os.OpenFile(j.path, os.O_RDONLY|syscallNoFollow|syscallNoAtime, 0)
		if ferr != nil && errors.Is(ferr, errPermNoAtime) {
			f, ferr = os.OpenFile(j.path, os.O_RDONLY|syscallNoFollow, 0)
		}
		if ferr != nil {
			return fmt.Errorf("reading file: %w", ferr)
		}
		defer f.Close()
		if h.Xattrs, err = readXattrs(j.path, int(f.Fd())); err != nil {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		cfg.adjust(&h.UID, &h.GID, &h.Mode, &h.Xattrs)
		c, isNew, err = tx.writeContent(h, f, j.raw.size)
		if err != nil {
			err = fmt.Errorf("%s: %w", j.path, err)
		}
		atomic.AddInt64(&prog.bytes, j.raw.size)
	}
	if err != nil {
		return err
	}
	*j.slot = c
	prog.file(isNew)
	return nil
}

type progressCounter struct {
	files, bytes, newObjs int64
	fn                    func(CommitProgress)
}

func (p *progressCounter) file(isNew bool) {
	n := atomic.AddInt64(&p.files, 1)
	if isNew {
		atomic.AddInt64(&p.newObjs, 1)
	}
	if p.fn != nil && n%256 == 0 {
		p.report()
	}
}

func (p *progressCounter) report() {
	if p.fn != nil {
		p.fn(CommitProgress{Files: atomic.LoadInt64(&p.files), Bytes: atomic.LoadInt64(&p.bytes), NewObjects: atomic.LoadInt64(&p.newObjs)})
	}
}

// WriteCommit writes a commit of root (a tree written in this transaction, e.g. by
// MutableTree.Write, or already in the repository) and, with WithBranch, sets the branch to it
// when the transaction commits. The options that shape the commit are honoured: WithBranch,
// WithSubject, WithBody, WithTimestamp, WithMetadata*, WithParent/WithNoParent (the default
// parent is the branch's current head), WithoutBindings, WithBindRefs; those about reading files
// are WriteDir's and ignored here. With the same tree, options and timestamp, the commit is the
// one CommitDir or CommitEntries makes. A root dirtree or dirmeta that is neither staged nor in
// the repository is an error wrapping ErrObjectNotFound.
func (tx *Transaction) WriteCommit(ctx context.Context, root Root, opts ...CommitOption) (Checksum, error) {
	if err := ctx.Err(); err != nil {
		return Checksum{}, err
	}
	cfg, err := newCommitConfig(opts)
	if err != nil {
		return Checksum{}, err
	}
	for _, n := range []ObjectName{{root.Tree, ObjectDirTree}, {root.Meta, ObjectDirMeta}} {
		ok, err := tx.Has(n)
		if err != nil {
			return Checksum{}, err
		}
		if !ok {
			return Checksum{}, fmt.Errorf("writing commit: root %s: %w: %s", n.Type, ErrObjectNotFound, n)
		}
	}
	commit := Commit{
		Metadata:  append(Metadata(nil), cfg.metadata...),
		Subject:   cfg.subject,
		Body:      cfg.body,
		Timestamp: uint64(cfg.timestamp.Unix()),
		RootTree:  root.Tree,
		RootMeta:  root.Meta,
	}
	if cfg.parent != nil {
		commit.Parent = *cfg.parent
	} else if cfg.branch != "" {
		head, err := tx.repo.ReadRef(cfg.branch)
		switch {
		case err == nil:
			commit.Parent = head
		case !errors.Is(err, ErrRefNotFound):
			return Checksum{}, err
		}
	}
	if cfg.bindings && cfg.branch != "" {
		refs := append([]string{cfg.branch}, cfg.bindRefs...)
		sort.Strings(refs)
		commit.Metadata.Set("ostree.ref-binding", StringArrayValue(refs))
	}
	if cfg.bindings && tx.repo.collectionID != "" {
		commit.Metadata.Set("ostree.collection-binding", StringValue(tx.repo.collectionID))
	}
	data, err := commit.Marshal()
	if err != nil {
		return Checksum{}, fmt.Errorf("commit metadata: %w", err)
	}
	c, err := tx.WriteMetadata(ObjectCommit, data)
	if err != nil {
		return Checksum{}, err
	}
	if cfg.branch != "" {
		if err := tx.SetRef(cfg.branch, &c); err != nil {
			return Checksum{}, err
		}
	}
	return c, nil
}

// EntryType is the kind of an Entry.
type EntryType int

// The entry types.
const (
	EntryDir EntryType = iota
	EntryRegular
	EntrySymlink
	// EntryHardlink names an earlier regular file (Linkname) whose content it shares.
	EntryHardlink
)

// Entry is one item of a tree given as a stream, in the manner of a tar archive.
type Entry struct {
	// Path is slash-separated and relative to the root; "", "." and "/" name the root. Leading
	// "./" and "/" are ignored. Missing parent directories are created with the default dirmeta.
	Path string
	Type EntryType
	UID  uint32
	GID  uint32
	// Mode holds the permission bits (07777); the type comes from Type.
	Mode   uint32
	Xattrs Xattrs
	// Linkname is the target of a symlink, or the path of the file a hardlink shares.
	Linkname string
	// Size and Content give a regular file's content; Content is read to the end (Size bytes)
	// before the next entry is asked for.
	Size    int64
	Content io.Reader
}

// EntrySource yields entries; Next returns io.EOF after the last.
type EntrySource interface {
	Next(ctx context.Context) (*Entry, error)
}

// CommitEntries commits a tree given as a stream of entries, in a transaction of its own (see
// Transaction.WriteEntries), and returns the commit.
func (r *Repo) CommitEntries(ctx context.Context, src EntrySource, opts ...CommitOption) (Checksum, error) {
	return r.commit(ctx, opts, func(tx *Transaction) (*MutableTree, error) {
		return tx.WriteEntries(ctx, src, opts...)
	})
}

// WriteEntries writes a tree given as a stream of entries into the transaction and returns it as
// a MutableTree. A later entry for a path replaces an earlier one, as in a tar archive. The
// options about ownership, permissions, xattrs and progress are honoured, as by WriteDir.
// Content is streamed into the transaction; the tree holds only names and checksums.
func (tx *Transaction) WriteEntries(ctx context.Context, src EntrySource, opts ...CommitOption) (*MutableTree, error) {
	cfg, err := newCommitConfig(opts)
	if err != nil {
		return nil, err
	}
	root := NewMutableTree()
	prog := progressCounter{fn: cfg.progress}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		e, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := addEntry(tx, root, e, cfg, &prog); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Path, err)
		}
	}
	prog.report()
	return root, nil
}

// splitEntryPath cleans an entry path into its components; nil is the root.
func splitEntryPath(p string) ([]string, error) {
	if !utf8.ValidString(p) {
		return nil, fmt.Errorf("path is not valid UTF-8, which OSTree cannot store")
	}
	p = strings.Trim(p, "/")
	for strings.HasPrefix(p, "./") {
		p = strings.TrimLeft(p[2:], "/")
	}
	if p == "" || p == "." {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, c := range parts {
		if c == "" || c == "." {
			continue
		}
		if err := ValidateFilename(c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// lookupDir walks to the directory named by parts, creating missing ones; a file in the way is
// replaced by a directory, as when a tar archive does so.
func (t *MutableTree) lookupDir(parts []string) *MutableTree {
	for _, name := range parts {
		sub, ok := t.dirs[name]
		if !ok {
			delete(t.files, name)
			sub = NewMutableTree()
			t.dirs[name] = sub
		}
		t = sub
	}
	return t
}

func (t *MutableTree) lookupFile(parts []string) (*Checksum, bool) {
	if len(parts) == 0 {
		return nil, false
	}
	dir := t
	for _, name := range parts[:len(parts)-1] {
		sub, ok := dir.dirs[name]
		if !ok {
			return nil, false
		}
		dir = sub
	}
	c, ok := dir.files[parts[len(parts)-1]]
	return c, ok
}

func addEntry(tx *Transaction, root *MutableTree, e *Entry, cfg *commitConfig, prog *progressCounter) error {
	parts, err := splitEntryPath(e.Path)
	if err != nil {
		return err
	}
	if e.Type == EntryDir {
		meta := DirMeta{UID: e.UID, GID: e.GID, Mode: ModeDir | e.Mode&0o7777, Xattrs: e.Xattrs.Canonical()}
		cfg.adjust(&meta.UID, &meta.GID, &meta.Mode, &meta.Xattrs)
		mc, err := tx.WriteMetadata(ObjectDirMeta, meta.Marshal())
		if err != nil {
			return err
		}
		d := root.lookupDir(parts)
		d.meta = &mc
		return nil
	}
	if len(parts) == 0 {
		return fmt.Errorf("the root must be a directory")
	}
	parent := root.lookupDir(parts[:len(parts)-1])
	name := parts[len(parts)-1]
	var slot *Checksum
	switch e.Type {
	case EntryHardlink:
		target, err := splitEntryPath(e.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		c, ok := root.lookupFile(target)
		if !ok {
			return fmt.Errorf("hardlink to %q, which is not an earlier file", e.Linkname)
		}
		slot = c
	case EntryRegular, EntrySymlink:
		h := &FileHeader{UID: e.UID, GID: e.GID, Mode: ModeRegular | e.Mode&0o7777, Xattrs: e.Xattrs}
		size := e.Size
		if e.Type == EntrySymlink {
			h.Mode = ModeSymlink | 0o777
			h.SymlinkTarget = e.Linkname
			size = 0
		}
		cfg.adjust(&h.UID, &h.GID, &h.Mode, &h.Xattrs)
		if err := h.Validate(); err != nil {
			return err
		}
		c, isNew, err := tx.writeContent(h, e.Content, size)
		if err != nil {
			return err
		}
		atomic.AddInt64(&prog.bytes, size)
		prog.file(isNew)
		slot = &c
	default:
		return fmt.Errorf("unsupported entry type %d", e.Type)
	}
	delete(parent.dirs, name)
	parent.files[name] = slot
	return nil
}
