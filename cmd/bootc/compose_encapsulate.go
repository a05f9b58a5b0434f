package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sign"
	"github.com/bootc-go/bootc/pkg/transport"
)

// imageFlags are the flags encapsulate and image share.
func imageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "label", Usage: "add label K=V to the image (repeatable)"},
		&cli.IntFlag{Name: "max-layers", Value: encapsulate.DefaultMaxLayers, Usage: "at most this many layers in the image, layer 0 included (1: a single layer)"},
		&cli.StringFlag{Name: "compression", Value: "gzip", Usage: "layer compression: gzip, zstd or zstd:chunked"},
		&cli.StringFlag{Name: "previous-build", Usage: "keep the layer assignment of this image (default: the image already at the output, if it is chunked)"},
		&cli.BoolFlag{Name: "no-previous-build", Usage: "do not reuse the layout of the image already at the output"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress"},
	}
}

func composeEncapsulateCommand() *cli.Command {
	return &cli.Command{
		Name:      "encapsulate",
		Usage:     "turn an OSTree commit into a chunked OCI image",
		ArgsUsage: "REF TARGET",
		Description: `Writes commit REF of the repository as an ostree-container image: layer 0 holds
the commit and its directories, each further layer the files of some software
components (from the dpkg or rpm database, user.component xattrs, the initramfs;
the rest is "unpackaged"), so that an update downloads only what changed. Layer
assignment is kept from the previous build (--previous-build, or the image
already at TARGET). Same commit, same options: same image digest.

TARGET is oci:DIR[:TAG], oci-archive:FILE[:TAG] or docker://REGISTRY/NAME:TAG
(loopback registries are reached over plain HTTP).

Examples:
   bootc compose encapsulate --repo repo os/x86_64 oci-archive:os.ociarchive
   bootc compose encapsulate --repo repo --label vendor=me os/x86_64 docker://127.0.0.1:5000/os:latest
   bootc compose encapsulate --repo repo --previous-build oci:old:1 os/x86_64 oci:new:2`,
		Flags: append([]cli.Flag{repoFlag()}, imageFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "encapsulate takes REF and TARGET")
			}
			target, err := imgref.Parse(c.Args().Get(1))
			if err != nil {
				return usageError(c, "%v", err)
			}
			opts, err := imageOptions(c, target)
			if err != nil {
				return err
			}
			repo, err := ostree.Open(c.Context, c.String("repo"))
			if err != nil {
				return err
			}
			return buildAndWrite(c, repo, c.Args().Get(0), target, nil, opts)
		},
	}
}

// imageOptions turns the shared flags into encapsulate options, reading the previous build.
func imageOptions(c *cli.Context, target imgref.Ref) ([]encapsulate.Option, error) {
	comp, err := encapsulate.ParseCompression(c.String("compression"))
	if err != nil {
		return nil, usageError(c, "%v", err)
	}
	labels := map[string]string{}
	for _, kv := range c.StringSlice("label") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError(c, "--label %q: expected KEY=VALUE", kv)
		}
		labels[k] = v
	}
	if n := c.Int("max-layers"); n < 1 || n == 2 {
		return nil, usageError(c, "--max-layers %d: use 1 for a single layer, or at least 3 (layer 0, content, and a layer reserved for new packages)", n)
	}
	opts := []encapsulate.Option{encapsulate.WithLabels(labels), encapsulate.WithMaxLayers(c.Int("max-layers")), encapsulate.WithCompression(comp)}
	prior, err := previousBuild(c, target)
	if err != nil {
		return nil, err
	}
	if prior != nil {
		opts = append(opts, encapsulate.WithPriorBuild(prior))
	}
	if !c.Bool("quiet") {
		p := newProgress(c.App.ErrWriter)
		opts = append(opts, encapsulate.WithProgress(func(ep encapsulate.Progress) {
			p.update("writing layers: %d of %d", ep.LayersDone, ep.Layers)
		}))
	}
	return opts, nil
}

var hostPlatform = transport.DefaultPlatform()

func previousBuild(c *cli.Context, target imgref.Ref) ([][]string, error) {
	if s := c.String("previous-build"); s != "" {
		ref, err := imgref.Parse(s)
		if err != nil {
			return nil, usageError(c, "--previous-build: %v", err)
		}
		img, err := transport.Read(c.Context, ref, hostPlatform, transport.WithRegistries(registriesConfig(c, "")))
		if err != nil {
			return nil, fmt.Errorf("reading the previous build: %w", err)
		}
		defer img.Close()
		return encapsulate.PriorLayers(img)
	}
	if c.Bool("no-previous-build") {
		return nil, nil
	}
	img, err := transport.Read(c.Context, target, hostPlatform, transport.WithRegistries(registriesConfig(c, "")))
	if err != nil {
		if !errors.Is(err, transport.ErrNotFound) {
			fmt.Fprintf(c.App.ErrWriter, "note: not reusing the layout of %s: %v\n", target, err)
		}
		return nil, nil
	}
	defer img.Close()
	prior, err := encapsulate.PriorLayers(img)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "note: the image at %s is not a chunked build (%v); planning layers afresh\n", target, err)
		return nil, nil
	}
	fmt.Fprintf(c.App.ErrWriter, "keeping the layer assignment of the image at %s (%d chunk layers)\n", target, len(prior))
	return prior, nil
}

// buildAndWrite builds the image, writes it to target and, with a signer, signs it there.
func buildAndWrite(c *cli.Context, repo *ostree.Repo, rev string, target imgref.Ref, signer *sign.Signer, opts []encapsulate.Option) error {
	img, err := encapsulate.Build(c.Context, repo, rev, opts...)
	if err != nil {
		return fmt.Errorf("encapsulate: %w", err)
	}
	defer img.Close()
	digest, err := transport.Write(c.Context, img, target, transport.WithRegistries(registriesConfig(c, "")))
	if err != nil {
		return err
	}
	if signer != nil {
		start := time.Now()
		if err := signer.Sign(c.Context, target, digest, registriesConfig(c, "")); err != nil {
			return fmt.Errorf("pushed %s as %s but %w", target, digest, err)
		}
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "signed %s in %s\n", digest, time.Since(start).Round(time.Millisecond))
		}
	}
	printImageSummary(c.Context, c.App.Writer, img, digest)
	return nil
}

func printImageSummary(_ context.Context, w io.Writer, img *encapsulate.Image, digest v1.Hash) {
	fmt.Fprintf(w, "commit %s encapsulated in %d layers\n", img.Commit, len(img.Plan)+1)
	fmt.Fprintln(w, digest)
}
