package testutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/fsflags"
	"github.com/bootc-go/bootc/internal/lockfile"
)

const (
	// DefaultCacheDir holds trees that are expensive to build and shared
	// between test runs; BOOTC_TEST_CACHE overrides it.
	DefaultCacheDir = "/var/cache/bootc-tests"

	debianSuite     = "bookworm"
	debianTreeName  = "debian-bookworm-minbase"
	debianSources   = "/etc/apt/sources.list.d/debian.sources"
	debianSourceOld = "/etc/apt/sources.list"
	// completeMarker is written into the tree's directory, next to rootfs,
	// once the tree is fully built.
	completeMarker     = "complete"
	debootstrapRetries = 3
)

// CacheDir returns the test cache directory: $BOOTC_TEST_CACHE if set,
// otherwise DefaultCacheDir.
func CacheDir() string {
	if dir := os.Getenv("BOOTC_TEST_CACHE"); dir != "" {
		return dir
	}
	return DefaultCacheDir
}

// DebianTree returns the path of a cached `debootstrap --variant=minbase
// bookworm` root filesystem, building it on first use (about a minute). The
// tree is shared between tests and test runs: treat it as read-only. Its
// /dev is empty and it holds no sockets, FIFOs or device nodes, so `ostree
// commit` accepts it. Needs root and debootstrap; the test is skipped
// otherwise (failed under CI=true).
func DebianTree(t testing.TB) string {
	t.Helper()
	Root(t)
	RequireTool(t, "debootstrap")
	start := time.Now()
	rootfs, built, err := buildDebianTree(t.Context(), CacheDir())
	if err != nil {
		t.Fatalf("debian tree: %v", err)
	}
	if built {
		t.Logf("built Debian %s tree %s in %s", debianSuite, rootfs, time.Since(start).Round(time.Second))
	}
	return rootfs
}

// BuildDebianTree returns the path of the cached Debian minbase root
// filesystem under cacheDir (see DebianTree), building it if needed. Builds
// are serialised with an flock on <cacheDir>/debian-bookworm-minbase.lock,
// so concurrent callers in other processes wait for one build.
func BuildDebianTree(ctx context.Context, cacheDir string) (string, error) {
	rootfs, _, err := buildDebianTree(ctx, cacheDir)
	return rootfs, err
}

