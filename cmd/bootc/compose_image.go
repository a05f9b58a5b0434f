package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func composeImageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "build a bootable chunked image from a root filesystem or a container image",
		Description: `Does 'compose commit' and 'compose encapsulate' in one go. The source is a root
filesystem directory (--rootfs) or any container image (--from), whose layers
are flattened (whiteouts honoured) first. The commit goes to a scratch
repository unless --repo names one (keep a repository between builds to skip
rewriting unchanged files).

Examples:
   bootc compose image --rootfs /var/tmp/rootfs --output oci-archive:os.ociarchive
   podman build -t localhost/myos . && podman save --format oci-archive -o myos.tar localhost/myos
   bootc compose image --from oci-archive:myos.tar --output docker://127.0.0.1:5000/myos:1
   SOURCE_DATE_EPOCH=1700000000 bootc compose image --rootfs rootfs --output oci:out:1`,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory to compose"},
			&cli.StringFlag{Name: "from", Usage: "container image to flatten and compose (oci:, oci-archive:, docker://)"},
			&cli.StringFlag{Name: "output", Required: true, Usage: "where to write the image (oci:DIR[:TAG], oci-archive:FILE, docker://REF)"},
			&cli.StringFlag{Name: "repo", Usage: "OSTree repository to commit into (default: a scratch repository)"},
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Value: "bootc/compose", Usage: "branch of the commit in the repository"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "commit subject (also the history entry of layer 0)"},
			&cli.StringFlag{Name: "version", Usage: "version metadata (default: VERSION_ID from os-release)"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time (default: SOURCE_DATE_EPOCH, the --from image's creation time, else now)"},
		}, imageFlags()...),
		Action: runComposeImage,
	}
}

func runComposeImage(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "image takes no arguments")
	}
	rootfs, from := c.String("rootfs"), c.String("from")
	if (rootfs == "") == (from == "") {
		return usageError(c, "give exactly one of --rootfs DIR and --from IMAGE")
	}
	target, err := imgref.Parse(c.String("output"))
	if err != nil {
		return usageError(c, "--output: %v", err)
	}
	opts, err := imageOptions(c, target)
	if err != nil {
		return err
	}
	commitOpts := []bootable.Option{bootable.WithBranch(c.String("branch"))}
	if s := c.String("subject"); s != "" {
		commitOpts = append(commitOpts, bootable.WithSubject(s))
	}
	if v := c.String("version"); v != "" {
		commitOpts = append(commitOpts, bootable.WithVersion(v))
	}
	if ts := c.String("timestamp"); ts != "" {
		t, err := parseTimestamp(ts)
		if err != nil {
			return usageError(c, "%v", err)
		}
		commitOpts = append(commitOpts, bootable.WithTimestamp(t))
	}

	scratch, err := os.MkdirTemp("/var/tmp", "bootc-compose-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	repoPath := c.String("repo")
	if repoPath == "" {
		repoPath = filepath.Join(scratch, "repo")
	}
	repo, err := ostree.Init(c.Context, repoPath, ostree.ModeBareUser)
	if err != nil {
		return err
	}
	if from != "" {
		ref, err := imgref.Parse(from)
		if err != nil {
			return usageError(c, "--from: %v", err)
		}
		rootfs = filepath.Join(scratch, "rootfs")
		created, err := flattenImage(c, repo, ref, rootfs)
		if err != nil {
			return err
		}
		if c.String("timestamp") == "" && os.Getenv("SOURCE_DATE_EPOCH") == "" && !created.IsZero() {
			commitOpts = append(commitOpts, bootable.WithTimestamp(created))
		}
	}
	sum, err := bootable.Commit(c.Context, repo, rootfs, commitOpts...)
	if err != nil {
		return fmt.Errorf("compose: %w", err)
	}
	return buildAndWrite(c, repo, sum.String(), target, append(opts, encapsulate.WithTempDir(scratch)))
}
