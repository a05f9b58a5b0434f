package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/internal/logline"
	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sign"
)

func composeCommand() *cli.Command {
	repo := repoFlag()
	repo.Usage = "OSTree repository (required; created in mode bare-user if it does not exist)"
	return &cli.Command{Name: "compose", Subcommands: []*cli.Command{
		{Name: "commit", Action: cliargs.WithArgs(0, 0, "no arguments: give the root filesystem with --rootfs", runComposeCommit), Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rootfs", Required: true, Usage: "root filesystem directory to commit (required)"}, repo,
			&cli.StringFlag{Name: "version", Usage: "the version metadata (default: VERSION_ID or VERSION from the rootfs's os-release; an empty value for none)"},
		}, commitFlags(&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Required: true, Usage: "branch to point at the new commit (required)"})...)},
		{Name: "encapsulate", ArgsUsage: "REF TARGET", Action: cliargs.WithArgs(2, 2, "REF and TARGET", runComposeEncapsulate), Flags: append([]cli.Flag{repoFlag()}, imageFlags()...)},
		{Name: "image", Action: cliargs.WithArgs(0, 0, "no arguments (give --rootfs or --from, and --output)", runComposeImage), Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory to compose (this or --from is required)"},
			&cli.StringFlag{Name: "from", Usage: "container image to flatten and compose: docker://, oci:, oci-archive: or containers-storage:"},
			&cli.StringFlag{Name: "output", Required: true, Usage: "where to write the image (required): oci:DIR[:TAG], oci-archive:FILE, docker://REF or containers-storage:REF"},
			&cli.StringFlag{Name: "repo", Usage: "OSTree repository to commit into (default: a scratch repository)"},
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Value: "bootc/compose", Usage: "branch of the commit in the repository"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "commit subject (also the history entry of layer 0)"},
			&cli.StringFlag{Name: "version", Usage: "version metadata (default: VERSION_ID from os-release)"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time (default: SOURCE_DATE_EPOCH, the --from image's creation time, else now)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the pushed image with this cosign private key (registry outputs only)"},
			&cli.StringFlag{Name: "sign-passphrase-file", Usage: "read the --sign-key passphrase from this file (first line; default: $COSIGN_PASSWORD, else empty)"},
		}, imageFlags()...)},
	}}
}

// commitFlags are the flags of a commit that compose commit and ostree commit share.
func commitFlags(branch *cli.StringFlag) []cli.Flag {
	return []cli.Flag{branch,
		&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "one-line subject"},
		&cli.StringFlag{Name: "body", Aliases: []string{"m"}, Usage: "full description"},
		&cli.StringFlag{Name: "timestamp", Usage: "commit time: RFC 3339, 'YYYY-MM-DD HH:MM:SS [UTC|±hhmm]' or @UNIXSECONDS (default: SOURCE_DATE_EPOCH, else now)"},
		&cli.StringSliceFlag{Name: "add-metadata-string", Usage: "add metadata KEY=VALUE (repeatable)"},
		&cli.BoolFlag{Name: "no-bindings", Usage: "do not add the ostree.ref-binding metadata"},
		quietFlag(),
	}
}

// imageFlags are the flags encapsulate and image share.
func imageFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringSliceFlag{Name: "label", Usage: "add label K=V to the image (repeatable)"},
		&cli.IntFlag{Name: "max-layers", Value: encapsulate.DefaultMaxLayers, Usage: "at most this many layers in the image, layer 0 included (1: a single layer)"},
		&cli.StringFlag{Name: "compression", Value: "gzip", Usage: "layer compression: gzip (every client reads it), zstd, or zstd:chunked (bootc hosts then fetch only the files they lack on update; podman, skopeo and Docker 23+ read it)"},
		&cli.StringFlag{Name: "previous-build", Usage: "keep the layer assignment of this image (default: the image already at the output, if it is chunked)"},
		&cli.BoolFlag{Name: "no-previous-build", Usage: "do not reuse the layout of the image already at the output"},
		quietFlag(),
	}
}

