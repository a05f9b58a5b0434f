// Command oci-layers lists the layers of an image in an OCI image layout
// directory, one line per layer, in manifest order:
//
//	<digest> <compressed size in bytes> <base|chunk> <components>
//
// "chunk" marks a layer with the ostree.components annotation, whose value
// (the components it holds, comma-separated) is the last column; "-" there
// for a layer without it. The image is
// the manifest that index.json names with the annotation
// org.opencontainers.image.ref.name=TAG. The benchmarks use it instead of jq.
//
//	go run ./internal/testutil/cmd/oci-layers DIR TAG
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

const refName = "org.opencontainers.image.ref.name"

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations"`
}

type index struct {
	Manifests []descriptor `json:"manifests"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Layers    []descriptor `json:"layers"`
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: oci-layers DIR TAG")
		os.Exit(2)
	}
	if err := list(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "oci-layers: %v\n", err)
		os.Exit(1)
	}
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func blobPath(dir, digest string) (string, error) {
	alg, hex, ok := strings.Cut(digest, ":")
	if !ok || alg == "" || hex == "" || strings.ContainsAny(digest, "/\\") {
		return "", fmt.Errorf("bad digest %q", digest)
	}
	return filepath.Join(dir, "blobs", alg, hex), nil
}

func list(dir, tag string) error {
	var idx index
	if err := readJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		return err
	}
	var found []descriptor
	for _, d := range idx.Manifests {
		if d.Annotations[refName] == tag {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return fmt.Errorf("%s: no manifest tagged %q", dir, tag)
	case 1:
	default:
		return fmt.Errorf("%s: %d manifests tagged %q", dir, len(found), tag)
	}
	path, err := blobPath(dir, found[0].Digest)
	if err != nil {
		return err
	}
	var m manifest
	if err := readJSON(path, &m); err != nil {
		return err
	}
	if len(m.Layers) == 0 {
		return fmt.Errorf("%s:%s: manifest %s has no layers (media type %q)", dir, tag, found[0].Digest, m.MediaType)
	}
	for _, l := range m.Layers {
		p, err := blobPath(dir, l.Digest)
		if err != nil {
			return err
		}
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if st.Size() != l.Size {
			return fmt.Errorf("layer %s: manifest says %d bytes, blob has %d", l.Digest, l.Size, st.Size())
		}
		kind, components := "base", "-"
		if c, ok := l.Annotations[ostreecontainer.AnnotationComponents]; ok {
			kind, components = "chunk", strings.ReplaceAll(c, " ", "")
		}
		fmt.Printf("%s %d %s %s\n", l.Digest, l.Size, kind, components)
	}
	return nil
}
