package main

import (
	"errors"
	"fmt"
	"strings"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/install"
)

func installToDiskCommand() *cli.Command {
	return &cli.Command{
		Name:        "to-disk",
		Usage:       "partition a disk (or disk image file), make the root filesystem and install into it",
		ArgsUsage:   "DEVICE|FILE",
		Description: help("install-to-disk"),
		Flags: append(installFlags("a kernel argument for the boot entry, after root=UUID=… rw (repeatable)"),
			&cli.StringFlag{Name: "filesystem", Value: "ext4", Usage: "the root filesystem: ext4 or xfs (xfs needs --via-loopback)"},
			&cli.BoolFlag{Name: "via-loopback", Usage: "make the filesystem on a loop device and install into it mounted"},
			&cli.StringFlag{Name: "size", Usage: "size of a disk image FILE to create or grow, such as 8G or 10240M (default 10G for a new file)"},
			&cli.BoolFlag{Name: "wipe", Usage: "erase a target that holds a partition table or data"},
		),
		Action: runInstallToDisk,
	}
}

func runInstallToDisk(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "expected the DEVICE or FILE as the one argument, got %d arguments", c.NArg())
	}
	in, err := installArgs(c)
	if err != nil {
		return err
	}
	opts := []install.Option{install.WithFilesystem(c.String("filesystem"))}
	if s := c.String("size"); s != "" {
		n, err := units.RAMInBytes(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return usageError(c, "--size %q: expected a size such as 8G, 512M or a number of bytes", s)
		}
		opts = append(opts, install.WithSize(n))
	}
	if c.Bool("via-loopback") {
		opts = append(opts, install.ViaLoopback())
	}
	if c.Bool("wipe") {
		opts = append(opts, install.Wipe())
	}
	hostOpts, done := hostOptions(c)
	defer done()
	out := c.App.Writer
	opts = append(opts, install.WithHostOptions(hostOpts...), install.WithProgress(func(e install.Event) {
		switch e := e.(type) {
		case install.Installed:
			done()
			printInstalled(out, e.Result, e.Where)
		case install.Partitioning:
			fmt.Fprintf(out, "Partitioning %s (%s): GPT, root partition %s\n", e.Path, humanBytes(e.DiskSize), humanBytes(e.PartitionSize))
		case install.MakingFilesystem:
			fmt.Fprintf(out, "Creating the %s filesystem on %s\n", e.Filesystem, e.Device)
		case install.WritingFilesystem:
			fmt.Fprintf(out, "Writing the %s filesystem (%s) into partition 1\n", e.Filesystem, humanBytes(e.Size))
		}
	}))
	res, err := install.ToDisk(c.Context, c.Args().First(), in, opts...)
	if errors.Is(err, install.ErrInvalidTarget) {
		return usageError(c, "%v", err)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(out, "Installed to %s: GPT, partition 1 %s root filesystem UUID=%s, %s\n", res.Path, res.Filesystem, res.UUID, humanBytes(res.PartitionSize))
	fmt.Fprintf(out, "Boot with the default entry in /boot/loader/entries (options: %s ostree=…)\n", strings.Join(res.Kargs, " "))
	return nil
}
