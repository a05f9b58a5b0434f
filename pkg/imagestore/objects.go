// Package imagestore keeps container images in an OSTree repository: it pulls
// ostree-container images (only the layers the repository lacks, each checked against its
// digest while streaming), imports their layers as objects and derived layers as merged trees,
// records each image as a commit under its image ref, and collects images no deployment uses.
// It deploys nothing: pkg/sysroot makes deployments of the commits it stores.
package imagestore

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// ErrBadLayer reports a layer that is not valid ostree-container tar content.
var ErrBadLayer = errors.New("invalid ostree-container layer")

// Limits on what a layer may declare, as ostree-ext's importer has them.
const (
	maxMetadataObject = 10 << 20
	maxXattrsBlob     = 1 << 20
)

// ImportStats counts what a layer held.
type ImportStats struct {
	MetadataObjects, ContentObjects, NewContentObjects int
	// Commits lists the commit objects the layer held.
	Commits []ostree.Checksum
	// Contents lists the content objects the layer held.
	Contents []ostree.Checksum
}

const objectsPrefix = "sysroot/ostree/repo/objects/"

// ImportObjects reads an ostree-container layer (tar format v1, and the v0 layout of older
// ostree-ext: "./" prefixes, modes with type bits, xattrs under repo/xattrs/) and writes every
// object it holds through tx, verifying that each hashes to its name. Checkout paths (the
// hardlinks beside the repository) are skipped: objects are the layer's content.
//
// The layer is untrusted: names are validated, sizes bounded, and nothing is written outside the
// transaction.
func ImportObjects(tx *ostree.Transaction, r io.Reader) (*ImportStats, error) {
	return importObjects(tx, r, nil)
}

// importObjects is ImportObjects; with a non-nil held map, commit objects are verified but kept
// in it instead of written, so that a commit is written only once every object it reaches is in
// the repository (a pull that fails halfway leaves no commit with missing objects).
func importObjects(tx *ostree.Transaction, r io.Reader, held map[ostree.Checksum][]byte) (*ImportStats, error) {
	tr := tar.NewReader(r)
	st := &ImportStats{}
	blobs := map[string]ostree.Xattrs{}   // xattrs blobs by tar path
	pending := map[string]ostree.Xattrs{} // content checksum -> xattrs from its .file-xattrs-link
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadLayer, err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		if strings.HasPrefix(name, "sysroot/ostree/repo/xattrs/") && h.Typeflag == tar.TypeReg {
			x, err := readXattrBlob(tr, h)
			if err != nil {
				return nil, err
			}
			blobs[name] = x
			continue
		}
		rest, ok := strings.CutPrefix(name, objectsPrefix)
		if !ok || h.Typeflag == tar.TypeDir {
			continue
		}
		sum, kind, err := parseObjectPath(rest)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, h.Name, err)
		}
		switch kind {
		case "file-xattrs":
			if h.Typeflag != tar.TypeReg {
				return nil, fmt.Errorf("%w: %s is not a regular file", ErrBadLayer, h.Name)
			}
			x, err := readXattrBlob(tr, h)
			if err != nil {
				return nil, err
			}
			blobs[name] = x
		case "file-xattrs-link", "file.xattrs":
			var x ostree.Xattrs
			switch h.Typeflag {
			case tar.TypeLink:
				target := strings.TrimPrefix(h.Linkname, "./")
				bx, ok := blobs[target]
				if !ok {
					return nil, fmt.Errorf("%w: %s links to %s, which the layer did not hold before it", ErrBadLayer, h.Name, h.Linkname)
				}
				x = bx
			case tar.TypeReg: // a copy, when the hardlink limit was reached
				if x, err = readXattrBlob(tr, h); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("%w: %s has entry type %q", ErrBadLayer, h.Name, h.Typeflag)
			}
			pending[sum.String()] = x
		case "file":
			x, ok := pending[sum.String()]
			if !ok {
				// Without an xattrs link (format v0 files without xattrs), the PAX records speak.
				x = paxXattrs(h)
			}
			delete(pending, sum.String())
			isNew, err := importContent(tx, h, tr, sum, x)
			if err != nil {
				return nil, err
			}
			st.ContentObjects++
			st.Contents = append(st.Contents, sum)
			if isNew {
				st.NewContentObjects++
			}
		case "commit", "dirtree", "dirmeta":
			data, err := readSmall(tr, h, maxMetadataObject)
			if err != nil {
				return nil, err
			}
			t := objectKinds[kind]
			if err := validateMetadata(t, data); err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, h.Name, err)
			}
			var got ostree.Checksum
			if t == ostree.ObjectCommit && held != nil {
				got = sha256.Sum256(data)
				if got == sum {
					held[sum] = data
				}
			} else if got, err = tx.WriteMetadata(t, data); err != nil {
				return nil, err
			}
			if got != sum {
				return nil, fmt.Errorf("%w: %s hashes to %s", ErrBadLayer, h.Name, got)
			}
			st.MetadataObjects++
			if t == ostree.ObjectCommit {
				st.Commits = append(st.Commits, sum)
			}
		case "commitmeta":
			data, err := readSmall(tr, h, maxMetadataObject)
			if err != nil {
				return nil, err
			}
			m, err := ostree.UnmarshalMetadata(data)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, h.Name, err)
			}
			if err := tx.WriteCommitMeta(sum, m); err != nil {
				return nil, err
			}
			st.MetadataObjects++
		default:
			return nil, fmt.Errorf("%w: %s: unknown object type %q", ErrBadLayer, h.Name, kind)
		}
	}
}