// composeEvents renders the compose pipelines' events, progress and log on stderr, unless --quiet.
// done ends the progress line with its final count.
func composeEvents(c *cli.Context) (opts []compose.Option, done func()) {
	p, commitOver := newProgress(c.App.ErrWriter, c.Bool("quiet")), &sync.Once{}
	return []compose.Option{compose.WithLogger(logline.New(p)), compose.WithProgress(func(e compose.Event) {
		switch e := e.(type) {
		case compose.RepoCreated:
			fmt.Fprintf(p, "created repository %s in mode %s\n", e.Path, e.Mode)
		case compose.PriorBuildKept:
			fmt.Fprintf(p, "keeping the layer assignment of the image at %s (%d chunk layers)\n", e.Ref, e.Layers)
		case compose.PriorBuildUnreadable:
			fmt.Fprintf(p, "note: not reusing the layout of %s: %v\n", e.Ref, e.Err)
		case compose.PriorBuildNotChunked:
			fmt.Fprintf(p, "note: the image at %s is not a chunked build (%v); planning layers afresh\n", e.Ref, e.Err)
		case compose.CommitProgress:
			p.commit(e.CommitProgress)
		case compose.LayerProgress:
			commitOver.Do(p.done) // the commit's final count stays on its own line
			p.update("writing layers: %d of %d", e.LayersDone, e.Layers)
		case compose.Signed:
			p.done()
			fmt.Fprintf(p, "signed %s in %s\n", e.Digest, e.Took.Round(time.Millisecond))
		}
	})}, p.done
}

func runComposeCommit(c *cli.Context) error {
	opts, err := commitOptions(c)
	if err != nil {
		return err
	}
	events, done := composeEvents(c)
	sum, err := compose.Commit(c.Context, c.String("repo"), c.String("rootfs"), append(opts, events...)...)
	if done(); errors.Is(err, compose.ErrRootfs) {
		return fmt.Errorf("--rootfs: %w", err)
	} else if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, sum)
	return nil
}

// commitOptions turns the commit flags of compose commit and compose image into options; a flag
// a command lacks reads as unset.
func commitOptions(c *cli.Context) ([]compose.Option, error) {
	opts := []bootable.Option{bootable.WithBranch(c.String("branch")), bootable.WithSubject(c.String("subject")), bootable.WithBody(c.String("body"))}
	if c.IsSet("version") {
		opts = append(opts, bootable.WithVersion(c.String("version")))
	}
	md, err := keyValueOptions(c, "add-metadata-string", bootable.WithMetadataString)
	if err != nil {
		return nil, err
	}
	opts = append(append(opts, md...), boolOptions(c, map[string]bootable.Option{"no-bindings": bootable.WithoutBindings()})...)
	ts, err := timestampOption(c, compose.WithTimestamp)
	if err != nil {
		return nil, err
	}
	return append(ts, compose.WithCommit(opts...)), nil
}

func runComposeEncapsulate(c *cli.Context) error {
	target, err := imgref.Parse(c.Args().Get(1))
	if err != nil {
		return cliargs.Errorf(c, "TARGET: %v", err)
	}
	opts, done, err := imageOptions(c)
	if err != nil {
		return err
	}
	res, err := compose.Encapsulate(c.Context, c.String("repo"), c.Args().Get(0), target, opts...)
	return printImageSummary(c.App.Writer, done, res, err)
}

