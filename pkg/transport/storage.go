package transport

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	godigest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/image"
	"go.podman.io/image/v5/manifest"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/pkg/blobinfocache/none"
	"go.podman.io/image/v5/pkg/compression"
	cstorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"golang.org/x/sync/errgroup"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// containers-storage is read and written through containers/image's storage transport, which owns
// the format, with its public ImageSource and ImageDestination. The images involved are our own or
// the caller's, so no signature policy applies here (verification happens where images are pulled
// to deploy), and signatures are neither read nor written.

// writeContainersStorage writes the image into containers-storage: its blobs (the layers decompressed
// and checked against the config's diff IDs by the store), then the manifest, byte for byte. ref.Name
// may carry a store specification, as in
// "[overlay@/var/lib/containers/storage+/run/containers/storage]localhost/os:latest". The store keeps
// the blobs in a temporary directory in tmpDir ("" for containers/image's default, /var/tmp) until
// the image is committed.
func writeContainersStorage(ctx context.Context, img v1.Image, ref imgref.Ref, tmpDir string) error {
	dst, err := cstorage.Transport.ParseReference(ref.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	dest, err := dst.NewImageDestination(ctx, &types.SystemContext{BigFilesTemporaryDir: tmpDir})
	if err != nil {
		return fmt.Errorf("writing to %s: %w", ref, err)
	}
	defer dest.Close()
	if err := putImage(ctx, dest, img); err != nil {
		return fmt.Errorf("writing to %s: %w", ref, err)
	}
	return nil
}

// readContainersStorage copies the image out of containers-storage into a temporary OCI layout
// (in tmpDir, "" for the system's) and opens it there.
func readContainersStorage(ctx context.Context, ref imgref.Ref, tmpDir string) (*Image, error) {
	dir, err := os.MkdirTemp(tmpDir, "bootc-from-storage-")
	if err != nil {
		return nil, err
	}
	src, err := cstorage.Transport.ParseReference(ref.Name)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	dst, err := ocilayout.NewReference(dir, "image")
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := copyToLayout(ctx, &types.SystemContext{BigFilesTemporaryDir: tmpDir}, src, dst); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("reading %s: %w", ref, err)
	}
	img, err := readLayout(dir, "image", v1.Platform{})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Image{Image: img, close: func() error { return os.RemoveAll(dir) }}, nil
}

