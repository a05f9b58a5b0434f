// Package transport reads and writes images at image references (package imgref): OCI layout
// directories, OCI archives, registries, and containers-storage.
//
// # Registries: one client, one configuration
//
// Every registry request – reading an image for a pull or an inspection, verifying it
// (package verify), pushing and signing (package sign) – goes through containers/image
// (go.podman.io/image/v5) with the types.SystemContext that [Registries.SystemContext] makes of
// the one [Registries] configuration. containers/image is the only Go client that implements
// registries.conf (mirrors, `blocked`, `insecure`, pull-from-mirror rules), certs.d and
// auth.json as podman and skopeo do; go-containerregistry's remote ignores registries.conf and
// allows plain HTTP for RFC 1918 addresses, so a second client would disagree with the policy
// check about which registry it talks to and how.
//
// Reading: the image's containers/image ImageSource is wrapped as a go-containerregistry
// v1.Image (partial.CompressedToImage), so the rest of the pipeline (package imagestore: layers
// fetched by digest, several at once, digests checked while streaming) is unchanged. The
// manifest is checked against the digest of a NAME@DIGEST reference (or the index's entry for
// the platform), the config and every blob against their descriptors while they stream. The
// blobs come from the endpoint (mirror or registry) that served the manifest.
//
// Writing: the blobs are uploaded through a containers/image ImageDestination (several at
// once, each skipped when the repository has it), then the manifest; the same rules apply
// (a blocked registry is refused, `insecure` honoured). Signatures are added to an image's
// sigstore attachment the same way ([AttachSigstoreSignature]).
//
// OCI layouts and archives are read and written with go-containerregistry's layout package;
// containers-storage goes through containers/image's storage transport (its ImageSource and
// ImageDestination, not its copy pipeline, whose progress bars cost every command's start-up).
//
// Programs that use containers-storage must call go.podman.io/storage/pkg/reexec.Init first thing
// in main (and in TestMain): the store runs some of its work in a re-executed copy of the binary.
package transport

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"

	"github.com/bootc-go/bootc/internal/ociarchive"
	"github.com/bootc-go/bootc/pkg/imgref"
)

// RefNameAnnotation tags images in an OCI layout's index.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// ErrNotFound reports an image reference with no image behind it.
var ErrNotFound = errors.New("image not found")

// Option configures Read and Write.
type Option func(*options)

type options struct {
	registries Registries
}

// WithRegistries sets the registry configuration (default: the zero Registries, the system's
// configuration), and where large temporary data goes (Registries.TmpDir).
func WithRegistries(r Registries) Option {
	return func(o *options) { o.registries = r }
}

func makeOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Write stores img at ref and returns the manifest digest. An image already there under the same
// tag is replaced.
func Write(ctx context.Context, img v1.Image, ref imgref.Ref, opts ...Option) (v1.Hash, error) {
	o := makeOptions(opts)
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	switch ref.Transport {
	case imgref.OCI:
		return digest, writeLayout(img, ref.Name, ref.Tag)
	case imgref.OCIArchive:
		return digest, writeArchive(img, ref.Name, ref.Tag)
	case imgref.Registry:
		return digest, writeRegistry(ctx, img, ref, o.registries)
	case imgref.ContainersStorage:
		return digest, writeContainersStorage(ctx, img, ref, o.registries.TmpDir)
	}
	return v1.Hash{}, fmt.Errorf("writing to %s: unsupported transport", ref)
}

func writeLayout(img v1.Image, dir, tag string) error {
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	var opts []layout.Option
	matcher := match.Annotation(RefNameAnnotation, tag)
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(map[string]string{RefNameAnnotation: tag}))
	} else {
		// Untagged: replace the untagged image, if any.
		matcher = func(d v1.Descriptor) bool { _, tagged := d.Annotations[RefNameAnnotation]; return !tagged }
	}
	if err := p.ReplaceImage(img, matcher, opts...); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	return nil
}

// writeArchive writes an OCI layout into a temporary directory beside file, then tars it
// reproducibly (sorted names, mtime 0, root-owned) into a temporary file renamed over file.
func writeArchive(img v1.Image, file, tag string) error {
	dir, err := os.MkdirTemp(filepath.Dir(file), ".oci-archive-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer os.RemoveAll(dir)
	if err := writeLayout(img, dir, tag); err != nil {
		return err
	}
	tmp := filepath.Join(dir, ".archive.tar")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	var paths []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && p != tmp {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(paths)
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
		if st.IsDir() {
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, h.Name+"/", 0o755
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			continue
		}
		h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, st.Size()
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		src, err := os.Open(p)
		if err != nil {
			return err
		}
		_, err = io.Copy(tw, src)
		src.Close()
		if err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

// Image is an image read from a reference; Close releases what reading it needed (an unpacked
// archive).
type Image struct {
	v1.Image
	close func() error
}

// Close releases the image.
func (i *Image) Close() error {
	if i.close != nil {
		return i.close()
	}
	return nil
}

// Read opens the image at ref, for the given platform when ref names a multi-platform index.
// An oci-archive is unpacked into Registries.TmpDir (WithRegistries), a registry image read as
// the package documentation says.
func Read(ctx context.Context, ref imgref.Ref, platform v1.Platform, opts ...Option) (*Image, error) {
	o := makeOptions(opts)
	switch ref.Transport {
	case imgref.OCI:
		img, err := readLayout(ref.Name, ref.Tag, platform)
		if err != nil {
			return nil, err
		}
		return &Image{Image: rangedImage{img, fileRanges{ref.Name}}}, nil
	case imgref.OCIArchive:
		dir, err := os.MkdirTemp(o.registries.TmpDir, "bootc-oci-archive-")
		if err != nil {
			return nil, err
		}
		if err := ociarchive.Extract(ref.Name, dir); err != nil {
			os.RemoveAll(dir)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%w: %s does not exist", ErrNotFound, ref.Name)
			}
			return nil, err
		}
		img, err := readLayout(dir, ref.Tag, platform)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%s: %w", ref, err)
		}
		return &Image{Image: rangedImage{img, fileRanges{dir}}, close: func() error { return os.RemoveAll(dir) }}, nil
	case imgref.Registry:
		return readRegistry(ctx, ref, platform, o.registries)
	case imgref.ContainersStorage:
		return readContainersStorage(ctx, ref, o.registries.TmpDir)
	}
	return nil, fmt.Errorf("reading %s: unsupported transport", ref)
}

func readLayout(dir, tag string, platform v1.Platform) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: no OCI layout at %s", ErrNotFound, dir)
		}
		return nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if tag != "" && d.Annotations[RefNameAnnotation] != tag {
			continue
		}
		if tag == "" && len(m.Manifests) > 1 {
			if _, tagged := d.Annotations[RefNameAnnotation]; tagged {
				continue
			}
		}
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			cm, err := child.IndexManifest()
			if err != nil {
				return nil, err
			}
			for _, cd := range cm.Manifests {
				if cd.Platform != nil && cd.Platform.Satisfies(platform) {
					return child.Image(cd.Digest)
				}
			}
			return nil, fmt.Errorf("%w: no image for %s/%s in %s", ErrNotFound, platform.OS, platform.Architecture, dir)
		}
		return idx.Image(d.Digest)
	}
	if tag != "" {
		return nil, fmt.Errorf("%w: no image tagged %q in %s", ErrNotFound, tag, dir)
	}
	return nil, fmt.Errorf("%w: no untagged image in %s (name one with %s:TAG)", ErrNotFound, dir, dir)
}
