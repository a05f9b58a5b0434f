package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// bootc is also ostree-ext's `ostree container` extension, as upstream bootc is: the ostree CLI
// runs `ostree container ARGS...` as /usr/libexec/libostree/ext/ostree-container (else
// ostree-container on $PATH) with argv ["ostree-container", "container", ARGS...] (ostree's
// src/ostree/main.c, ot-main.c), and images/debian-bootable installs that path as a symlink to
// bootc. Of that CLI bootc has what Podman Machine runs, `image metadata` (podman
// pkg/machine/os/bootc.go: `ostree container image metadata --repo /ostree/repo docker://REF`).

// ostreeContainerName is the extension's program name, and the hidden `bootc internals` command.
const ostreeContainerName = "ostree-container"

// ostreeContainerArgs maps a call as ostree-container to `bootc internals ostree-container
// ARGS...`, and refuses, for both forms, the ostree-ext commands bootc lacks. Other calls are
// returned unchanged.
func ostreeContainerArgs(args []string) ([]string, error) {
	var rest []string
	switch {
	case len(args) > 0 && filepath.Base(args[0]) == ostreeContainerName:
		rest = args[1:]
		if len(rest) > 0 && rest[0] == "container" {
			rest = rest[1:]
		}
	case len(args) > 2 && args[1] == "internals" && args[2] == ostreeContainerName:
		rest = args[3:]
	default:
		return args, nil
	}
	var words []string // the command words: what precedes the first flag
	for _, a := range rest {
		if strings.HasPrefix(a, "-") {
			break
		}
		words = append(words, a)
	}
	if len(words) == 0 || len(words) < 2 && slices.ContainsFunc(rest, func(a string) bool { return a == "-h" || a == "--help" }) ||
		len(words) >= 2 && words[0] == "image" && words[1] == "metadata" {
		return append([]string{"bootc", "internals", ostreeContainerName}, rest...), nil
	}
	verb := words[:min(len(words), 1)]
	if len(words) > 1 && words[0] == "image" { // ostree-ext's only command group
		verb = words[:2]
	}
	return nil, fmt.Errorf("ostree container %s: not supported by bootc's ostree-container, which has only 'image metadata --repo REPO [--config] IMAGE' (use bootc switch, upgrade and status for the rest)", strings.Join(verb, " "))
}

// ostreeContainerCommand is the hidden `bootc internals ostree-container`.
func ostreeContainerCommand() *cli.Command {
	metadata := &cli.Command{Name: "metadata", ArgsUsage: "IMAGE",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "repo", Required: true, Usage: "the ostree repository, e.g. /ostree/repo"},
			&cli.BoolFlag{Name: "config", Usage: "print the image's config, not its manifest"},
		},
		Action: cliargs.WithArgs(1, 1, "one image reference (docker://NAME, registry:NAME, oci:DIR, ...)", runImageMetadata)}
	return &cli.Command{Name: ostreeContainerName, Hidden: true, Subcommands: []*cli.Command{
		{Name: "image", Subcommands: []*cli.Command{metadata}}}}
}

// runImageMetadata prints the stored manifest (or config) of an image, as ostree-ext does.
func runImageMetadata(c *cli.Context) error {
	arg := c.Args().First()
	ref, err := imgref.Parse(arg)
	if strings.HasPrefix(arg, "ostree-") { // ostree-ext wants the base form; the full one is harmless
		var o imgref.OstreeRef
		o, err = imgref.ParseOstree(arg)
		ref = o.Image
	}
	if err != nil {
		return cliargs.Errorf(c, "%v", err)
	}
	repo, err := ostree.Open(c.Context, c.String("repo"))
	if err != nil {
		return err
	}
	st, err := imagestore.FindImage(repo, ref)
	if err != nil {
		return fmt.Errorf("no such image in %s: %w", c.String("repo"), err)
	}
	out, err := imagestore.MetadataJSON(st, c.Bool("config"))
	if err != nil {
		return err
	}
	_, err = c.App.Writer.Write(out)
	return err
}
