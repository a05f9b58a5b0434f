package transport

import (
	"context"
	"fmt"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"go.podman.io/image/v5/copy"
	ocilayout "go.podman.io/image/v5/oci/layout"
	"go.podman.io/image/v5/signature"
	cstorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/pkg/imgref"
)

// copyImage copies between two containers-transports references with containers/image, which
// owns the containers-storage format. The images involved are our own or the caller's, so no
// signature policy applies here (verification happens where images are pulled to deploy).
func copyImage(ctx context.Context, src, dst types.ImageReference) error {
	pc, err := signature.NewPolicyContext(&signature.Policy{Default: []signature.PolicyRequirement{signature.NewPRInsecureAcceptAnything()}})
	if err != nil {
		return err
	}
	defer pc.Destroy()
	_, err = copy.Image(ctx, pc, dst, src, &copy.Options{SourceCtx: &types.SystemContext{}, DestinationCtx: &types.SystemContext{}})
	return err
}

// writeContainersStorage writes the image as an OCI layout in a temporary directory (in tmpDir,
// "" for the system's) and copies
// it into containers-storage. ref.Name may carry a store specification, as in
// "[overlay@/var/lib/containers/storage+/run/containers/storage]localhost/os:latest".
func writeContainersStorage(ctx context.Context, img v1.Image, ref imgref.Ref, tmpDir string) error {
	dir, err := os.MkdirTemp(tmpDir, "bootc-to-storage-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := writeLayout(img, dir, "image"); err != nil {
		return err
	}
	src, err := ocilayout.NewReference(dir, "image")
	if err != nil {
		return err
	}
	dst, err := cstorage.Transport.ParseReference(ref.Name)
	if err != nil {
		return fmt.Errorf("%s: %w", ref, err)
	}
	if err := copyImage(ctx, src, dst); err != nil {
		return fmt.Errorf("writing to %s: %w", ref, err)
	}
	return nil
}

// readContainersStorage copies the image out of containers-storage into a temporary OCI layout
// (in tmpDir, "" for the system's).
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
	if err := copyImage(ctx, src, dst); err != nil {
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
