package main

import "github.com/urfave/cli/v2"

func composeCommand() *cli.Command {
	return &cli.Command{
		Name:  "compose",
		Usage: "build bootable OSTree commits and chunked images from root filesystems",
		Description: `Turns a root filesystem directory (from debootstrap, dnf --installroot, an
unpacked container image, ...) into something a host can boot: a bootable OSTree
commit, with the kernel in usr/lib/modules/KVER and /etc stored as /usr/etc
('commit'), and that commit into an OCI image split into layers by software
component ('encapsulate'); 'image' does both.

Examples:
   bootc compose commit --rootfs rootfs/ --repo repo -b debian/12/x86_64
   bootc compose encapsulate --repo repo debian/12/x86_64 oci-archive:debian.ociarchive
   SOURCE_DATE_EPOCH=1700000000 bootc compose image --rootfs rootfs/ \
       --output docker://127.0.0.1:5000/debian:12`,
		Subcommands:  composeSubcommands(),
		OnUsageError: composeUsageError,
	}
}

// composeUsageError makes a flag parsing error (an unknown flag, a bad value) exit 2, as
// usageError does.
func composeUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(c, "%v", err)
}

// composeSubcommands lists the compose subcommands, in the order --help shows them.
func composeSubcommands() []*cli.Command {
	return []*cli.Command{
		composeCommitCommand(),
		composeEncapsulateCommand(),
		composeImageCommand(),
	}
}