func buildDebianTree(ctx context.Context, cacheDir string) (rootfs string, built bool, err error) {
	treeDir := filepath.Join(cacheDir, debianTreeName)
	rootfs = filepath.Join(treeDir, "rootfs")
	marker := filepath.Join(treeDir, completeMarker)
	if _, err := os.Stat(marker); err == nil {
		return rootfs, false, nil
	}

	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", false, fmt.Errorf("create cache dir: %w", err)
	}
	unlock, err := LockFile(ctx, filepath.Join(cacheDir, debianTreeName+".lock"))
	if err != nil {
		return "", false, err
	}
	defer unlock()

	// Another process may have finished the build while we waited.
	if _, err := os.Stat(marker); err == nil {
		return rootfs, false, nil
	}

	// Leftovers of interrupted builds: temporary dirs and an incomplete tree.
	stale, _ := filepath.Glob(filepath.Join(cacheDir, debianTreeName+".tmp-*"))
	if _, err := os.Lstat(treeDir); err == nil {
		stale = append(stale, treeDir)
	}
	for _, dir := range stale {
		if err := RemoveTree(dir); err != nil {
			return "", false, fmt.Errorf("remove stale %s: %w", dir, err)
		}
	}

	mirror, err := DebianMirror(debianSuite)
	if err != nil {
		return "", false, err
	}
	tmp, err := os.MkdirTemp(cacheDir, debianTreeName+".tmp-")
	if err != nil {
		return "", false, fmt.Errorf("create temporary dir: %w", err)
	}
	defer func() {
		if err != nil {
			_ = RemoveTree(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", false, fmt.Errorf("chmod %s: %w", tmp, err)
	}

	tmpRootfs := filepath.Join(tmp, "rootfs")
	if err := debootstrap(ctx, tmpRootfs, mirror); err != nil {
		return "", false, err
	}
	// debootstrap unmounts what it mounted; make sure, before walking.
	if err := UnmountUnder(tmpRootfs); err != nil {
		return "", false, err
	}
	if err := SanitizeTree(tmpRootfs); err != nil {
		return "", false, err
	}
	if err := writeMarker(filepath.Join(tmp, completeMarker)); err != nil {
		return "", false, err
	}
	if err := os.Rename(tmp, treeDir); err != nil {
		return "", false, fmt.Errorf("move tree into place: %w", err)
	}
	return rootfs, true, nil
}

// debootstrap runs debootstrap into target, retrying transient failures.
func debootstrap(ctx context.Context, target, mirror string) error {
	bin, err := exec.LookPath("debootstrap")
	if err != nil {
		// root's PATH normally has /usr/sbin, but not always a test's.
		if _, statErr := os.Stat("/usr/sbin/debootstrap"); statErr != nil {
			return fmt.Errorf("find debootstrap: %w", err)
		}
		bin = "/usr/sbin/debootstrap"
	}
	var lastErr error
	for attempt := 1; attempt <= debootstrapRetries; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("debootstrap: %w", err)
		}
		if attempt > 1 {
			// Start over from scratch; a failed run can leave /proc etc.
			// mounted inside the target.
			if err := RemoveTree(target); err != nil {
				return fmt.Errorf("clean up failed debootstrap: %w", err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("debootstrap: %w", ctx.Err())
			case <-time.After(time.Duration(attempt) * 5 * time.Second):
			}
		}
		cmd := exec.CommandContext(ctx, bin, "--variant=minbase", debianSuite, target, mirror)
		cmd.Env = append(os.Environ(),
			"DEBIAN_FRONTEND=noninteractive",
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		// Own process group, so cancelling kills the dpkg and chroot
		// children too, not just debootstrap.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return unix.Kill(-cmd.Process.Pid, unix.SIGKILL) }
		cmd.WaitDelay = 10 * time.Second
		out := &TailBuffer{max: 16 << 10}
		cmd.Stdout = out
		cmd.Stderr = out
		err := cmd.Run()
		if err == nil {
			return nil
		}
		lastErr = fmt.Errorf("debootstrap attempt %d/%d: %w\n%s", attempt, debootstrapRetries, err, out.String())
	}
	_ = UnmountUnder(target)
	return lastErr
}

func writeMarker(path string) error {
	content := fmt.Sprintf("suite=%s\nvariant=minbase\nbuilt=%s\n",
		debianSuite, time.Now().UTC().Format(time.RFC3339))
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write marker: %w", err)
	}
	return nil
}

// LockFile takes an exclusive flock on path, waiting until ctx is done. The returned function
// releases it.
func LockFile(ctx context.Context, path string) (func(), error) {
	unlock, err := lockfile.Lock(ctx, path, lockfile.Exclusive)
	if err != nil {
		return nil, fmt.Errorf("wait for lock %s: %w", path, err)
	}
	return unlock, nil
}

// SanitizeTree prepares a root filesystem for `ostree commit`: it empties
// root/dev and removes every socket, FIFO and device node in the tree.
func SanitizeTree(root string) error {
	devDir := filepath.Join(root, "dev")
	entries, err := os.ReadDir(devDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sanitize: %w", err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(devDir, e.Name())); err != nil {
			return fmt.Errorf("sanitize: %w", err)
		}
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			if err := os.Remove(path); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sanitize: %w", err)
	}
	return nil
}

// RemoveTree unmounts anything mounted below dir (a failed debootstrap can
// leave /proc or /sys mounted in its target), then removes dir, clearing the
// immutable flag of deployments on the way.
func RemoveTree(dir string) error {
	if err := UnmountUnder(dir); err != nil {
		return err
	}
	if err := fsflags.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove %s: %w", dir, err)
	}
	return nil
}

