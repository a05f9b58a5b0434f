// Package ostree is a pure-Go implementation of the OSTree repository format, byte-compatible with
// libostree: GVariant objects and their checksums, repositories in the bare, bare-user and
// archive (archive-z2) modes, refs, commits from a directory or from a stream of entries,
// checkout, and fsck.
//
// Every object written is named by the same checksum libostree gives it, and every repository
// written is accepted by `ostree fsck`. Content is streamed: no file is ever held in memory whole.
package ostree

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"github.com/bootc-go/bootc/internal/keyfile"
	"golang.org/x/sys/unix"
)

// RepoMode is how a repository stores content objects.
type RepoMode int

// The repository modes.
const (
	// ModeBare stores files as themselves with real ownership, modes and xattrs (needs root).
	ModeBare RepoMode = iota
	// ModeBareUser stores files owned by the writer, with the true metadata in the
	// "user.ostreemeta" xattr.
	ModeBareUser
	// ModeArchive stores a header and the raw-deflate-compressed content (archive-z2).
	ModeArchive
)

// String returns the mode as written to the repo config.
func (m RepoMode) String() string {
	switch m {
	case ModeBare:
		return "bare"
	case ModeBareUser:
		return "bare-user"
	case ModeArchive:
		return "archive-z2"
	}
	return fmt.Sprintf("RepoMode(%d)", int(m))
}

// ParseRepoMode parses a mode name; "archive" and "archive-z2" are the same mode.
func ParseRepoMode(s string) (RepoMode, error) {
	switch s {
	case "bare":
		return ModeBare, nil
	case "bare-user":
		return ModeBareUser, nil
	case "archive", "archive-z2":
		return ModeArchive, nil
	case "bare-user-only", "bare-split-xattrs":
		return 0, fmt.Errorf("repository mode %q is not supported yet; use bare, bare-user or archive", s)
	}
	return 0, fmt.Errorf("unknown repository mode %q: valid modes are bare, bare-user and archive", s)
}

// Errors reported by repositories.
var (
	ErrNotARepo       = errors.New("not an OSTree repository")
	ErrObjectNotFound = errors.New("object not found")
	ErrCorruptObject  = errors.New("corrupt object")
	ErrRefNotFound    = errors.New("ref not found")
	ErrInvalidRef     = errors.New("invalid ref name")
)

// Repo is an open OSTree repository. It is safe for concurrent use.
type Repo struct {
	path         string
	mode         RepoMode
	collectionID string
	fsync        bool
	zlibLevel    int
	log          *slog.Logger
	// meta caches the dirtrees and dirmetas read (metaCache).
	meta *metaCache
}

// Option configures Init and Open.
type Option func(*Repo)

// WithLogger sends the repository's debug log to l (default: discarded).
func WithLogger(l *slog.Logger) Option { return func(r *Repo) { r.log = l } }

// WithFsync sets whether transactions sync the filesystem before publishing objects and refs
// (default true, as libostree's core.fsync). Turning it off trades crash safety for speed.
func WithFsync(on bool) Option { return func(r *Repo) { r.fsync = on } }

func newRepo(path string, opts []Option) *Repo {
	r := &Repo{path: path, fsync: true, zlibLevel: 6, log: slog.New(slog.DiscardHandler), meta: newMetaCache(metaCacheLimit)}
	for _, o := range opts {
		o(r)
	}
	return r
}

// Path returns the repository's directory.
func (r *Repo) Path() string { return r.path }

// Mode returns the repository's mode.
func (r *Repo) Mode() RepoMode { return r.mode }

var repoDirs = []string{"tmp", "extensions", "state", "refs", "refs/heads", "refs/mirrors", "refs/remotes", "objects"}

