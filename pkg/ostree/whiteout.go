package ostree

import "strings"

// Whiteout names, as in OCI/Docker layers.
const (
	WhiteoutPrefix = ".wh."
	OpaqueWhiteout = ".wh..wh..opq"
)

// whiteouts is what the whiteout markers among a layer directory's file names ask of the
// directory below: the one statement of the OCI rules, which MutableTree.Overlay and Checkout's
// WithWhiteouts both follow.
//
// In order: an opaque whiteout (".wh..wh..opq") empties the lower directory; then ".wh.NAME"
// removes NAME from it (a NAME that is not a valid file name is ignored); then the layer's own
// entries are laid over it. No marker is itself kept. A whiteout never removes an entry of its
// own layer.
type whiteouts struct {
	opaque bool
	remove []string
}

// isWhiteout reports whether name is a whiteout marker (opaque or not).
func isWhiteout(name string) bool { return strings.HasPrefix(name, WhiteoutPrefix) }

// planWhiteouts reads the markers among a layer directory's file names.
func planWhiteouts(files []string) whiteouts {
	var w whiteouts
	for _, name := range files {
		if name == OpaqueWhiteout {
			w.opaque = true
			continue
		}
		if target, ok := strings.CutPrefix(name, WhiteoutPrefix); ok && ValidateFilename(target) == nil {
			w.remove = append(w.remove, target)
		}
	}
	return w
}
