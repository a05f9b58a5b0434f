package ostree

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/klauspost/compress/flate"
	"golang.org/x/sys/unix"
)

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// bareUserMetaXattr holds the true metadata of content objects in bare-user repositories.
const bareUserMetaXattr = "user.ostreemeta"

// ContentObject is an open content object: its header and, for regular files, a reader of its
// uncompressed content. Close it when done.
type ContentObject struct {
	Header *FileHeader
	// Size is the content's size in bytes (0 for symlinks).
	Size int64
	// Content reads exactly Size bytes; it is nil for symlinks.
	Content io.Reader
	closer  io.Closer
}

// Close releases the object.
func (o *ContentObject) Close() error {
	if o.closer != nil {
		return o.closer.Close()
	}
	return nil
}

// OpenContent opens a content object, in whatever way the repository's mode stores it.
func (r *Repo) OpenContent(c Checksum) (*ContentObject, error) {
	name := ObjectName{c, ObjectFile}
	path := r.ObjectPath(name)
	wrap := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: %s", ErrObjectNotFound, name)
		}
		return fmt.Errorf("reading %s: %w", name, err)
	}
	switch r.mode {
	case ModeBare:
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return nil, wrap(err)
		}
		xattrs, err := readXattrs(path, -1)
		if err != nil {
			return nil, wrap(err)
		}
		h := &FileHeader{UID: st.Uid, GID: st.Gid, Mode: st.Mode, Xattrs: xattrs}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if h.SymlinkTarget, err = os.Readlink(path); err != nil {
				return nil, wrap(err)
			}
			return &ContentObject{Header: h}, nil
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("%w: %s is not a regular file or symlink", ErrCorruptObject, name)
		}
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil, wrap(err)
		}
		return &ContentObject{Header: h, Size: st.Size, Content: io.LimitReader(f, st.Size), closer: f}, nil
	case ModeBareUser:
		f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return nil, wrap(err)
		}
		h, size, err := readBareUserHeader(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if h.IsSymlink() {
			defer f.Close()
			target, err := io.ReadAll(io.LimitReader(f, 4097))
			if err != nil {
				return nil, wrap(err)
			}
			if len(target) < 2 || target[len(target)-1] != 0 {
				return nil, fmt.Errorf("%w: %s: bare-user symlink content is not a NUL-terminated target", ErrCorruptObject, name)
			}
			h.SymlinkTarget = string(target[:len(target)-1])
			if err := h.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %s: %w", ErrCorruptObject, name, err)
			}
			return &ContentObject{Header: h}, nil
		}
		return &ContentObject{Header: h, Size: size, Content: io.LimitReader(f, size), closer: f}, nil
	case ModeArchive:
		f, err := os.Open(path)
		if err != nil {
			return nil, wrap(err)
		}
		obj, err := readArchiveObject(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		obj.closer = f
		return obj, nil
	}
	return nil, fmt.Errorf("unsupported repository mode %s", r.mode)
}

func readBareUserHeader(f *os.File) (*FileHeader, int64, error) {
	buf := make([]byte, 4096)
	n, err := unix.Fgetxattr(int(f.Fd()), bareUserMetaXattr, buf)
	if errors.Is(err, unix.ERANGE) {
		sz, err2 := unix.Fgetxattr(int(f.Fd()), bareUserMetaXattr, nil)
		if err2 != nil {
			return nil, 0, err2
		}
		buf = make([]byte, sz)
		n, err = unix.Fgetxattr(int(f.Fd()), bareUserMetaXattr, buf)
	}
	if err != nil {
		if errors.Is(err, unix.ENODATA) {
			return nil, 0, fmt.Errorf("%w: no %s xattr", ErrCorruptObject, bareUserMetaXattr)
		}
		return nil, 0, err
	}
	m, err := unmarshalMeta(buf[:n])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s xattr: %w", ErrCorruptObject, bareUserMetaXattr, err)
	}
	h := &FileHeader{UID: m.UID, GID: m.GID, Mode: m.Mode, Xattrs: m.Xattrs}
	if t := h.Mode & ModeTypeMask; t != ModeRegular && t != ModeSymlink {
		return nil, 0, fmt.Errorf("%w: %s xattr mode %#o is not a file or symlink", ErrCorruptObject, bareUserMetaXattr, h.Mode)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, 0, err
	}
	return h, st.Size, nil
}