// Init creates a repository at path in the given mode, as `ostree init` does: the directory is
// created if missing, `objects/` is made last so that a half-made repository is not taken for a
// repository, and the config is written atomically. Initializing an existing repository of the
// same mode is a no-op; of another mode, an error.
func Init(ctx context.Context, path string, mode RepoMode, opts ...Option) (*Repo, error) {
	if _, err := os.Stat(filepath.Join(path, "objects")); err == nil {
		r, err := Open(ctx, path, opts...)
		if err != nil {
			return nil, err
		}
		if r.mode != mode {
			return nil, fmt.Errorf("%s is already a repository in mode %s, not %s", path, r.mode, mode)
		}
		return r, nil
	}
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("creating repository: %w", err)
	}
	if mode == ModeBareUser {
		if err := checkUserXattrs(path); err != nil {
			return nil, err
		}
	}
	config := fmt.Sprintf("[core]\nrepo_version=1\nmode=%s\n", mode)
	if err := atomicfile.WriteFile(filepath.Join(path, "config"), []byte(config), 0o644, atomicfile.WithoutSync()); err != nil {
		return nil, fmt.Errorf("writing repository config: %w", err)
	}
	for _, d := range repoDirs {
		if err := os.Mkdir(filepath.Join(path, d), 0o775); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("creating repository: %w", err)
		}
	}
	return Open(ctx, path, opts...)
}

func checkUserXattrs(dir string) error {
	f, err := os.CreateTemp(dir, ".xattr-probe-")
	if err != nil {
		return fmt.Errorf("probing xattr support: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	if err := unix.Fsetxattr(int(f.Fd()), "user.ostree-probe", []byte("1"), 0); err != nil {
		return fmt.Errorf("mode bare-user needs user.* xattrs, which the filesystem of %s does not support (%w); use mode archive, or a filesystem such as ext4 or xfs", dir, err)
	}
	return nil
}

// Open opens an existing repository, reading its mode from the config.
func Open(ctx context.Context, path string, opts ...Option) (*Repo, error) {
	r := newRepo(path, opts)
	data, err := os.ReadFile(filepath.Join(path, "config"))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no config file (create one with `bootc ostree init --repo %s`)", ErrNotARepo, path, path)
		}
		return nil, fmt.Errorf("opening repository: %w", err)
	}
	if _, err := os.Stat(filepath.Join(path, "objects")); err != nil {
		return nil, fmt.Errorf("%w: %s has no objects directory", ErrNotARepo, path)
	}
	kf, err := keyfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s/config: %w", path, err)
	}
	core := kf.Map()["core"]
	if v := core["repo_version"]; v != "1" {
		return nil, fmt.Errorf("%s/config: unsupported repo_version %q", path, v)
	}
	if core["archive"] == "true" {
		return nil, fmt.Errorf("%s/config: legacy archive=true repositories are not supported", path)
	}
	mode := core["mode"]
	if mode == "" {
		mode = "bare"
	}
	if r.mode, err = ParseRepoMode(mode); err != nil {
		return nil, fmt.Errorf("%s/config: %w", path, err)
	}
	r.collectionID = core["collection-id"]
	if core["fsync"] == "false" {
		r.fsync = false
	}
	return r, nil
}

// syncOption is the atomicfile option for a write that syncs when sync is set.
func syncOption(sync bool) []atomicfile.Option {
	if sync {
		return nil
	}
	return []atomicfile.Option{atomicfile.WithoutSync()}
}

// objectRelPath is the path of a loose object relative to objects/.
func (r *Repo) objectRelPath(n ObjectName) string {
	s := n.Checksum.String()
	suffix := n.Type.String()
	if n.Type == ObjectFile && r.mode == ModeArchive {
		suffix = "filez"
	}
	return s[:2] + "/" + s[2:] + "." + suffix
}

// ObjectPath returns the filesystem path of a loose object.
func (r *Repo) ObjectPath(n ObjectName) string {
	return filepath.Join(r.path, "objects", r.objectRelPath(n))
}

// HasObject reports whether the object is present.
func (r *Repo) HasObject(n ObjectName) (bool, error) {
	var st unix.Stat_t
	err := unix.Lstat(r.ObjectPath(n), &st)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	}
	return false, fmt.Errorf("checking for %s: %w", n, err)
}

// ReadMetadataObject reads a metadata object and checks that it hashes to its name (except
// .commitmeta, which is named after its commit).
// It always reads the disk (fsck relies on that); ReadDirTree and ReadDirMeta may answer from
// the repository's cache of objects already read and verified (metaCache).
func (r *Repo) ReadMetadataObject(n ObjectName) ([]byte, error) {
	return r.readMetaFrom(n, false)
}

