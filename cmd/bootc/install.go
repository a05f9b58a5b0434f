package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	units "github.com/docker/go-units"
	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/ignition"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/install"
)

func installCommand() *cli.Command {
	return &cli.Command{
		Name: "install",
		Subcommands: []*cli.Command{{
			Name: "to-filesystem", ArgsUsage: "ROOT", Action: cliargs.WithArgs(1, 1, "the ROOT directory as the one argument", runInstallToFilesystem),
			Flags: installFlags("a kernel argument for the boot entry (repeatable)"),
		}, {
			Name: "to-disk", ArgsUsage: "DEVICE|FILE", Action: cliargs.WithArgs(1, 1, "the DEVICE or FILE as the one argument", runInstallToDisk),
			Flags: append(installFlags("a kernel argument for the boot entry, after root=UUID=… rw (repeatable)"),
				&cli.StringFlag{Name: "filesystem", Value: "ext4", Usage: "the root filesystem: ext4 or xfs (xfs needs --via-loopback)"},
				&cli.BoolFlag{Name: "via-loopback", Usage: "make the filesystem on a loop device and install into it mounted"},
				&cli.StringFlag{Name: "size", Usage: "size of a disk image FILE to create or grow, such as 8G or 10240M (default 10G for a new file)"},
				&cli.BoolFlag{Name: "wipe", Usage: "erase a target that holds a partition table or data"},
				&cli.StringFlag{Name: "bootloader", Value: "grub", Usage: "grub (GRUB from the image, for BIOS and UEFI) or none (one root partition, no bootloader)"},
			),
		}},
	}
}

// installFlags are the flags both install verbs take.
func installFlags(kargUsage string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "source-imgref", Required: true, Usage: "the image to install (required): docker://, oci:, oci-archive:, containers-storage:, or ostree-…:"},
		&cli.StringFlag{Name: "target-imgref", Usage: "the image the installed host follows (default: the source)"},
		&cli.StringFlag{Name: "stateroot", Value: "default", Usage: "the stateroot (ostree \"os\") to deploy into"},
		&cli.StringSliceFlag{Name: "karg", Usage: kargUsage},
		&cli.StringFlag{Name: "ignition", Usage: "apply this Ignition config (spec 3.x, JSON) to the new deployment: files, directories and links under /etc, /var and /home, users, groups, systemd units", TakesFile: true},
		&cli.StringFlag{Name: "root-ssh-authorized-keys", Usage: "give root the SSH keys in this authorized_keys file (written as a systemd-tmpfiles snippet in /etc/tmpfiles.d)", TakesFile: true},
		enforceFlag(), quietFlag(),
	}
}

func runInstallToFilesystem(c *cli.Context) error {
	in, err := installArgs(c)
	if err != nil {
		return err
	}
	opts, done := hostOptions(c)
	res, err := host.InstallToFilesystem(c.Context, c.Args().First(), in, opts...)
	if done(); errors.Is(err, host.ErrInvalidInstall) {
		return cliargs.Errorf(c, "%v", err)
	} else if err != nil {
		return err
	}
	printInstalled(c.App.Writer, res, c.Args().First())
	return nil
}

// installArgs reads what both install verbs take from their flags.
func installArgs(c *cli.Context) (host.Install, error) {
	src, err := imageArg(c, "--source-imgref", c.String("source-imgref"), imgref.Parse)
	if err != nil {
		return host.Install{}, err
	}
	in := host.Install{Source: src, Stateroot: c.String("stateroot"), Kargs: c.StringSlice("karg")}
	if t := c.String("target-imgref"); t != "" {
		target, err := imageArg(c, "--target-imgref", t, imgref.Parse)
		if err != nil {
			return host.Install{}, err
		}
		in.Target = &target
	}
	if err := (host.Install{Stateroot: in.Stateroot}).Validate(); err != nil || in.Stateroot == "" {
		return in, cliargs.Errorf(c, "--stateroot %q: use a plain name such as default or fedora", in.Stateroot)
	}
	if err := provisionArgs(c, &in); err != nil {
		return in, err
	}
	return in, nil
}

