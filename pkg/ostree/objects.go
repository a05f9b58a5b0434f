package ostree

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math/bits"
	"sort"
	"strings"

	"github.com/bootc-go/bootc/pkg/gvariant"
)

// File type bits of st_mode, as OSTree stores them.
const (
	ModeTypeMask uint32 = 0o170000
	ModeDir      uint32 = 0o040000
	ModeRegular  uint32 = 0o100000
	ModeSymlink  uint32 = 0o120000
)

// GVariant types of the OSTree objects (libostree ostree-core.h).
var (
	typeCommit       = gvariant.MustParseType("(a{sv}aya(say)sstayay)")
	typeDirTree      = gvariant.MustParseType("(a(say)a(sayay))")
	typeDirMeta      = gvariant.MustParseType("(uuua(ayay))")
	typeFileHeader   = gvariant.MustParseType("(uuuusa(ayay))")
	typeArchiveHdr   = gvariant.MustParseType("(tuuuusa(ayay))")
	typeXattrs       = gvariant.MustParseType("a(ayay)")
	typeMetadata     = gvariant.MustParseType("a{sv}")
	typeStringArray  = gvariant.MustParseType("as")
	typeString       = gvariant.MustParseType("s")
	typeBool         = gvariant.MustParseType("b")
	typeByteString   = gvariant.MustParseType("ay")
	typeByteStrArray = gvariant.MustParseType("aay")
)

// ErrInvalidObject reports an object whose bytes do not form a valid object of its type.
var ErrInvalidObject = errors.New("invalid object")

func invalid(t ObjectType, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidObject, t, fmt.Sprintf(format, args...))
}

// be32 swaps a value so that GVariant's little-endian serialization stores it big-endian, as
// OSTree does for its own numeric fields.
func be32(v uint32) uint32 { return bits.ReverseBytes32(v) }
func be64(v uint64) uint64 { return bits.ReverseBytes64(v) }

// Xattr is one extended attribute. Name does not include the NUL terminator that OSTree stores.
type Xattr struct {
	Name  string
	Value []byte
}

// Xattrs is a list of extended attributes.
type Xattrs []Xattr

// Canonical returns the attributes sorted by name in byte order, as OSTree checksums them.
func (x Xattrs) Canonical() Xattrs {
	if sort.SliceIsSorted(x, func(i, j int) bool { return x[i].Name < x[j].Name }) {
		return x
	}
	c := append(Xattrs(nil), x...)
	sort.SliceStable(c, func(i, j int) bool { return c[i].Name < c[j].Name })
	return c
}

// Get returns the value of the named attribute.
func (x Xattrs) Get(name string) ([]byte, bool) {
	for _, a := range x {
		if a.Name == name {
			return a.Value, true
		}
	}
	return nil, false
}

func (x Xattrs) gvariant() []any {
	x = x.Canonical()
	out := make([]any, len(x))
	for i, a := range x {
		name := make([]byte, len(a.Name)+1)
		copy(name, a.Name)
		out[i] = []any{name, a.Value}
	}
	return out
}

// MarshalXattrs serializes attributes as the canonical a(ayay) OSTree uses.
func MarshalXattrs(x Xattrs) []byte {
	b, err := gvariant.Marshal(typeXattrs, x.gvariant())
	if err != nil {
		panic(err) // every Xattrs value is encodable
	}
	return b
}

// UnmarshalXattrs parses a serialized a(ayay).
func UnmarshalXattrs(data []byte) (Xattrs, error) {
	v, err := gvariant.Unmarshal(typeXattrs, data)
	if err != nil {
		return nil, err
	}
	return xattrsFromGVariant(v.([]any))
}

func xattrsFromGVariant(v []any) (Xattrs, error) {
	if len(v) == 0 {
		return nil, nil
	}
	out := make(Xattrs, len(v))
	for i, e := range v {
		m := e.([]any)
		name := m[0].([]byte)
		if len(name) < 2 || name[len(name)-1] != 0 || bytes.IndexByte(name[:len(name)-1], 0) >= 0 {
			return nil, fmt.Errorf("%w: xattr name %q is not a NUL-terminated non-empty string", ErrInvalidObject, name)
		}
		out[i] = Xattr{Name: string(name[:len(name)-1]), Value: m[1].([]byte)}
		if i > 0 && out[i-1].Name >= out[i].Name {
			return nil, fmt.Errorf("%w: xattrs not sorted or duplicated at %q", ErrInvalidObject, out[i].Name)
		}
	}
	return out, nil
}