// UnmountUnder lazily unmounts every mount point at or below dir, deepest
// first.
func UnmountUnder(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("unmount under %s: %w", dir, err)
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == abs || strings.HasPrefix(mp, abs+"/") {
			points = append(points, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read mounts: %w", err)
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, mp := range points {
		if err := unix.Unmount(mp, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: %w", mp, err)
		}
	}
	return nil
}

// unescapeMountinfo decodes the octal escapes (\040 etc.) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, ok := octalByte(s[i+1 : i+4]); ok {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octalByte(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	var v int
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	if v > 0xff {
		return 0, false
	}
	return byte(v), true
}

// DebianMirror returns the mirror URI the host's APT configuration uses for
// suite: the first URIs: value of the deb822 entry in
// /etc/apt/sources.list.d/debian.sources whose Suites: lists suite exactly
// (so "bookworm" does not match "bookworm-security"), falling back to a
// matching "deb" line of /etc/apt/sources.list. BOOTC_DEBIAN_MIRROR
// overrides both.
func DebianMirror(suite string) (string, error) {
	if m := os.Getenv("BOOTC_DEBIAN_MIRROR"); m != "" {
		return m, nil
	}
	var errs []error
	if f, err := os.Open(debianSources); err == nil {
		m, err := parseDeb822Mirror(f, suite)
		f.Close()
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", debianSources, err))
	} else {
		errs = append(errs, err)
	}
	if f, err := os.Open(debianSourceOld); err == nil {
		m, err := parseOneLineMirror(f, suite)
		f.Close()
		if err == nil {
			return m, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", debianSourceOld, err))
	} else {
		errs = append(errs, err)
	}
	return "", fmt.Errorf("find a Debian mirror for %s: %w", suite, errors.Join(errs...))
}

// errNoMirror is returned when no source entry lists the suite.
var errNoMirror = errors.New("no deb entry for the suite")

// parseDeb822Mirror finds suite's URI in deb822-style sources (stanzas
// separated by blank lines).
func parseDeb822Mirror(r io.Reader, suite string) (string, error) {
	var stanzas []map[string]string
	cur := map[string]string{}
	last := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if len(cur) > 0 {
				stanzas = append(stanzas, cur)
				cur = map[string]string{}
			}
			last = ""
		case strings.HasPrefix(line, "#"):
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				cur[last] += " " + strings.TrimSpace(line)
			}
		default:
			key, value, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(key))
			cur[last] = strings.TrimSpace(value)
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if len(cur) > 0 {
		stanzas = append(stanzas, cur)
	}
	for _, st := range stanzas {
		if strings.EqualFold(st["enabled"], "no") {
			continue
		}
		if types, ok := st["types"]; ok && !slices.Contains(strings.Fields(types), "deb") {
			continue
		}
		if !slices.Contains(strings.Fields(st["suites"]), suite) {
			continue
		}
		if uris := strings.Fields(st["uris"]); len(uris) > 0 {
			return uris[0], nil
		}
	}
	return "", errNoMirror
}

// parseOneLineMirror finds suite's URI in one-line-style sources
// ("deb [options] URI suite components...").
func parseOneLineMirror(r io.Reader, suite string) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 || fields[0] != "deb" {
			continue
		}
		fields = fields[1:]
		if strings.HasPrefix(fields[0], "[") {
			for len(fields) > 0 && !strings.HasSuffix(fields[0], "]") {
				fields = fields[1:]
			}
			if len(fields) == 0 {
				continue
			}
			fields = fields[1:]
		}
		if len(fields) >= 2 && fields[1] == suite {
			return fields[0], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errNoMirror
}

// TailBuffer keeps the last max bytes written to it (make one with NewTailBuffer).
// NewTailBuffer returns a TailBuffer keeping the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

type TailBuffer struct {
	max int
	buf []byte
}

func (b *TailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = slices.Clone(b.buf[over:])
	}
	return len(p), nil
}

func (b *TailBuffer) String() string { return string(b.buf) }