func validateMetadata(t ostree.ObjectType, data []byte) error {
	var err error
	switch t {
	case ostree.ObjectCommit:
		_, err = ostree.UnmarshalCommit(data)
	case ostree.ObjectDirTree:
		_, err = ostree.UnmarshalDirTree(data)
	case ostree.ObjectDirMeta:
		_, err = ostree.UnmarshalDirMeta(data)
	}
	return err
}

// objectKinds maps the type suffixes of object paths to the object types they store whole.
var objectKinds = map[string]ostree.ObjectType{"file": ostree.ObjectFile, "commit": ostree.ObjectCommit, "dirtree": ostree.ObjectDirTree, "dirmeta": ostree.ObjectDirMeta}

// parseObjectPath splits "XX/REST.TYPE" into the checksum and the type suffix.
func parseObjectPath(rest string) (ostree.Checksum, string, error) {
	dir, file, ok := strings.Cut(rest, "/")
	if !ok || len(dir) != 2 || strings.Contains(file, "/") {
		return ostree.Checksum{}, "", fmt.Errorf("not an object path")
	}
	base, kind, ok := strings.Cut(file, ".")
	if !ok {
		return ostree.Checksum{}, "", fmt.Errorf("object path without a type")
	}
	sum, err := ostree.ParseChecksum(dir + base)
	return sum, kind, err
}

func readSmall(tr io.Reader, h *tar.Header, limit int64) ([]byte, error) {
	if h.Typeflag != tar.TypeReg || h.Size < 0 || h.Size > limit {
		return nil, fmt.Errorf("%w: %s: a regular file of at most %d bytes was expected", ErrBadLayer, h.Name, limit)
	}
	data := make([]byte, h.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, h.Name, err)
	}
	return data, nil
}

func readXattrBlob(tr io.Reader, h *tar.Header) (ostree.Xattrs, error) {
	data, err := readSmall(tr, h, maxXattrsBlob)
	if err != nil {
		return nil, err
	}
	// Format v1 names blobs by their hash; v0 did too, under repo/xattrs/.
	sum := sha256.Sum256(data)
	base := h.Name[strings.LastIndexByte(h.Name, '/')+1:]
	base, _, _ = strings.Cut(base, ".")
	dir := h.Name[:strings.LastIndexByte(h.Name, '/')]
	if want := hex.EncodeToString(sum[:]); base != want && dir[len(dir)-2:]+base != want {
		return nil, fmt.Errorf("%w: xattrs blob %s hashes to %s", ErrBadLayer, h.Name, want)
	}
	x, err := ostree.UnmarshalXattrs(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadLayer, h.Name, err)
	}
	return x, nil
}

func paxXattrs(h *tar.Header) ostree.Xattrs {
	var x ostree.Xattrs
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			x = append(x, ostree.Xattr{Name: name, Value: []byte(v)})
		}
	}
	return x.Canonical()
}

func importContent(tx *ostree.Transaction, h *tar.Header, r io.Reader, want ostree.Checksum, x ostree.Xattrs) (bool, error) {
	hdr := &ostree.FileHeader{UID: uint32(h.Uid), GID: uint32(h.Gid), Mode: uint32(h.Mode) & 0o7777, Xattrs: x}
	var size int64
	switch h.Typeflag {
	case tar.TypeReg:
		hdr.Mode |= ostree.ModeRegular
		size = h.Size
	case tar.TypeSymlink:
		hdr.Mode |= ostree.ModeSymlink
		hdr.SymlinkTarget = h.Linkname
		r = nil
	default:
		return false, fmt.Errorf("%w: %s: content objects are regular files or symlinks, not type %q", ErrBadLayer, h.Name, h.Typeflag)
	}
	if h.Uid < 0 || h.Gid < 0 || int64(h.Uid) > 1<<32-1 || int64(h.Gid) > 1<<32-1 {
		return false, fmt.Errorf("%w: %s: owner %d:%d out of range", ErrBadLayer, h.Name, h.Uid, h.Gid)
	}
	if ok, err := tx.Has(ostree.ObjectName{Checksum: want, Type: ostree.ObjectFile}); err != nil {
		return false, err
	} else if ok {
		return false, nil // the reader skips the content
	}
	got, err := tx.WriteContent(hdr, r, size)
	if err != nil {
		if diskFailure(err) {
			// The repository's filesystem failed, not the layer: say so (a full disk is not
			// an invalid layer).
			return false, fmt.Errorf("storing %s in the repository: %w (free space, or fix the filesystem, and pull again: what was stored is kept)", h.Name, err)
		}
		return false, fmt.Errorf("%w: %s: %w", ErrBadLayer, h.Name, err)
	}
	if got != want {
		return false, fmt.Errorf("%w: %s: content hashes to %s", ErrBadLayer, h.Name, got)
	}
	return true, nil
}
