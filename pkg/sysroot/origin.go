package sysroot

import (
	"fmt"

	"github.com/bootc-go/bootc/internal/keyfile"
)

// Origin groups and keys this package knows (spec §2.4).
const (
	originGroup             = "origin"
	originContainerImageRef = "container-image-reference"
	transientGroup          = "libostree-transient"
	pinnedKey               = "pinned"
)

// Origin is a deployment's origin keyfile (spec §2.4): groups of key=value lines, kept in
// order so that what we do not know survives a rewrite.
//
// The syntax is GLib's GKeyFile (internal/keyfile): comments (#) and blank lines are kept where
// they are, values are unescaped on Get (\s \n \t \r \\) and escaped on Set. The read methods
// accept a nil *Origin (a deployment without an .origin file) and find nothing in it.
type Origin struct {
	kf *keyfile.File
}

// NewContainerOrigin returns an origin with [origin] container-image-reference=ref.
func NewContainerOrigin(ref string) *Origin {
	o := &Origin{kf: &keyfile.File{}}
	o.Set(originGroup, originContainerImageRef, ref)
	return o
}

// ParseOrigin parses an origin keyfile. A key=value line outside a group, a line that is
// neither, or a group header that does not close is an error, as GKeyFile has it.
func ParseOrigin(data []byte) (*Origin, error) {
	kf, err := keyfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	return &Origin{kf: kf}, nil
}

func (o *Origin) file() *keyfile.File {
	if o == nil {
		return nil
	}
	return o.kf
}

// Get returns group.key.
func (o *Origin) Get(group, key string) (string, bool) { return o.file().Get(group, key) }

// Set sets group.key (adding the group if needed).
func (o *Origin) Set(group, key, value string) {
	if o.kf == nil {
		o.kf = &keyfile.File{}
	}
	o.kf.Set(group, key, value)
}

// Remove deletes group.key. A group left empty is removed too.
func (o *Origin) Remove(group, key string) { o.file().Remove(group, key) }

// HasGroup reports whether group exists (bootc treats rpm-ostree groups as incompatible).
func (o *Origin) HasGroup(group string) bool { return o.file().HasGroup(group) }

// ContainerImageReference returns [origin] container-image-reference.
func (o *Origin) ContainerImageReference() (string, bool) {
	return o.Get(originGroup, originContainerImageRef)
}

// Marshal writes the keyfile as g_key_file_to_data does: each group as "[name]" and its lines,
// groups separated by at least one blank line.
func (o *Origin) Marshal() []byte { return o.file().Canonical() }

// clone returns a deep copy.
func (o *Origin) clone() *Origin {
	if o == nil {
		return nil
	}
	return &Origin{kf: o.kf.Clone()}
}