// DirMeta is the metadata of a directory: a .dirmeta object, and also the layout of the bare-user
// "user.ostreemeta" attribute of content objects.
type DirMeta struct {
	UID, GID, Mode uint32
	Xattrs         Xattrs
}

// DefaultDirMeta is root-owned 0755 with no attributes; its checksum is
// 446a0ef11b7cc167f3b603e585c7eeeeb675faa412d5ec73f62988eb0b6c5488.
var DefaultDirMeta = DirMeta{Mode: ModeDir | 0o755}

// Marshal serializes the dirmeta in normal form.
func (m *DirMeta) Marshal() []byte {
	b, err := gvariant.Marshal(typeDirMeta, []any{be32(m.UID), be32(m.GID), be32(m.Mode), m.Xattrs.gvariant()})
	if err != nil {
		panic(err)
	}
	return b
}

// Checksum returns the object name of the dirmeta.
func (m *DirMeta) Checksum() Checksum { return sha256.Sum256(m.Marshal()) }

// UnmarshalDirMeta parses and validates a .dirmeta object.
func UnmarshalDirMeta(data []byte) (*DirMeta, error) {
	m, err := unmarshalMeta(data)
	if err != nil {
		return nil, err
	}
	if m.Mode&ModeTypeMask != ModeDir {
		return nil, invalid(ObjectDirMeta, "mode %#o is not a directory", m.Mode)
	}
	return m, nil
}

func unmarshalMeta(data []byte) (*DirMeta, error) {
	v, err := gvariant.Unmarshal(typeDirMeta, data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidObject, err)
	}
	f := v.([]any)
	x, err := xattrsFromGVariant(f[3].([]any))
	if err != nil {
		return nil, err
	}
	return &DirMeta{UID: be32(f[0].(uint32)), GID: be32(f[1].(uint32)), Mode: be32(f[2].(uint32)), Xattrs: x}, nil
}

// FileHeader is the metadata of a content object (regular file or symlink).
type FileHeader struct {
	UID, GID, Mode uint32
	// SymlinkTarget is the target of a symlink; empty for regular files.
	SymlinkTarget string
	Xattrs        Xattrs
}

// IsSymlink reports whether the header describes a symlink.
func (h *FileHeader) IsSymlink() bool { return h.Mode&ModeTypeMask == ModeSymlink }

// Validate checks that the header describes a storable content object.
func (h *FileHeader) Validate() error {
	switch h.Mode & ModeTypeMask {
	case ModeRegular:
		if h.SymlinkTarget != "" {
			return invalid(ObjectFile, "regular file with a symlink target")
		}
	case ModeSymlink:
		if h.SymlinkTarget == "" || len(h.SymlinkTarget) >= 4096 || strings.IndexByte(h.SymlinkTarget, 0) >= 0 {
			return invalid(ObjectFile, "invalid symlink target %q", h.SymlinkTarget)
		}
	default:
		return invalid(ObjectFile, "unsupported file type (mode %#o): only regular files and symlinks are content", h.Mode)
	}
	return nil
}

// Marshal serializes the header variant (uuuusa(ayay)) used for content checksums.
func (h *FileHeader) Marshal() []byte {
	b, err := gvariant.Marshal(typeFileHeader, []any{be32(h.UID), be32(h.GID), be32(h.Mode), uint32(0), h.SymlinkTarget, h.Xattrs.gvariant()})
	if err != nil {
		panic(err) // only a target that is not valid UTF-8 fails; Validate-d headers never
	}
	return b
}

// MarshalArchive serializes the archive-mode header (tuuuusa(ayay)) with the given content size.
func (h *FileHeader) MarshalArchive(size uint64) []byte {
	b, err := gvariant.Marshal(typeArchiveHdr, []any{be64(size), be32(h.UID), be32(h.GID), be32(h.Mode), uint32(0), h.SymlinkTarget, h.Xattrs.gvariant()})
	if err != nil {
		panic(err)
	}
	return b
}

