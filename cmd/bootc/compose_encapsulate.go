package main

import (
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
	"github.com/bootc-go/bootc/pkg/imgref"
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
		Name:        "encapsulate",
		Usage:       "turn an OSTree commit into a chunked OCI image",
		ArgsUsage:   "REF TARGET",
		Description: help("compose-encapsulate"),
		Flags:       append([]cli.Flag{repoFlag()}, imageFlags()...),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "encapsulate takes REF and TARGET")
			}
			target, err := imgref.Parse(c.Args().Get(1))
			if err != nil {
				return usageError(c, "%v", err)
			}
			opts, done, err := imageOptions(c)
			if err != nil {
				return err
			}
			defer done()
			res, err := compose.Encapsulate(c.Context, c.String("repo"), c.Args().Get(0), target, opts...)
			if err != nil {
				return err
			}
			printImageSummary(c.App.Writer, res)
			return nil
		},
	}
}

// imageOptions turns the flags encapsulate and image share into options, with the registry
// configuration and the rendering of events; done clears the progress line.
func imageOptions(c *cli.Context) (opts []compose.Option, done func(), err error) {
	comp, err := encapsulate.ParseCompression(c.String("compression"))
	if err != nil {
		return nil, nil, usageError(c, "%v", err)
	}
	if n := c.Int("max-layers"); n < 1 || n == 2 {
		return nil, nil, usageError(c, "--max-layers %d: use 1 for a single layer, or at least 3 (layer 0, content, and a layer reserved for new packages)", n)
	}
	image, err := keyValueOptions(c, "label", func(k, v string) encapsulate.Option { return encapsulate.WithLabels(map[string]string{k: v}) })
	if err != nil {
		return nil, nil, err
	}
	opts = []compose.Option{compose.WithImage(append(image, encapsulate.WithMaxLayers(c.Int("max-layers")), encapsulate.WithCompression(comp))...)}
	if s := c.String("previous-build"); s != "" {
		ref, err := imgref.Parse(s)
		if err != nil {
			return nil, nil, usageError(c, "--previous-build: %v", err)
		}
		opts = append(opts, compose.WithPreviousBuild(ref))
	} else if c.Bool("no-previous-build") {
		opts = append(opts, compose.WithoutPreviousBuild())
	}
	events, done := composeEvents(c, false)
	return append(append(opts, events...), compose.WithRegistries(registriesConfig(c, ""))), done, nil
}

func printImageSummary(w io.Writer, res *compose.Result) {
	fmt.Fprintf(w, "commit %s encapsulated in %d layers\n", res.Commit, res.Layers)
	fmt.Fprintln(w, res.Digest)
}
