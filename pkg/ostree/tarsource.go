package ostree

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"path"
	"strings"
)

// TarSource reads a tar stream (a container image layer, say) as commit entries: directories,
// regular files, symlinks and hardlinks, with owners, modes and SCHILY.xattr PAX records. Whiteout
// files (".wh.NAME") pass through as ordinary empty files, for MutableTree.Overlay (or Checkout's
// WithWhiteouts) to act on.
type TarSource struct {
	tr *tar.Reader
	// SkipSpecial drops device nodes and FIFOs instead of failing on them (container layers
	// sometimes carry /dev nodes that a runtime would create anyway).
	SkipSpecial bool
	// Filter, if set, sees each cleaned path (no leading "/", "" for the root) and returns the
	// path to use, or "" with false to drop the entry.
	Filter func(p string, typ byte) (string, bool)
}

// NewTarSource returns a TarSource reading r.
func NewTarSource(r io.Reader) *TarSource { return &TarSource{tr: tar.NewReader(r)} }

// Next returns the next entry, or io.EOF.
func (s *TarSource) Next(ctx context.Context) (*Entry, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := s.tr.Next()
		if err != nil {
			if err == io.EOF {
				return nil, io.EOF
			}
			return nil, fmt.Errorf("reading tar: %w", err)
		}
		p, err := cleanTarPath(h.Name)
		if err != nil {
			return nil, err
		}
		if s.Filter != nil {
			var keep bool
			if p, keep = s.Filter(p, h.Typeflag); !keep {
				continue
			}
		}
		if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 1<<32-1 || int64(h.Gid) > 1<<32-1 {
			return nil, fmt.Errorf("%s: owner %d:%d out of range", h.Name, h.Uid, h.Gid)
		}
		e := &Entry{Path: p, UID: uint32(h.Uid), GID: uint32(h.Gid), Mode: uint32(h.Mode) & 0o7777}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok && v != "" {
				e.Xattrs = append(e.Xattrs, Xattr{Name: name, Value: []byte(v)})
			}
		}
		e.Xattrs = e.Xattrs.Canonical()
		switch h.Typeflag {
		case tar.TypeDir:
			e.Type = EntryDir
		case tar.TypeReg, tar.TypeRegA:
			e.Type, e.Size, e.Content = EntryRegular, h.Size, s.tr
		case tar.TypeSymlink:
			e.Type, e.Linkname = EntrySymlink, h.Linkname
		case tar.TypeLink:
			target, err := cleanTarPath(h.Linkname)
			if err != nil {
				return nil, err
			}
			if s.Filter != nil {
				var keep bool
				if target, keep = s.Filter(target, tar.TypeReg); !keep {
					return nil, fmt.Errorf("%s: hardlink to %s, which is filtered out", h.Name, h.Linkname)
				}
			}
			e.Type, e.Linkname = EntryHardlink, target
		case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
			if s.SkipSpecial {
				continue
			}
			return nil, fmt.Errorf("%s: device nodes and FIFOs cannot be stored in OSTree", h.Name)
		case tar.TypeXGlobalHeader:
			continue
		default:
			return nil, fmt.Errorf("%s: unsupported tar entry type %q", h.Name, h.Typeflag)
		}
		return e, nil
	}
}

// cleanTarPath makes a tar member name relative and clean, refusing ".." components.
func cleanTarPath(name string) (string, error) {
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("tar member %q: '..' is not allowed in paths", name)
		}
	}
	p := strings.TrimPrefix(path.Clean("/"+name), "/")
	return p, nil
}