// maxHeaderSize bounds a content object's header variant (libostree's limit is 10 MiB).
const maxHeaderSize = 10 << 20

// readArchiveObject parses an archive-mode .filez stream: the length-prefixed header, then the raw
// deflate payload. The returned reader fails unless the payload inflates to exactly the size the
// header declares.
func readArchiveObject(r io.Reader) (*ContentObject, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var prefix [8]byte
	if _, err := io.ReadFull(br, prefix[:]); err != nil {
		return nil, fmt.Errorf("%w: short archive header: %v", ErrCorruptObject, err)
	}
	l := binary.BigEndian.Uint32(prefix[:4])
	if l > maxHeaderSize || binary.BigEndian.Uint32(prefix[4:]) != 0 {
		return nil, fmt.Errorf("%w: bad archive header prefix %x", ErrCorruptObject, prefix)
	}
	hdr := make([]byte, l)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return nil, fmt.Errorf("%w: short archive header: %v", ErrCorruptObject, err)
	}
	h, size, err := UnmarshalArchiveHeader(hdr)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorruptObject, err)
	}
	if h.IsSymlink() {
		return &ContentObject{Header: h}, nil
	}
	if size > 1<<62 {
		return nil, fmt.Errorf("%w: archive header declares %d bytes", ErrCorruptObject, size)
	}
	return &ContentObject{Header: h, Size: int64(size), Content: &exactReader{r: flate.NewReader(br), left: int64(size)}}, nil
}

// exactReader reads exactly left bytes from r, failing if r ends early or has more.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left == 0 {
		// The stream must end here.
		var one [1]byte
		n, err := io.ReadFull(e.r, one[:])
		if n > 0 {
			return 0, fmt.Errorf("%w: content longer than declared", ErrCorruptObject)
		}
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return 0, fmt.Errorf("%w: %v", ErrCorruptObject, err)
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("%w: content shorter than declared (%d bytes missing)", ErrCorruptObject, e.left)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("%w: %v", ErrCorruptObject, err)
	}
	return n, nil
}

// readXattrs lists and reads all extended attributes of path (not following symlinks), or of fd
// when fd >= 0. Attributes with empty values are skipped, as libostree does.
func readXattrs(path string, fd int) (Xattrs, error) {
	list := func(buf []byte) (int, error) {
		if fd >= 0 {
			return unix.Flistxattr(fd, buf)
		}
		return unix.Llistxattr(path, buf)
	}
	get := func(name string, buf []byte) (int, error) {
		if fd >= 0 {
			return unix.Fgetxattr(fd, name, buf)
		}
		return unix.Lgetxattr(path, name, buf)
	}
	var names []byte
	for {
		sz, err := list(nil)
		if err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				return nil, nil
			}
			return nil, fmt.Errorf("listing xattrs: %w", err)
		}
		if sz == 0 {
			return nil, nil
		}
		names = make([]byte, sz)
		n, err := list(names)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing xattrs: %w", err)
		}
		names = names[:n]
		break
	}
	var out Xattrs
	for len(names) > 0 {
		i := 0
		for i < len(names) && names[i] != 0 {
			i++
		}
		name := string(names[:i])
		if i < len(names) {
			i++
		}
		names = names[i:]
		if name == "" {
			continue
		}
		var val []byte
		for {
			sz, err := get(name, nil)
			if err != nil {
				if errors.Is(err, unix.ENODATA) {
					break
				}
				return nil, fmt.Errorf("reading xattr %s: %w", name, err)
			}
			val = make([]byte, sz)
			n, err := get(name, val)
			if errors.Is(err, unix.ERANGE) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("reading xattr %s: %w", name, err)
			}
			val = val[:n]
			break
		}
		if len(val) > 0 {
			out = append(out, Xattr{Name: name, Value: val})
		}
	}
	return out.Canonical(), nil
}