// provisionArgs reads --ignition (parsed here, so that a refused config stops the install
// before anything is written) and --root-ssh-authorized-keys.
func provisionArgs(c *cli.Context, in *host.Install) error {
	if f := c.String("ignition"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--ignition: %w", err)
		}
		if in.Ignition, err = ignition.Parse(b); err != nil {
			return fmt.Errorf("--ignition %s: %w", f, err)
		}
	}
	if f := c.String("root-ssh-authorized-keys"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("--root-ssh-authorized-keys: %w", err)
		}
		if _, err := host.RootSSHTmpfiles(b); err != nil {
			return cliargs.Errorf(c, "--root-ssh-authorized-keys %s: %v", f, err)
		}
		in.RootSSHAuthorizedKeys = b
	}
	return nil
}

// printInstalled says what an install did; where names the target.
func printInstalled(w io.Writer, res *host.InstallResult, where string) {
	printDeployed(w, res.Deployed)
	if res.RootSSHKeys != "" {
		fmt.Fprintf(w, "Root's SSH keys: %s (systemd-tmpfiles creates /root/.ssh/authorized_keys at boot)\n", res.RootSSHKeys)
	}
	if r := res.Ignition; r != nil {
		fmt.Fprintf(w, "Applied the Ignition config: %d paths written; users: %s; groups: %s; enabled: %s; masked: %s\n",
			len(r.Written), listOrNone(r.Users), listOrNone(r.Groups), listOrNone(r.Enabled), listOrNone(r.Masked))
	}
	fmt.Fprintf(w, "Installed %s %s into %s (stateroot %s)\n", res.Target.Image, describe(res.Deployed.Deployment, res.Pulled.State), where, res.Stateroot)
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func runInstallToDisk(c *cli.Context) error {
	in, err := installArgs(c)
	if err != nil {
		return err
	}
	opts := append(boolOptions(c, map[string]install.Option{"via-loopback": install.ViaLoopback(), "wipe": install.Wipe()}), install.WithFilesystem(c.String("filesystem")), install.WithBootloader(c.String("bootloader")))
	if s := c.String("size"); s != "" {
		n, err := units.RAMInBytes(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			return cliargs.Errorf(c, "--size %q: expected a size such as 8G, 512M or a number of bytes", s)
		}
		opts = append(opts, install.WithSize(n))
	}
	hostOpts, done := hostOptions(c)
	defer done()
	out, size := c.App.Writer, func(n int64) string { return units.BytesSize(float64(n)) }
	opts = append(opts, install.WithHostOptions(hostOpts...), install.WithProgress(func(e install.Event) {
		switch e := e.(type) {
		case install.Installed:
			done()
			printInstalled(out, e.Result, e.Where)
		case install.Partitioning:
			fmt.Fprintf(out, "Partitioning %s (%s): GPT, root partition %s\n", e.Path, size(e.DiskSize), size(e.PartitionSize))
		case install.MakingFilesystem:
			fmt.Fprintf(out, "Creating the %s filesystem on %s\n", e.Filesystem, e.Device)
		case install.WritingFilesystem:
			fmt.Fprintf(out, "Writing the %s filesystem (%s) into partition %d\n", e.Filesystem, size(e.Size), e.Partition)
		case install.InstallingBootloader:
			fmt.Fprintln(out, "Installing GRUB: core.img into partition 1 and the MBR, EFI/BOOT/BOOTX64.EFI onto partition 2")
		}
	}))
	res, err := install.ToDisk(c.Context, c.Args().First(), in, opts...)
	if errors.Is(err, install.ErrInvalidTarget) || errors.Is(err, host.ErrInvalidInstall) {
		return cliargs.Errorf(c, "%v", err)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(out, "Installed to %s: GPT, partition %d %s root filesystem UUID=%s, %s\n", res.Path, res.RootPartition, res.Filesystem, res.UUID, size(res.PartitionSize))
	how := map[string]string{"grub": "Boots with GRUB (BIOS and UEFI)", "none": "Boot with the default entry in /boot/loader/entries"}[res.Bootloader]
	fmt.Fprintf(out, "%s (options: %s ostree=…)\n", how, strings.Join(res.Kargs, " "))
	return nil
}
