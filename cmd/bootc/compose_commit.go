package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/ostree"
)

func composeCommitCommand() *cli.Command {
	repo := repoFlag()
	repo.Required = false // checked by hand, so that a missing flag exits 2
	repo.Usage = "OSTree repository (required; created in mode bare-user if it does not exist)"
	return &cli.Command{
		Name:  "commit",
		Usage: "commit a root filesystem directory as a bootable OSTree commit",
		Description: `Commits the root filesystem at --rootfs to --branch of --repo as a bootable
commit, and prints the commit checksum as the last line of its output. The rootfs
is not modified; the commit gets the layout libostree and bootc boot from:
  - exactly one kernel, at usr/lib/modules/KVER/vmlinuz: Debian's
    /boot/vmlinuz-KVER and /boot/initrd.img-KVER are moved there (as vmlinuz
    and initramfs.img, with System.map and config);
  - /etc stored as /usr/etc;
  - /boot, /dev, /proc, /sys, /run and /tmp as empty directories (their
    contents are not read);
  - /var as it is;
  - metadata: the --add-metadata-string entries, version (--version, else
    VERSION_ID or VERSION from os-release), ostree.bootable=true and
    ostree.linux=KVER.
The commit time is --timestamp, else SOURCE_DATE_EPOCH, else now: with a fixed
time the same rootfs always gives the same checksum. A missing repository is
created in mode bare-user (use 'bootc ostree init' first for another mode).

Examples:
   bootc compose commit --rootfs rootfs/ --repo repo -b debian/12/x86_64
   bootc compose commit --rootfs rootfs/ --repo repo -b debian/12/x86_64 \
       -s "nightly build" --version 12.20240501 --timestamp 2024-05-01T00:00:00Z
   SOURCE_DATE_EPOCH=1700000000 bootc compose commit --rootfs rootfs/ --repo repo \
       -b test --add-metadata-string build=42 --no-bindings -q`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "rootfs", Usage: "root filesystem directory to commit (required)"},
			repo,
			&cli.StringFlag{Name: "branch", Aliases: []string{"b"}, Usage: "branch to point at the new commit (required)"},
			&cli.StringFlag{Name: "subject", Aliases: []string{"s"}, Usage: "one-line subject"},
			&cli.StringFlag{Name: "body", Aliases: []string{"m"}, Usage: "full description"},
			&cli.StringFlag{Name: "version", Usage: "the version metadata (default: VERSION_ID or VERSION from the rootfs's os-release; an empty value for none)"},
			&cli.StringFlag{Name: "timestamp", Usage: "commit time: RFC 3339, 'YYYY-MM-DD HH:MM:SS [UTC|±hhmm]' or @UNIXSECONDS (default: SOURCE_DATE_EPOCH, else now)"},
			&cli.StringSliceFlag{Name: "add-metadata-string", Usage: "add metadata KEY=VALUE (repeatable)"},
			&cli.BoolFlag{Name: "no-bindings", Usage: "do not add the ostree.ref-binding metadata"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or log on stderr"},
		},
		Action:       runComposeCommit,
		OnUsageError: composeUsageError,
	}
}

func runComposeCommit(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError(c, "unexpected argument %q: give the root filesystem with --rootfs", c.Args().First())
	}
	for _, f := range []string{"rootfs", "repo", "branch"} {
		if c.String(f) == "" {
			return usageError(c, "--%s is required", f)
		}
	}
	rootfs, repoPath := c.String("rootfs"), c.String("repo")
	opts := []bootable.Option{
		bootable.WithBranch(c.String("branch")),
		bootable.WithSubject(c.String("subject")),
		bootable.WithBody(c.String("body")),
	}
	if c.IsSet("version") {
		opts = append(opts, bootable.WithVersion(c.String("version")))
	}
	if ts := c.String("timestamp"); ts != "" {
		t, err := parseTimestamp(ts)
		if err != nil {
			return usageError(c, "%v", err)
		}
		opts = append(opts, bootable.WithTimestamp(t))
	}
	for _, kv := range c.StringSlice("add-metadata-string") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError(c, "--add-metadata-string %q: expected KEY=VALUE", kv)
		}
		opts = append(opts, bootable.WithMetadataString(k, v))
	}
	if c.Bool("no-bindings") {
		opts = append(opts, bootable.WithoutBindings())
	}
	if !c.Bool("quiet") {
		p := newProgress(c.App.ErrWriter)
		defer p.done()
		opts = append(opts, bootable.WithLogger(stderrLogger(progressAwareWriter{p})))
		opts = append(opts, bootable.WithProgress(func(cp ostree.CommitProgress) {
			p.update("committing: %d files, %s read, %d new objects", cp.Files, humanBytes(cp.Bytes), cp.NewObjects)
		}))
	}
	// Check the rootfs before creating a repository for it.
	if st, err := os.Stat(rootfs); err != nil {
		return fmt.Errorf("--rootfs: %w", err)
	} else if !st.IsDir() {
		return fmt.Errorf("--rootfs %s is not a directory", rootfs)
	}
	repo, err := openOrInitRepo(c, repoPath)
	if err != nil {
		return err
	}
	sum, err := bootable.Commit(c.Context, repo, rootfs, opts...)
	if err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, sum)
	return nil
}

// openOrInitRepo opens the repository at path, first creating it in mode bare-user if path does
// not exist or is an empty directory.
func openOrInitRepo(c *cli.Context, path string) (*ostree.Repo, error) {
	entries, err := os.ReadDir(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(entries) == 0) {
		repo, err := ostree.Init(c.Context, path, ostree.ModeBareUser)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(c.App.ErrWriter, "created repository %s in mode bare-user\n", path)
		return repo, nil
	}
	return ostree.Open(c.Context, path)
}

// stderrLogger logs Info and above to w as plain key=value lines, without timestamps.
func stderrLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// progressAwareWriter writes log lines through p, clearing a progress line drawn on a terminal
// first so that the two do not share a line.
type progressAwareWriter struct{ p *progress }

func (w progressAwareWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.tty && w.p.drawn {
		fmt.Fprint(w.p.w, "\r\033[K")
		w.p.drawn = false
	}
	return w.p.w.Write(b)
}
