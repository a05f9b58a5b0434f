package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate/compose"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sign"
)

func composeImageCommand() *cli.Command {
	return &cli.Command{
		Name:        "image",
		Usage:       "build a bootable chunked image from a root filesystem or a container image",
		Description: help("compose-image"),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory to compose"},
			&cli.StringFlag{Name: "from", Usage: "container image to flatten and compose (oci:, oci-archive:, docker://)"},
			&cli.StringFlag{Name: "output", Required: true, Usage: "where to write the image (oci:DIR[:TAG], oci-archive:FILE, docker://REF)"},
			&cli.StringFlag{Name: "repo", Usage: "OSTree repository to commit into (default: a scratch repository)"},
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Value: "bootc/compose", Usage: "branch of the commit in the repository"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "commit subject (also the history entry of layer 0)"},
			&cli.StringFlag{Name: "version", Usage: "version metadata (default: VERSION_ID from os-release)"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time (default: SOURCE_DATE_EPOCH, the --from image's creation time, else now)"},
			&cli.StringFlag{Name: "sign-key", Usage: "sign the pushed image with this cosign private key (registry outputs only)"},
			&cli.StringFlag{Name: "sign-passphrase-file", Usage: "read the --sign-key passphrase from this file (first line; default: $COSIGN_PASSWORD, else empty)"},
		}, imageFlags()...),
		Action: runComposeImage,
	}
}

func runComposeImage(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "image takes no arguments")
	}
	src := compose.Source{Rootfs: c.String("rootfs")}
	if (src.Rootfs == "") == (c.String("from") == "") {
		return usageError(c, "give exactly one of --rootfs DIR and --from IMAGE")
	}
	target, err := imgref.Parse(c.String("output"))
	if err != nil {
		return usageError(c, "--output: %v", err)
	}
	signer, err := loadSigner(c, target)
	if err != nil {
		return err
	}
	if signer != nil {
		defer signer.Close()
	}
	opts, done, err := imageOptions(c)
	if err != nil {
		return err
	}
	defer done()
	commitOpts, err := commitOptions(c)
	if err != nil {
		return err
	}
	if from := c.String("from"); from != "" {
		ref, err := imgref.Parse(from)
		if err != nil {
			return usageError(c, "--from: %v", err)
		}
		src.From = &ref
	}
	opts = append(append(opts, commitOpts...), compose.WithRepo(c.String("repo")), compose.WithSigner(signer))
	res, err := compose.Image(c.Context, src, target, opts...)
	if err != nil {
		return err
	}
	printImageSummary(c.App.Writer, res)
	return nil
}

// loadSigner loads the --sign-key key, or returns nil without --sign-key. It runs before anything
// is built, so that a bad key or passphrase changes nothing.
func loadSigner(c *cli.Context, target imgref.Ref) (*sign.Signer, error) {
	key, passFile := c.String("sign-key"), c.String("sign-passphrase-file")
	if key == "" {
		if passFile != "" {
			return nil, usageError(c, "--sign-passphrase-file needs --sign-key")
		}
		return nil, nil
	}
	if target.Transport != imgref.Registry {
		return nil, usageError(c, "--sign-key: cannot sign %s: signatures are stored as sigstore attachments in a registry, which OCI layouts, archives and containers-storage cannot hold; push to docker://REGISTRY/NAME:TAG", target)
	}
	passphrase := []byte(os.Getenv("COSIGN_PASSWORD"))
	if passFile != "" {
		b, err := os.ReadFile(passFile)
		if err != nil {
			return nil, fmt.Errorf("--sign-passphrase-file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		passphrase = []byte(strings.TrimSuffix(line, "\r"))
	}
	s, err := sign.LoadKey(key, passphrase)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w; nothing was built or pushed", err)
	}
	return s, nil
}
