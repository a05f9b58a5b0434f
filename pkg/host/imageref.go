package host

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// ParseImage reads an image reference a user gave: an ostree image reference
// (ostree-unverified-registry:NAME, ostree-image-signed:docker://NAME, ...) as it is, else what
// parse makes of it (a containers-transports reference), unverified, or, with enforce, to be
// verified by the trust policy (ostree-image-signed:). With enforce, an ostree reference that
// names another signature scheme is refused. oci and oci-archive paths are made absolute, as
// the origin keeps them for upgrades run from anywhere.
func ParseImage(s string, parse func(string) (imgref.Ref, error), enforce bool) (imgref.OstreeRef, error) {
	if strings.HasPrefix(s, "ostree-") {
		ref, err := imgref.ParseOstree(s)
		if err != nil {
			return imgref.OstreeRef{}, err
		}
		if enforce && ref.SigVerify != imgref.ContainerPolicy {
			return imgref.OstreeRef{}, fmt.Errorf("%q names its own signature scheme; with --enforce-container-sigpolicy write ostree-image-signed:%s", s, ref.Image)
		}
		return ref, nil
	}
	img, err := parse(s)
	if err != nil {
		return imgref.OstreeRef{}, err
	}
	if img.Transport == imgref.OCI || img.Transport == imgref.OCIArchive {
		if abs, err := filepath.Abs(img.Name); err == nil {
			img.Name = abs
		}
	}
	ref := imgref.OstreeRef{SigVerify: imgref.Unverified, Image: img}
	if enforce {
		ref.SigVerify = imgref.ContainerPolicy
	}
	return ref, nil
}
