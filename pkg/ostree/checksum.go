package ostree

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Checksum is a SHA-256 object name.
type Checksum [32]byte

// ErrInvalidChecksum reports a string that is not 64 lowercase hex digits.
var ErrInvalidChecksum = errors.New("invalid checksum")

// String returns the 64 lowercase hex digits.
func (c Checksum) String() string { return hex.EncodeToString(c[:]) }

// IsZero reports whether c is all zeros (used for "no checksum").
func (c Checksum) IsZero() bool { return c == Checksum{} }

// ParseChecksum parses 64 lowercase hex digits.
func ParseChecksum(s string) (Checksum, error) {
	var c Checksum
	if len(s) != 64 {
		return c, fmt.Errorf("%w: %q has %d characters, want 64", ErrInvalidChecksum, s, len(s))
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return c, fmt.Errorf("%w: %q", ErrInvalidChecksum, s)
		}
	}
	_, err := hex.Decode(c[:], []byte(s))
	return c, err
}

func checksumFromBytes(b []byte) (Checksum, error) {
	var c Checksum
	if len(b) != len(c) {
		return c, fmt.Errorf("%w: %d bytes, want 32", ErrInvalidChecksum, len(b))
	}
	copy(c[:], b)
	return c, nil
}

// ObjectType is an OSTree object type, numbered as in libostree's OstreeObjectType.
type ObjectType int

// The object types.
const (
	ObjectFile            ObjectType = 1
	ObjectDirTree         ObjectType = 2
	ObjectDirMeta         ObjectType = 3
	ObjectCommit          ObjectType = 4
	ObjectTombstoneCommit ObjectType = 5
	ObjectCommitMeta      ObjectType = 6
	ObjectPayloadLink     ObjectType = 7
	ObjectFileXattrs      ObjectType = 8
	ObjectFileXattrsLink  ObjectType = 9
)

var objectSuffixes = map[ObjectType]string{
	ObjectFile:            "file",
	ObjectDirTree:         "dirtree",
	ObjectDirMeta:         "dirmeta",
	ObjectCommit:          "commit",
	ObjectTombstoneCommit: "tombstone-commit",
	ObjectCommitMeta:      "commitmeta",
	ObjectPayloadLink:     "payload-link",
	ObjectFileXattrs:      "file-xattrs",
	ObjectFileXattrsLink:  "file-xattrs-link",
}

// String returns the loose-object suffix ("file", "dirtree", …).
func (t ObjectType) String() string {
	if s, ok := objectSuffixes[t]; ok {
		return s
	}
	return fmt.Sprintf("objtype(%d)", int(t))
}

// IsMeta reports whether objects of this type are metadata (GVariant) objects.
func (t ObjectType) IsMeta() bool { return t >= ObjectDirTree && t <= ObjectCommitMeta }

// ObjectName is an object's checksum with its type, printed as "CHECKSUM.TYPE".
type ObjectName struct {
	Checksum Checksum
	Type     ObjectType
}

func (n ObjectName) String() string { return n.Checksum.String() + "." + n.Type.String() }