// Meta returns the (uuua(ayay)) form of the header, as stored in bare-user "user.ostreemeta".
func (h *FileHeader) Meta() *DirMeta {
	return &DirMeta{UID: h.UID, GID: h.GID, Mode: h.Mode, Xattrs: h.Xattrs}
}

// lenPrefixed frames a header variant as OSTree's content stream does: a big-endian u32 length,
// four zero bytes, then the variant.
func lenPrefixed(v []byte) []byte {
	out := make([]byte, 8, 8+len(v))
	binary.BigEndian.PutUint32(out, uint32(len(v)))
	return append(out, v...)
}

// NewContentHash returns a SHA-256 hash already fed with the header's checksum prefix. Writing the
// file's content to it (nothing, for a symlink) gives the content object's checksum.
func NewContentHash(h *FileHeader) hash.Hash {
	d := sha256.New()
	d.Write(lenPrefixed(h.Marshal()))
	return d
}

// ContentChecksum computes a content object's checksum from its header and full content.
func ContentChecksum(h *FileHeader, content []byte) Checksum {
	d := NewContentHash(h)
	d.Write(content)
	var c Checksum
	d.Sum(c[:0])
	return c
}

func parseFileHeaderFields(t ObjectType, f []any) (*FileHeader, error) {
	if rdev := f[3].(uint32); rdev != 0 {
		return nil, invalid(t, "non-zero rdev")
	}
	x, err := xattrsFromGVariant(f[5].([]any))
	if err != nil {
		return nil, err
	}
	h := &FileHeader{UID: be32(f[0].(uint32)), GID: be32(f[1].(uint32)), Mode: be32(f[2].(uint32)), SymlinkTarget: f[4].(string), Xattrs: x}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	return h, nil
}

// UnmarshalFileHeader parses a (uuuusa(ayay)) header variant.
func UnmarshalFileHeader(data []byte) (*FileHeader, error) {
	v, err := gvariant.Unmarshal(typeFileHeader, data)
	if err != nil {
		return nil, fmt.Errorf("%w: file header: %w", ErrInvalidObject, err)
	}
	return parseFileHeaderFields(ObjectFile, v.([]any))
}

// UnmarshalArchiveHeader parses a (tuuuusa(ayay)) archive header variant, returning the header
// and the uncompressed content size.
func UnmarshalArchiveHeader(data []byte) (*FileHeader, uint64, error) {
	v, err := gvariant.Unmarshal(typeArchiveHdr, data)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: archive file header: %w", ErrInvalidObject, err)
	}
	f := v.([]any)
	h, err := parseFileHeaderFields(ObjectFile, f[1:])
	if err != nil {
		return nil, 0, err
	}
	return h, be64(f[0].(uint64)), nil
}

// ValidateFilename reports whether name may appear in a dirtree.
func ValidateFilename(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty file name", ErrInvalidObject)
	case name == "." || name == "..":
		return fmt.Errorf("%w: invalid file name %q", ErrInvalidObject, name)
	case strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("%w: file name %q contains '/' or NUL", ErrInvalidObject, name)
	}
	return nil
}

// TreeFile is a file entry of a dirtree.
type TreeFile struct {
	Name     string
	Checksum Checksum
}

// TreeDir is a subdirectory entry of a dirtree.
type TreeDir struct {
	Name string
	Tree Checksum
	Meta Checksum
}

// DirTree is the content of a directory: files and subdirectories, each sorted by name.
type DirTree struct {
	Files []TreeFile
	Dirs  []TreeDir
}

// EmptyDirTreeChecksum names the dirtree with no entries (the single byte 0x00).
var EmptyDirTreeChecksum = Checksum(sha256.Sum256([]byte{0}))

