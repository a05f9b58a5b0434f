// Package ostreecontainer holds the names and rules of the ostree-container image format
// (spec §3): the labels and annotations an encapsulated image carries, the commit metadata keys
// of a bootable commit and of an imported image, the refs under which a repository keeps pulled
// images and layers, and which layers of an image are what. The builder (pkg/encapsulate) writes
// what this package names and the image store (pkg/imagestore) reads it; neither spells a name
// of the format itself.
//
// The data path, end to end:
//
//	rootfs -> commit (pkg/encapsulate/bootable, pkg/ostree)
//	       -> image (pkg/encapsulate: layer 0 the commit, then one layer per chunk)
//	       -> registry, oci dir, archive or podman storage (pkg/transport)
//	       -> image store (pkg/imagestore: refs ImageRefPrefix..., LayerRefPrefix...)
//	       -> deployment and boot entries (pkg/sysroot, driven by pkg/host)
package ostreecontainer

import (
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// Labels of an encapsulated image's config (also set as manifest annotations).
const (
	// LabelCommit is the checksum of the commit in layer 0.
	LabelCommit = "ostree.commit"
	// LabelFinalDiffID is the diff ID of the last chunk layer: layers after it are derived.
	LabelFinalDiffID = "ostree.final-diffid"
	// LabelBootable ("true") marks an image with a kernel, as ostree.bootable does a commit.
	LabelBootable = "ostree.bootable"
	// LabelBootc ("1") marks an image as bootable by bootc.
	LabelBootc = "containers.bootc"
	// LabelLinux is the kernel version, from the commit's ostree.linux.
	LabelLinux = "ostree.linux"
	// LabelVersion is the OS version (the commit's "version" metadata).
	LabelVersion = "org.opencontainers.image.version"
	// LabelCreated is the image's creation time (RFC 3339).
	LabelCreated = "org.opencontainers.image.created"
)

// AnnotationComponents lists, on each chunk layer, the components it holds, comma-separated.
const AnnotationComponents = "ostree.components"

// Commit metadata keys of a bootable commit (spec §2.1).
const (
	KeyBootable     = "ostree.bootable"
	KeyLinux        = "ostree.linux"
	KeyContainerCmd = "ostree.container-cmd"
	KeyVersion      = "version"
)

// Commit metadata keys of a pulled image's merged commit (spec §3.4).
const (
	MetaManifestDigest  = "ostree.manifest-digest"
	MetaManifest        = "ostree.manifest"
	MetaImageConfig     = "ostree.container.image-config"
	MetaImporterVersion = "ostree.importer.version"
	// ImporterVersion is what this importer records under ostree.importer.version.
	ImporterVersion = "bootc-go 1"
)

// Refs under which pulled images and layers are kept in the repository (spec §3.4).
const (
	// RefPrefix is the root of every ref the image store owns.
	RefPrefix      = "ostree/container/"
	LayerRefPrefix = RefPrefix + "blob/"
	ImageRefPrefix = RefPrefix + "image/"
)

// ImageRef is the ref under which the repository keeps ref's image.
func ImageRef(ref imgref.OstreeRef) string { return ImageRefPrefix + EscapeRef(ref.String()) }

// LayerRef is the ref under which the repository keeps a layer, by its diff ID.
func LayerRef(diffID v1.Hash) string { return LayerRefPrefix + EscapeRef(diffID.String()) }
