package main

import (
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/transport"
)

// flattenImage applies the layers of the image at ref, in order and with whiteouts honoured, to a
// new directory dest, going through repo so that every file is checked as it is stored. It
// returns the image's creation time. An ostree-container image's embedded repository lands in
// dest/sysroot like any other files (its objects are the checkout's files, so the repository
// stores them once); composing the tree leaves /sysroot out.
func flattenImage(c *cli.Context, repo *ostree.Repo, ref imgref.Ref, dest string) (time.Time, error) {
	img, err := transport.Read(c.Context, ref, hostPlatform, transport.WithRegistries(registriesConfig(c, "")))
	if err != nil {
		return time.Time{}, err
	}
	defer img.Close()
	cf, err := img.ConfigFile()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return time.Time{}, fmt.Errorf("reading %s: %w", ref, err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return time.Time{}, fmt.Errorf("layer %d of %s: %w", i+1, ref, err)
		}
		src := ostree.NewTarSource(rc)
		src.SkipSpecial = true
		sum, err := repo.CommitEntries(c.Context, src, ostree.WithTimestamp(time.Unix(0, 0)), ostree.WithNoParent(), ostree.WithoutBindings())
		rc.Close()
		if err != nil {
			return time.Time{}, fmt.Errorf("layer %d of %s: %w", i+1, ref, err)
		}
		if err := repo.Checkout(c.Context, sum.String(), dest, ostree.WithUnion(), ostree.WithWhiteouts()); err != nil {
			return time.Time{}, fmt.Errorf("applying layer %d of %s: %w", i+1, ref, err)
		}
	}
	return cf.Created.Time, nil
}
