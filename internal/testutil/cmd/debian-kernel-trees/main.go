// Command debian-kernel-trees prints the paths of two cached Debian bookworm
// root filesystems with a kernel, building them first if needed (needs root,
// debootstrap, chroot and network access to the host's Debian mirror):
//
//   - v1: debootstrap --variant=minbase --include=PACKAGES bookworm, from the
//     bookworm suite only, where PACKAGES depends on the corpus (-corpus):
//     "kernel" (the default): linux-image-amd64;
//     "server": systemd-sysv,linux-image-amd64,ostree-boot,openssh-server,
//     ca-certificates (a small server host, as users build);
//   - v2: a copy of v1 (cp -a) after `apt-get update && apt-get -y upgrade`
//     in a chroot whose sources are bookworm, bookworm-updates and
//     bookworm-security.
//
// It prints the v1 rootfs on the first line and the v2 rootfs on the second
// (with -only v1, just the v1 rootfs). Next to each rootfs, packages.txt holds
// `dpkg-query -W` of the tree (sorted) and, for v2, upgrade.log the apt
// output. Both trees are sanitized like testutil.DebianTree (empty /dev, no
// sockets, FIFOs or device nodes) and shared between runs: treat them as
// read-only.
//
//	go run ./internal/testutil/cmd/debian-kernel-trees [-cache DIR] [-corpus kernel|server] [-only v1]
//
// Each corpus has its own cache entries, debian-bookworm-CORPUS-v1 and -v2,
// and its own lock, debian-bookworm-CORPUS.lock.
//
// Both trees get what an image build does at its end: `apt-get clean` and
// `rm -rf /var/lib/apt/lists/*` (debootstrap leaves its .debs and the
// bookworm index behind). v2 differs from v1 only by what the upgrade
// changed: the chroot set-up (sources.list, resolv.conf, the host's
// apt.conf.d files, policy-rc.d, /proc, /dev/pts, device nodes) is undone
// afterwards.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/testutil"
)

const (
	suite   = "bookworm"
	marker  = "complete"
	retries = 3
	// treeFormat is bumped whenever the way the trees are built changes, so
	// that trees cached by an older version get rebuilt.
	treeFormat  = "format=2"
	chrootPATH  = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	hostAptConf = "/etc/apt/apt.conf.d"
	hostResolv  = "/etc/resolv.conf"
)

// corpus is one pair of trees: what v1 installs and where both are cached.
type corpus struct {
	name    string // the corpus name of -corpus
	include string // debootstrap's --include
}

var corpora = []corpus{
	{name: "kernel", include: "linux-image-amd64"},
	{name: "server", include: "systemd-sysv,linux-image-amd64,ostree-boot,openssh-server,ca-certificates"},
}

func (c corpus) v1Name() string   { return "debian-bookworm-" + c.name + "-v1" }
func (c corpus) v2Name() string   { return "debian-bookworm-" + c.name + "-v2" }
func (c corpus) lockName() string { return "debian-bookworm-" + c.name + ".lock" }

