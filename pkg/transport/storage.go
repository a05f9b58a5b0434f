package transport

import (
	"context"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/bootc-go/bootc/pkg/imgref"
)

func writeContainersStorage(ctx context.Context, img v1.Image, ref imgref.Ref) error {
	return fmt.Errorf("writing to %s: containers-storage is not supported yet; write to oci-archive:FILE and run 'podman load -i FILE'", ref)
}

func readContainersStorage(ctx context.Context, ref imgref.Ref) (*Image, error) {
	return nil, fmt.Errorf("reading %s: containers-storage is not supported yet; use 'podman save --format oci-archive' and oci-archive:FILE", ref)
}