// Marshal serializes the dirtree in normal form, sorting the entries by name.
func (t *DirTree) Marshal() []byte {
	sort.Slice(t.Files, func(i, j int) bool { return t.Files[i].Name < t.Files[j].Name })
	sort.Slice(t.Dirs, func(i, j int) bool { return t.Dirs[i].Name < t.Dirs[j].Name })
	files := make([]any, len(t.Files))
	for i, f := range t.Files {
		files[i] = []any{f.Name, f.Checksum[:]}
	}
	dirs := make([]any, len(t.Dirs))
	for i, d := range t.Dirs {
		dirs[i] = []any{d.Name, d.Tree[:], d.Meta[:]}
	}
	b, err := gvariant.Marshal(typeDirTree, []any{files, dirs})
	if err != nil {
		panic(err) // names that are not valid UTF-8 cannot be stored; callers validate first
	}
	return b
}

// UnmarshalDirTree parses and validates a .dirtree object: names must be valid, and each array
// strictly sorted, and no name may be both a file and a directory.
func UnmarshalDirTree(data []byte) (*DirTree, error) {
	v, err := gvariant.Unmarshal(typeDirTree, data)
	if err != nil {
		return nil, fmt.Errorf("%w: dirtree: %w", ErrInvalidObject, err)
	}
	f := v.([]any)
	t := &DirTree{}
	for i, e := range f[0].([]any) {
		m := e.([]any)
		name := m[0].(string)
		if err := ValidateFilename(name); err != nil {
			return nil, err
		}
		c, err := checksumFromBytes(m[1].([]byte))
		if err != nil {
			return nil, invalid(ObjectDirTree, "file %q: %v", name, err)
		}
		if i > 0 && t.Files[i-1].Name >= name {
			return nil, invalid(ObjectDirTree, "files not sorted or duplicated at %q", name)
		}
		t.Files = append(t.Files, TreeFile{Name: name, Checksum: c})
	}
	for i, e := range f[1].([]any) {
		m := e.([]any)
		name := m[0].(string)
		if err := ValidateFilename(name); err != nil {
			return nil, err
		}
		tc, err := checksumFromBytes(m[1].([]byte))
		if err != nil {
			return nil, invalid(ObjectDirTree, "dir %q: %v", name, err)
		}
		mc, err := checksumFromBytes(m[2].([]byte))
		if err != nil {
			return nil, invalid(ObjectDirTree, "dir %q: %v", name, err)
		}
		if i > 0 && t.Dirs[i-1].Name >= name {
			return nil, invalid(ObjectDirTree, "dirs not sorted or duplicated at %q", name)
		}
		t.Dirs = append(t.Dirs, TreeDir{Name: name, Tree: tc, Meta: mc})
	}
	// Both arrays are sorted: a merge finds a name that is both a file and a directory.
	for i, j := 0, 0; i < len(t.Files) && j < len(t.Dirs); {
		switch a, b := t.Files[i].Name, t.Dirs[j].Name; {
		case a == b:
			return nil, invalid(ObjectDirTree, "%q is both a file and a directory", a)
		case a < b:
			i++
		default:
			j++
		}
	}
	return t, nil
}

// MetadataEntry is one key of a commit's a{sv} metadata.
type MetadataEntry struct {
	Key   string
	Value gvariant.Variant
}

// Metadata is a commit's metadata in the order it is serialized (OSTree does not sort it).
type Metadata []MetadataEntry

// Lookup returns the value of key.
func (m Metadata) Lookup(key string) (gvariant.Variant, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	return gvariant.Variant{}, false
}

// String returns the value of a string-typed key.
func (m Metadata) String(key string) (string, bool) {
	v, ok := m.Lookup(key)
	if !ok || v.Type.String() != "s" {
		return "", false
	}
	return v.Value.(string), true
}

// Set replaces key's value, or appends it.
func (m *Metadata) Set(key string, v gvariant.Variant) {
	for i, e := range *m {
		if e.Key == key {
			(*m)[i].Value = v
			return
		}
	}
	*m = append(*m, MetadataEntry{Key: key, Value: v})
}

// StringValue wraps s as a variant of type "s".
func StringValue(s string) gvariant.Variant { return gvariant.Variant{Type: typeString, Value: s} }

// BoolValue wraps b as a variant of type "b".
func BoolValue(b bool) gvariant.Variant { return gvariant.Variant{Type: typeBool, Value: b} }