func main() {
	cacheDir := flag.String("cache", testutil.CacheDir(), "cache directory (default from $BOOTC_TEST_CACHE)")
	corpusName := flag.String("corpus", "kernel", `which trees: "kernel" (minbase + linux-image-amd64) or "server" (+ systemd-sysv, ostree-boot, openssh-server, ca-certificates)`)
	only := flag.String("only", "", `build and print only this tree ("v1")`)
	flag.Parse()
	if *only != "" && *only != "v1" {
		fmt.Fprintf(os.Stderr, "debian-kernel-trees: -only: want v1, got %q\n", *only)
		os.Exit(2)
	}
	i := slices.IndexFunc(corpora, func(c corpus) bool { return c.name == *corpusName })
	if i < 0 {
		fmt.Fprintf(os.Stderr, "debian-kernel-trees: -corpus: want kernel or server, got %q\n", *corpusName)
		os.Exit(2)
	}
	c := corpora[i]
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "debian-kernel-trees: needs root (debootstrap, chroot, mount)")
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	v1, v2, err := build(ctx, c, *cacheDir, *only == "v1")
	if err != nil {
		fmt.Fprintf(os.Stderr, "debian-kernel-trees: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(v1)
	if v2 != "" {
		fmt.Println(v2)
	}
}

func build(ctx context.Context, c corpus, cacheDir string, onlyV1 bool) (v1, v2 string, err error) {
	v1Dir := filepath.Join(cacheDir, c.v1Name())
	v2Dir := filepath.Join(cacheDir, c.v2Name())
	v1Marker, _ := os.ReadFile(filepath.Join(v1Dir, marker))
	v2Marker, _ := os.ReadFile(filepath.Join(v2Dir, marker))
	if v1Valid(v1Marker) && (onlyV1 || v2Matches(v2Marker, v1Marker)) {
		return result(v1Dir, v2Dir, onlyV1)
	}

	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", "", fmt.Errorf("create cache dir: %w", err)
	}
	unlock, err := testutil.LockFile(ctx, filepath.Join(cacheDir, c.lockName()))
	if err != nil {
		return "", "", err
	}
	defer unlock()

	// Another process may have built them while we waited.
	if m, _ := os.ReadFile(filepath.Join(v1Dir, marker)); !v1Valid(m) {
		start := time.Now()
		if err := buildV1(ctx, c, cacheDir); err != nil {
			return "", "", fmt.Errorf("build v1: %w", err)
		}
		fmt.Fprintf(os.Stderr, "debian-kernel-trees: built %s in %s\n", v1Dir, time.Since(start).Round(time.Second))
	}
	if onlyV1 {
		return result(v1Dir, v2Dir, true)
	}
	v1Marker, err = os.ReadFile(filepath.Join(v1Dir, marker))
	if err != nil {
		return "", "", err
	}
	v2Marker, _ = os.ReadFile(filepath.Join(v2Dir, marker))
	if !v2Matches(v2Marker, v1Marker) {
		start := time.Now()
		if err := buildV2(ctx, c, cacheDir, v1Marker); err != nil {
			return "", "", fmt.Errorf("build v2: %w", err)
		}
		fmt.Fprintf(os.Stderr, "debian-kernel-trees: built %s in %s\n", v2Dir, time.Since(start).Round(time.Second))
	}
	return result(v1Dir, v2Dir, false)
}

func result(v1Dir, v2Dir string, onlyV1 bool) (string, string, error) {
	if onlyV1 {
		return filepath.Join(v1Dir, "rootfs"), "", nil
	}
	return filepath.Join(v1Dir, "rootfs"), filepath.Join(v2Dir, "rootfs"), nil
}

// v1Valid reports whether v1's marker is that of a complete tree built the
// current way.
func v1Valid(m []byte) bool {
	return m != nil && slices.Contains(strings.Split(string(m), "\n"), treeFormat)
}

// v2Matches reports whether v2's marker says it was built from the v1 tree
// whose marker is v1Marker (a rebuilt v1 invalidates v2).
func v2Matches(v2Marker, v1Marker []byte) bool {
	if v2Marker == nil || !v1Valid(v1Marker) {
		return false
	}
	return slices.Contains(strings.Split(string(v2Marker), "\n"), "base="+builtStamp(v1Marker))
}

func builtStamp(m []byte) string {
	for line := range strings.SplitSeq(string(m), "\n") {
		if v, ok := strings.CutPrefix(line, "built="); ok {
			return v
		}
	}
	return ""
}

// prepare removes leftovers of interrupted builds of name and returns a new
// temporary directory for it.
func prepare(cacheDir, name string) (string, error) {
	stale, _ := filepath.Glob(filepath.Join(cacheDir, name+".tmp-*"))
	if _, err := os.Lstat(filepath.Join(cacheDir, name)); err == nil {
		stale = append(stale, filepath.Join(cacheDir, name))
	}
	for _, dir := range stale {
		if err := testutil.RemoveTree(dir); err != nil {
			return "", fmt.Errorf("remove stale %s: %w", dir, err)
		}
	}
	tmp, err := os.MkdirTemp(cacheDir, name+".tmp-")
	if err != nil {
		return "", fmt.Errorf("create temporary dir: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		_ = testutil.RemoveTree(tmp)
		return "", err
	}
	return tmp, nil
}

func buildV1(ctx context.Context, c corpus, cacheDir string) (err error) {
	mirror, err := testutil.DebianMirror(suite)
	if err != nil {
		return err
	}
	tmp, err := prepare(cacheDir, c.v1Name())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = testutil.RemoveTree(tmp)
		}
	}()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := debootstrap(ctx, rootfs, mirror, c.include); err != nil {
		return err
	}
	if err := testutil.UnmountUnder(rootfs); err != nil {
		return err
	}
	content := fmt.Sprintf("%s\nsuite=%s\nvariant=minbase\ninclude=%s\nbuilt=%s\n",
		treeFormat, suite, c.include, time.Now().UTC().Format(time.RFC3339Nano))
	if err := finishTree(ctx, tmp, rootfs, content); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(cacheDir, c.v1Name()))
}