// copyToLayout copies the image at srcRef (for a multi-platform image, the instance for sys's
// platform) into the OCI layout dstRef, as containers/image's copy.Image does with default options:
//
//   - the layers are the ones the source gives for copying (LayerInfosForCopy: containers-storage
//     serves each layer uncompressed, by its diff ID), each checked against its digest;
//   - an uncompressed layer is compressed with gzip (the layout's wish, containers/image's gzip at
//     its default level), a compressed one kept; the new layer loses its annotations;
//   - the manifest is rewritten (layer digests, sizes and media types; a Docker schema 2
//     manifest becomes OCI) only if a layer changed or the format must; otherwise it is kept byte
//     for byte, and so is the config.
//
// So the same stored image gives the same layout, and the same manifest digest, every time, as
// containers/image's copy gave it.
func copyToLayout(ctx context.Context, sys *types.SystemContext, srcRef, dstRef types.ImageReference) error {
	src, err := srcRef.NewImageSource(ctx, sys)
	if err != nil {
		return err
	}
	defer src.Close()
	dest, err := dstRef.NewImageDestination(ctx, sys)
	if err != nil {
		return err
	}
	defer dest.Close()

	raw, mt, err := src.GetManifest(ctx, nil)
	if err != nil {
		return fmt.Errorf("reading the manifest: %w", err)
	}
	var instance *godigest.Digest
	if manifest.MIMETypeIsMultiImage(manifest.NormalizedMIMEType(mt)) {
		list, err := manifest.ListFromBlob(raw, manifest.NormalizedMIMEType(mt))
		if err != nil {
			return fmt.Errorf("parsing the index: %w", err)
		}
		d, err := list.ChooseInstance(sys)
		if err != nil {
			return err
		}
		instance = &d
	}
	img, err := image.FromUnparsedImage(ctx, sys, image.UnparsedInstance(src, instance))
	if err != nil {
		return err
	}
	srcInfos := img.LayerInfos()
	updated, err := img.LayerInfosForCopy(ctx)
	if err != nil {
		return err
	}
	infosChanged := updated != nil && !reflect.DeepEqual(srcInfos, updated)
	if infosChanged {
		srcInfos = updated
	}

	destInfos := make([]types.BlobInfo, len(srcInfos))
	diffIDs := make([]godigest.Digest, len(srcInfos))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(pushJobs)
	for i, info := range srcInfos {
		g.Go(func() error {
			var err error
			destInfos[i], diffIDs[i], err = copyLayer(gctx, src, dest, info)
			if err != nil {
				return fmt.Errorf("layer %s: %w", info.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}

	upd := types.ManifestUpdateOptions{InformationOnly: types.ManifestUpdateInformation{Destination: dest, LayerInfos: destInfos}}
	changed := infosChanged
	for i := range srcInfos {
		changed = changed || srcInfos[i].Digest != destInfos[i].Digest
	}
	if changed {
		upd.LayerInfos = destInfos
	}
	_, srcMT, err := img.Manifest(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(dest.SupportedManifestMIMETypes(), srcMT) {
		upd.ManifestMIMEType = imgspecv1.MediaTypeImageManifest
	}
	if img.UpdatedImageNeedsLayerDiffIDs(upd) {
		// A Docker schema 1 manifest: containers-storage gives its layers uncompressed (their
		// digests are the diff IDs), except the empty ones, whose diff IDs the conversion skips.
		upd.InformationOnly.LayerDiffIDs = diffIDs
	}
	out := img
	if upd.LayerInfos != nil || upd.ManifestMIMEType != "" {
		if out, err = img.UpdatedImage(ctx, upd); err != nil {
			return fmt.Errorf("updating the manifest: %w", err)
		}
	}
	config, err := out.ConfigBlob(ctx)
	if err != nil {
		return fmt.Errorf("reading the image config: %w", err)
	}
	if ci := out.ConfigInfo(); ci.Digest != "" {
		if _, err := dest.PutBlob(ctx, bytes.NewReader(config), ci, none.NoCache, true); err != nil {
			return fmt.Errorf("writing the image config: %w", err)
		}
	}
	m, _, err := out.Manifest(ctx)
	if err != nil {
		return err
	}
	if err := dest.PutManifest(ctx, m, nil); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	return dest.Commit(ctx, image.UnparsedInstance(src, nil))
}

// copyLayer copies the layer info names from src to dest, compressed with gzip if it is not
// compressed and dest wants compressed layers, and returns what dest stored (with the compression
// edit the manifest needs) and the layer's diff ID ("" for a layer kept compressed).
func copyLayer(ctx context.Context, src types.ImageSource, dest types.ImageDestination, info types.BlobInfo) (types.BlobInfo, godigest.Digest, error) {
	if info.Digest.Algorithm() != godigest.SHA256 {
		return types.BlobInfo{}, "", fmt.Errorf("only sha256 digests are supported")
	}
	h, err := v1.NewHash(info.Digest.String())
	if err != nil {
		return types.BlobInfo{}, "", err
	}
	rc, _, err := src.GetBlob(ctx, info, none.NoCache)
	if err != nil {
		return types.BlobInfo{}, "", err
	}
	defer rc.Close()
	verified := newVerifiedReader(rc, v1.Descriptor{Digest: h, Size: info.Size})
	format, decompressor, stream, err := compression.DetectCompressionFormat(verified)
	if err != nil {
		return types.BlobInfo{}, "", err
	}
	if decompressor != nil || dest.DesiredLayerCompression() != types.Compress {
		// Kept as it is.
		stored, err := dest.PutBlob(ctx, stream, info, none.NoCache, false)
		if err != nil {
			return types.BlobInfo{}, "", err
		}
		if _, err := io.Copy(io.Discard, stream); err != nil { // to its end, where verified checks it
			return types.BlobInfo{}, "", err
		}
		out := types.BlobInfo{Digest: stored.Digest, Size: stored.Size, MediaType: info.MediaType, Annotations: info.Annotations}
		if decompressor != nil {
			out.CompressionAlgorithm = &format
			return out, "", nil
		}
		return out, info.Digest, nil
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(gzipTo(pw, stream))
	}()
	stored, err := dest.PutBlob(ctx, pr, types.BlobInfo{Digest: "", Size: -1}, none.NoCache, false)
	pr.CloseWithError(io.ErrClosedPipe) // stops the compressor if PutBlob returned early
	<-done
	if err != nil {
		return types.BlobInfo{}, "", err
	}
	// PutBlob read the compressed stream to its end, so the compressor read the layer to its end
	// and verified checked its digest: it is the diff ID.
	return types.BlobInfo{Digest: stored.Digest, Size: stored.Size, CompressionOperation: types.Compress,
		CompressionAlgorithm: &compression.Gzip}, info.Digest, nil
}

// gzipTo compresses r into w as containers/image's copy does (its gzip compressor at the default
// level, fed 1 MiB at a time).
func gzipTo(w io.Writer, r io.Reader) error {
	zw, err := compression.CompressStream(w, compression.Gzip, nil)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(zw, r, make([]byte, 1<<20)); err != nil {
		zw.Close()
		return err
	}
	return zw.Close()
}