// imageOptions turns the flags encapsulate and image share into options, with the registry
// configuration and the rendering of events; done ends the progress line.
func imageOptions(c *cli.Context) (opts []compose.Option, done func(), err error) {
	comp, err := encapsulate.ParseCompression(c.String("compression"))
	if err != nil {
		return nil, nil, cliargs.Errorf(c, "%v", err)
	}
	if n := c.Int("max-layers"); n < 1 || n == 2 {
		return nil, nil, cliargs.Errorf(c, "--max-layers %d: use 1 for a single layer, or at least 3 (layer 0, content, and a layer reserved for new packages)", n)
	}
	image, err := keyValueOptions(c, "label", func(k, v string) encapsulate.Option { return encapsulate.WithLabels(map[string]string{k: v}) })
	if err != nil {
		return nil, nil, err
	}
	opts = []compose.Option{compose.WithImage(append(image, encapsulate.WithMaxLayers(c.Int("max-layers")), encapsulate.WithCompression(comp))...)}
	if s := c.String("previous-build"); s != "" {
		ref, err := imgref.Parse(s)
		if err != nil {
			return nil, nil, cliargs.Errorf(c, "--previous-build: %v", err)
		}
		opts = append(opts, compose.WithPreviousBuild(ref))
	} else if c.Bool("no-previous-build") {
		opts = append(opts, compose.WithoutPreviousBuild())
	}
	events, done := composeEvents(c)
	return append(append(opts, events...), compose.WithRegistries(registriesConfig(c))), done, nil
}

// printImageSummary ends the progress line and prints what was built, or returns err.
func printImageSummary(w io.Writer, done func(), res *compose.Result, err error) error {
	if done(); err != nil {
		return err
	}
	fmt.Fprintf(w, "commit %s encapsulated in %d layers\n", res.Commit, res.Layers)
	fmt.Fprintln(w, res.Digest)
	return nil
}

func runComposeImage(c *cli.Context) error {
	src, target, err := composeImageArgs(c)
	if err != nil {
		return err
	}
	signer, err := loadSigner(c, target)
	if err != nil {
		return err
	} else if signer != nil {
		defer signer.Close()
	}
	opts, done, err := imageOptions(c)
	if err != nil {
		return err
	}
	commitOpts, err := commitOptions(c)
	if err != nil {
		done()
		return err
	}
	opts = append(append(opts, commitOpts...), compose.WithRepo(c.String("repo")), compose.WithSigner(signer))
	res, err := compose.Image(c.Context, src, target, opts...)
	return printImageSummary(c.App.Writer, done, res, err)
}

// composeImageArgs reads the source (--rootfs or --from) and --output.
func composeImageArgs(c *cli.Context) (src compose.Source, target imgref.Ref, err error) {
	src.Rootfs = c.String("rootfs")
	if (src.Rootfs == "") == (c.String("from") == "") {
		return src, target, cliargs.Errorf(c, "give exactly one of --rootfs DIR and --from IMAGE")
	}
	if target, err = imgref.Parse(c.String("output")); err != nil {
		return src, target, cliargs.Errorf(c, "--output: %v", err)
	}
	if from := c.String("from"); from != "" {
		ref, err := imgref.Parse(from)
		if err != nil {
			return src, target, cliargs.Errorf(c, "--from: %v", err)
		}
		src.From = &ref
	}
	return src, target, nil
}

// loadSigner loads the --sign-key key, or returns nil without --sign-key. It runs before anything
// is built, so that a bad key or passphrase changes nothing.
func loadSigner(c *cli.Context, target imgref.Ref) (*sign.Signer, error) {
	key, passFile := c.String("sign-key"), c.String("sign-passphrase-file")
	if key == "" {
		if passFile != "" {
			return nil, cliargs.Errorf(c, "--sign-passphrase-file needs --sign-key")
		}
		return nil, nil
	}
	if target.Transport != imgref.Registry {
		return nil, cliargs.Errorf(c, "--sign-key: cannot sign %s: signatures are stored as sigstore attachments in a registry, which OCI layouts, archives and containers-storage cannot hold; push to docker://REGISTRY/NAME:TAG", target)
	}
	passphrase, err := sign.Passphrase(passFile, os.Getenv("COSIGN_PASSWORD"))
	if err != nil {
		return nil, fmt.Errorf("--sign-passphrase-file: %w", err)
	}
	s, err := sign.LoadKey(key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w; nothing was built or pushed", err)
	}
	return s, nil
}
