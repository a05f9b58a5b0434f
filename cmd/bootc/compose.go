package main

import "github.com/urfave/cli/v2"

func composeCommand() *cli.Command {
	return &cli.Command{
		Name:  "compose",
		Usage: "build bootable OSTree commits and images from root filesystems",
		Description: `Turns a root filesystem directory (from debootstrap, dnf --installroot, an
unpacked container image, ...) into something a host can boot: a bootable OSTree
commit, with the kernel in usr/lib/modules/KVER and /etc stored as /usr/etc.

Examples:
   bootc compose commit --rootfs rootfs/ --repo repo -b debian/12/x86_64
   SOURCE_DATE_EPOCH=1700000000 bootc compose commit --rootfs rootfs/ --repo repo \
       -b debian/12/x86_64 -s "nightly" --version 12.20240501`,
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