func debootstrap(ctx context.Context, target, mirror, include string) error {
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		if _, statErr := os.Stat("/usr/sbin/debootstrap"); statErr != nil {
			return fmt.Errorf("find debootstrap (apt-get install debootstrap): %w", err)
		}
		bin = "/usr/sbin/debootstrap"
	}
	return retry(ctx, "debootstrap", func() error {
		if err := testutil.RemoveTree(target); err != nil {
			return err
		}
		return run(ctx, nil, bin, "--variant=minbase", "--include="+include, suite, target, mirror)
	}, func() { _ = testutil.UnmountUnder(target) })
}

// chrootSetup records what was done to a tree to run apt in it, so that it
// can be undone.
type chrootSetup struct {
	root     string
	mounted  []string
	added    []string          // files created, removed on undo
	replaced map[string]string // path -> backup path, renamed back on undo
}

func (s *chrootSetup) path(p string) string { return filepath.Join(s.root, p) }

// replace moves the tree's file at p aside (if any) and writes data there.
func (s *chrootSetup) replace(p string, data []byte, mode os.FileMode) error {
	full := s.path(p)
	if _, err := os.Lstat(full); err == nil {
		backup := full + ".bench-orig"
		if err := os.Rename(full, backup); err != nil {
			return err
		}
		s.replaced[full] = backup
	} else {
		s.added = append(s.added, full)
	}
	return os.WriteFile(full, data, mode)
}

func (s *chrootSetup) undo() error {
	var errs []error
	for _, mp := range slices.Backward(s.mounted) {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", mp, err))
		}
	}
	s.mounted = nil
	for _, p := range s.added {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	s.added = nil
	for full, backup := range s.replaced {
		if err := os.Remove(full); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		if err := os.Rename(backup, full); err != nil {
			errs = append(errs, err)
		}
	}
	clear(s.replaced)
	return errors.Join(errs...)
}

func (s *chrootSetup) setup(sources string) error {
	// Device nodes apt and dpkg maintainer scripts expect (SanitizeTree
	// removes them again).
	devs := []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}}
	for _, d := range devs {
		p := s.path("dev/" + d.name)
		_ = os.Remove(p)
		if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(d.major, d.minor))); err != nil {
			return fmt.Errorf("mknod %s: %w", p, err)
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	proc := s.path("proc")
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount %s: %w", proc, err)
	}
	s.mounted = append(s.mounted, proc)
	// A private devpts, so that apt can log through a pty.
	pts := s.path("dev/pts")
	if err := os.MkdirAll(pts, 0o755); err != nil {
		return err
	}
	if err := unix.Mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return fmt.Errorf("mount %s: %w", pts, err)
	}
	s.mounted = append(s.mounted, pts)
	if err := os.Symlink("pts/ptmx", s.path("dev/ptmx")); err != nil {
		return err
	}

	if err := s.replace("etc/apt/sources.list", []byte(sources), 0o644); err != nil {
		return err
	}
	if data, err := os.ReadFile(hostResolv); err == nil {
		if err := s.replace("etc/resolv.conf", data, 0o644); err != nil {
			return err
		}
	}
	// The host's APT settings (proxy, Check-Valid-Until for a snapshot
	// mirror, ...); files the tree already has are left as they are.
	entries, _ := os.ReadDir(hostAptConf)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		dst := s.path(filepath.Join("etc/apt/apt.conf.d", e.Name()))
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(hostAptConf, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			return err
		}
		s.added = append(s.added, dst)
	}
	// Keep maintainer scripts from starting services.
	return s.replace("usr/sbin/policy-rc.d", []byte("#!/bin/sh\nexit 101\n"), 0o755)
}

