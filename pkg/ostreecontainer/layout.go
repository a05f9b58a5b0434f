package ostreecontainer

import (
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Layout says which layers of an image are what (spec §3.4, ostree-ext's parse_manifest_layout).
type Layout struct {
	// Ostree is the index of the ostree layer (layer 0), or -1 for an image without one.
	Ostree int
	// Chunks are the component layers after it, up to the one whose diff ID is the
	// ostree.final-diffid label.
	Chunks []int
	// Derived are the layers after that: what `podman build` added on top.
	Derived []int
}

// ParseLayout classifies the layers of an image from its config's ostree.final-diffid label.
// Without the label every layer counts as derived (a plain container image with a kernel).
func ParseLayout(cf *v1.ConfigFile) (*Layout, error) {
	diffIDs := cf.RootFS.DiffIDs
	final, ok := cf.Config.Labels[LabelFinalDiffID]
	l := &Layout{Ostree: -1}
	if !ok {
		for i := range diffIDs {
			l.Derived = append(l.Derived, i)
		}
		return l, nil
	}
	if len(diffIDs) == 0 {
		return nil, fmt.Errorf("image has the %s label but no layers", LabelFinalDiffID)
	}
	end := -1
	for i, d := range diffIDs {
		if d.String() == final {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("image's %s label %s names none of its layers: the image is damaged or was rewritten", LabelFinalDiffID, final)
	}
	l.Ostree = 0
	for i := 1; i <= end; i++ {
		l.Chunks = append(l.Chunks, i)
	}
	for i := end + 1; i < len(diffIDs); i++ {
		l.Derived = append(l.Derived, i)
	}
	return l, nil
}