// StringArrayValue wraps ss as a variant of type "as".
func StringArrayValue(ss []string) gvariant.Variant {
	v := make([]any, len(ss))
	for i, s := range ss {
		v[i] = s
	}
	return gvariant.Variant{Type: typeStringArray, Value: v}
}

func (m Metadata) gvariant() []any {
	out := make([]any, len(m))
	for i, e := range m {
		out[i] = []any{e.Key, e.Value}
	}
	return out
}

// MarshalMetadata serializes an a{sv} (commit metadata, or a detached .commitmeta object).
func MarshalMetadata(m Metadata) ([]byte, error) {
	return gvariant.Marshal(typeMetadata, m.gvariant())
}

// UnmarshalMetadata parses an a{sv}.
func UnmarshalMetadata(data []byte) (Metadata, error) {
	v, err := gvariant.Unmarshal(typeMetadata, data)
	if err != nil {
		return nil, fmt.Errorf("%w: metadata: %w", ErrInvalidObject, err)
	}
	return metadataFromGVariant(v.([]any)), nil
}

func metadataFromGVariant(v []any) Metadata {
	m := make(Metadata, len(v))
	for i, e := range v {
		f := e.([]any)
		m[i] = MetadataEntry{Key: f[0].(string), Value: f[1].(gvariant.Variant)}
	}
	return m
}

// Related is an entry of a commit's (unused, always empty when written by OSTree) related list.
type Related struct {
	Name     string
	Checksum Checksum
}

// Commit is a .commit object.
type Commit struct {
	Metadata Metadata
	// Parent is the parent commit; zero for none.
	Parent    Checksum
	Related   []Related
	Subject   string
	Body      string
	Timestamp uint64 // seconds since the epoch, UTC
	RootTree  Checksum
	RootMeta  Checksum
}

// Marshal serializes the commit in normal form.
func (c *Commit) Marshal() ([]byte, error) {
	var parent []byte
	if !c.Parent.IsZero() {
		parent = c.Parent[:]
	}
	related := make([]any, len(c.Related))
	for i, r := range c.Related {
		related[i] = []any{r.Name, r.Checksum[:]}
	}
	return gvariant.Marshal(typeCommit, []any{c.Metadata.gvariant(), parent, related, c.Subject, c.Body, be64(c.Timestamp), c.RootTree[:], c.RootMeta[:]})
}

// UnmarshalCommit parses and validates a .commit object.
func UnmarshalCommit(data []byte) (*Commit, error) {
	v, err := gvariant.Unmarshal(typeCommit, data)
	if err != nil {
		return nil, fmt.Errorf("%w: commit: %w", ErrInvalidObject, err)
	}
	f := v.([]any)
	c := &Commit{Metadata: metadataFromGVariant(f[0].([]any)), Subject: f[3].(string), Body: f[4].(string), Timestamp: be64(f[5].(uint64))}
	if p := f[1].([]byte); len(p) != 0 {
		if c.Parent, err = checksumFromBytes(p); err != nil {
			return nil, invalid(ObjectCommit, "parent: %v", err)
		}
	}
	for _, e := range f[2].([]any) {
		r := e.([]any)
		rc, err := checksumFromBytes(r[1].([]byte))
		if err != nil {
			return nil, invalid(ObjectCommit, "related %q: %v", r[0], err)
		}
		c.Related = append(c.Related, Related{Name: r[0].(string), Checksum: rc})
	}
	if c.RootTree, err = checksumFromBytes(f[6].([]byte)); err != nil {
		return nil, invalid(ObjectCommit, "root dirtree: %v", err)
	}
	if c.RootMeta, err = checksumFromBytes(f[7].([]byte)); err != nil {
		return nil, invalid(ObjectCommit, "root dirmeta: %v", err)
	}
	return c, nil
}

// ContentChecksum is libostree's "content checksum" of a commit: the SHA-256 of its root dirtree
// and root dirmeta checksums (raw bytes), which is the same for two commits of the same tree.
func (c *Commit) ContentChecksum() Checksum {
	return sha256.Sum256(append(append([]byte(nil), c.RootTree[:]...), c.RootMeta[:]...))
}