func buildV2(ctx context.Context, c corpus, cacheDir string, v1Marker []byte) (err error) {
	var sources strings.Builder
	for _, s := range []string{suite, suite + "-updates", suite + "-security"} {
		m, err := testutil.DebianMirror(s)
		if err != nil {
			return err
		}
		fmt.Fprintf(&sources, "deb %s %s main\n", m, s)
	}
	tmp, err := prepare(cacheDir, c.v2Name())
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = testutil.RemoveTree(tmp)
		}
	}()
	v1Root := filepath.Join(cacheDir, c.v1Name(), "rootfs")
	rootfs := filepath.Join(tmp, "rootfs")
	if err := run(ctx, nil, "cp", "-a", v1Root, rootfs); err != nil {
		return err
	}

	logf, err := os.Create(filepath.Join(tmp, "upgrade.log"))
	if err != nil {
		return err
	}
	defer logf.Close()

	s := &chrootSetup{root: rootfs, replaced: map[string]string{}}
	defer func() {
		if undoErr := s.undo(); undoErr != nil && err == nil {
			err = undoErr
		}
	}()
	if err := s.setup(sources.String()); err != nil {
		return err
	}
	fmt.Fprintf(logf, "# sources.list:\n%s\n", sources.String())
	apt := func(args ...string) error {
		full := append([]string{rootfs, "apt-get", "-q",
			"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}, args...)
		fmt.Fprintf(logf, "# chroot %s\n", strings.Join(full, " "))
		return run(ctx, logf, "chroot", full...)
	}
	for _, args := range [][]string{{"update"}, {"-y", "upgrade"}} {
		if err := retry(ctx, "apt-get "+strings.Join(args, " "), func() error { return apt(args...) }, nil); err != nil {
			return err
		}
	}
	if err := apt("clean"); err != nil {
		return err
	}
	if err := s.undo(); err != nil {
		return err
	}
	content := fmt.Sprintf("%s\nsuite=%s\nsuites=%s %s-updates %s-security\ncommand=apt-get upgrade\nbase=%s\nbuilt=%s\n",
		treeFormat, suite, suite, suite, suite, builtStamp(v1Marker), time.Now().UTC().Format(time.RFC3339Nano))
	if err := finishTree(ctx, tmp, rootfs, content); err != nil {
		return err
	}
	if err := logf.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(cacheDir, c.v2Name()))
}

// finishTree readies a built tree for the cache: APT's leftovers and special files removed, the
// package list written beside it, then the marker (last, so that it vouches for the rest).
func finishTree(ctx context.Context, tmp, rootfs, content string) error {
	if err := cleanApt(rootfs); err != nil {
		return err
	}
	if err := testutil.SanitizeTree(rootfs); err != nil {
		return err
	}
	if err := writePackages(ctx, rootfs, filepath.Join(tmp, "packages.txt")); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(tmp, marker), []byte(content), 0o644)
}

// cleanApt removes APT's package cache and indexes from the tree, as an image
// build does (`apt-get clean && rm -rf /var/lib/apt/lists/*`): debootstrap
// leaves the .debs it installed and the bookworm index behind, and they are
// no part of the OS.
func cleanApt(rootfs string) error {
	var paths []string
	for _, pattern := range []string{
		"var/cache/apt/archives/*.deb", "var/cache/apt/archives/partial/*", "var/cache/apt/*.bin",
		"var/lib/apt/lists/*", "var/lib/apt/lists/partial/*",
	} {
		m, err := filepath.Glob(filepath.Join(rootfs, pattern))
		if err != nil {
			return err
		}
		paths = append(paths, m...)
	}
	for _, p := range paths {
		if filepath.Base(p) == "partial" {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}

// writePackages writes `dpkg-query -W` of the tree at rootfs, sorted.
func writePackages(ctx context.Context, rootfs, dst string) error {
	cmd := exec.CommandContext(ctx, "dpkg-query", "--admindir="+filepath.Join(rootfs, "var/lib/dpkg"), "-W")
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("dpkg-query: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	slices.Sort(lines)
	return os.WriteFile(dst, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// retry runs f up to `retries` times (transient mirror errors), with a
// growing pause; cleanup runs after the last failure.
func retry(ctx context.Context, what string, f func() error, cleanup func()) error {
	var errs []error
	for attempt := 1; attempt <= retries; attempt++ {
		if attempt > 1 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", what, ctx.Err())
			case <-time.After(time.Duration(attempt) * 5 * time.Second):
			}
			fmt.Fprintf(os.Stderr, "debian-kernel-trees: retrying %s (attempt %d/%d)\n", what, attempt, retries)
		}
		err := f()
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s attempt %d/%d: %w", what, attempt, retries, err))
		if ctx.Err() != nil {
			break
		}
	}
	if cleanup != nil {
		cleanup()
	}
	return errors.Join(errs...)
}

// run runs a command in its own process group (cancelling ctx kills the
// whole group), with a clean environment. Its output goes to log if given;
// otherwise the tail of it is returned with a failure.
func run(ctx context.Context, log io.Writer, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{chrootPATH, "DEBIAN_FRONTEND=noninteractive", "DEBCONF_NONINTERACTIVE_SEEN=true",
		"LC_ALL=C", "HOME=/root", "TERM=dumb"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Stdin = nil
	tail := testutil.NewTailBuffer(16 << 10)
	if log != nil {
		cmd.Stdout = io.MultiWriter(log, tail)
	} else {
		cmd.Stdout = tail
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, tail.String())
	}
	return nil
}