// readMeta is ReadMetadataObject through the metadata cache: dirtrees and dirmetas come from
// (and go to) it. The caller must not modify the bytes.
func (r *Repo) readMeta(n ObjectName) ([]byte, error) { return r.readMetaFrom(n, true) }

func (r *Repo) readMetaFrom(n ObjectName, useCache bool) ([]byte, error) {
	if !n.Type.IsMeta() {
		return nil, fmt.Errorf("reading %s: not a metadata object", n)
	}
	cache := useCache && cacheable(n.Type)
	if cache {
		if data := r.meta.get(n); data != nil {
			// Still there? Another process (ostree prune) may have deleted it since.
			var st unix.Stat_t
			err := unix.Lstat(r.ObjectPath(n), &st)
			if err == nil {
				return data, nil
			}
			r.meta.forget(n)
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("%w: %s", ErrObjectNotFound, n)
			}
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
	}
	data, err := readObjectFileAt(unix.AT_FDCWD, r.ObjectPath(n), n)
	if err != nil {
		return nil, err
	}
	if err := checkMeta(n, data); err != nil {
		return nil, err
	}
	if cache {
		r.meta.put(n, data)
	}
	return data, nil
}

// maxMetadataSize bounds metadata objects, as libostree's OSTREE_MAX_METADATA_SIZE (128 MiB).
const maxMetadataSize = 128 << 20

// checkMeta checks that data, read as n, hashes to n's checksum (detached commit metadata, which
// is not named by its content, passes).
func checkMeta(n ObjectName, data []byte) error {
	if n.Type != ObjectCommitMeta {
		if got := Checksum(sha256Sum(data)); got != n.Checksum {
			return fmt.Errorf("%w: %s hashes to %s", ErrCorruptObject, n, got)
		}
	}
	return nil
}

// readObjectFileAt reads the metadata object n whole from path, relative to the directory dirfd
// (unix.AT_FDCWD: the working directory). It uses plain system calls rather than os.Open, which
// registers every file with the runtime's poller: a checkout reads thousands.
func readObjectFileAt(dirfd int, path string, n ObjectName) ([]byte, error) {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s", ErrObjectNotFound, n)
		}
		return nil, fmt.Errorf("reading %s: %w", n, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("reading %s: %w", n, err)
	}
	if st.Size > maxMetadataSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruptObject, n, maxMetadataSize)
	}
	// One byte more than the size, to see the end (or a file that grew).
	data := make([]byte, 0, st.Size+1)
	for {
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
		m, err := unix.Read(fd, data[len(data):cap(data)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
		if m == 0 {
			break
		}
		data = data[:len(data)+m]
		if len(data) > maxMetadataSize {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorruptObject, n, maxMetadataSize)
		}
	}
	return data, nil
}

// ReadCommit reads and parses a commit object.
func (r *Repo) ReadCommit(c Checksum) (*Commit, error) {
	data, err := r.ReadMetadataObject(ObjectName{c, ObjectCommit})
	if err != nil {
		return nil, err
	}
	return UnmarshalCommit(data)
}

// ReadDirTree reads and parses a dirtree object.
func (r *Repo) ReadDirTree(c Checksum) (*DirTree, error) {
	if c == EmptyDirTreeChecksum {
		// libostree never needs the empty tree on disk to read it.
		if ok, _ := r.HasObject(ObjectName{c, ObjectDirTree}); !ok {
			return &DirTree{}, nil
		}
	}
	data, err := r.readMeta(ObjectName{c, ObjectDirTree})
	if err != nil {
		return nil, err
	}
	return UnmarshalDirTree(data)
}

// ReadDirMeta reads and parses a dirmeta object.
func (r *Repo) ReadDirMeta(c Checksum) (*DirMeta, error) {
	data, err := r.readMeta(ObjectName{c, ObjectDirMeta})
	if err != nil {
		return nil, err
	}
	return UnmarshalDirMeta(data)
}

// ReadCommitMeta reads a commit's detached metadata; it returns nil with no error if there is none.
func (r *Repo) ReadCommitMeta(c Checksum) (Metadata, error) {
	data, err := r.ReadMetadataObject(ObjectName{c, ObjectCommitMeta})
	if errors.Is(err, ErrObjectNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return UnmarshalMetadata(data)
}
