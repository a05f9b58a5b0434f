// Package sysroot manages an OSTree sysroot (spec §2): the physical root that holds
// /ostree/repo, the stateroots under /ostree/deploy with their deployments, and the boot
// configuration under /boot. Everything it writes is readable by the real `ostree admin`
// (tested against ostree 2022.7), and it reads what `ostree admin` writes.
//
// # The booted deployment of a sysroot directory
//
// On a running system (the sysroot is "/" and the kernel command line has ostree=), the
// booted deployment is the one ostree= names. A sysroot directory (an installation target, a
// disk image being built, a test) has no running kernel; there the default deployment, index
// 0, counts as booted, as if the machine had just started from its default boot entry. So in a
// directory:
//   - MergeDeployment is index 0 when it belongs to the stateroot (its /etc is carried over);
//   - Place keeps index 0 (as "booted") next to the new deployment, like a reboot-free upgrade;
//   - Rollback is the first deployment after index 0.
//
// The rule matches what `ostree admin deploy --sysroot DIR` keeps and merges, since libostree
// falls back to the first deployment of the stateroot when nothing is booted.
//
// # Order of operations
//
// Deploy writes a new deployment directory under a temporary name and renames it into place;
// nothing refers to it until WriteDeployments. WriteDeployments writes a complete new boot
// version next to the current one and switches to it with one rename of /boot/loader (see its
// doc). Cleanup removes what no boot entry refers to. The caller holds Lock around all of it.
//
// # Staged deployments
//
// On the running system a new deployment is staged rather than written (Stage): its directory
// is made and the runtime state file <runtime dir>/staged-deployment (default /run/ostree, the
// file libostree writes and reads) names it, but the /etc merge and the boot entries wait for
// FinalizeStaged, which the shutdown runs, so that /etc edits made until then are carried over.
// Staged returns it; Deployments does not list it (see there). A sysroot directory has no
// runtime state unless WithRuntimeDir gives one (tests, and tools that act for a running
// system). See stage.go for the format and the order of operations.
package sysroot

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// Errors callers test for.
var (
	// ErrNotSysroot: the directory has no ostree/repo.
	ErrNotSysroot = errors.New("not an OSTree sysroot")
	// ErrLocked: another process holds the sysroot lock and the caller asked not to wait.
	ErrLocked = errors.New("sysroot is locked by another process")
	// ErrNoKernel: the commit has no usr/lib/modules/<kver>/vmlinuz.
	ErrNoKernel = errors.New("commit has no kernel")
)

// Sysroot is an opened sysroot directory.
type Sysroot struct {
	path string
	repo *ostree.Repo

	// From the last Load.
	bootversion, subbootversion int
	deployments                 []*Deployment
	booted                      *Deployment
	live                        bool

	cfg openConfig
	// runDir is the runtime state directory in use: cfg.runtimeDir, else DefaultRuntimeDir
	// when live, else "" (no staging).
	runDir string
	// The staged deployment (nil if none) and its state file; stagedStale: the file names a
	// deployment the boot entries list (a finalization stopped before removing it);
	// stagedIgnored: why a file was ignored.
	staged        *Deployment
	stagedState   *stagedState
	stagedStale   bool
	stagedIgnored error
}

// OpenOption configures Open and Init.
type OpenOption func(*openConfig)

type openConfig struct {
	runtimeDir string
	log        *slog.Logger
}

// WithRuntimeDir sets the directory of the runtime state (the staged deployment): on the
// running system it defaults to DefaultRuntimeDir; a sysroot directory has none, so Stage
// refuses and no staged deployment is read, unless this option gives one.
func WithRuntimeDir(dir string) OpenOption { return func(c *openConfig) { c.runtimeDir = dir } }

// WithLogger sets the logger for warnings (a staged state file that is ignored) and debug
// logs; the default discards them.
func WithLogger(l *slog.Logger) OpenOption { return func(c *openConfig) { c.log = l } }

func newOpenConfig(opts []OpenOption) openConfig {
	var c openConfig
	for _, o := range opts {
		o(&c)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Init creates the layout of `ostree admin init-fs --modern` in path (boot/, ostree/deploy/,
// ostree/repo in bare mode, with sysroot.bootloader=none and sysroot.bootprefix=true in the
// repository config, as bootc install sets them) and opens it. An existing sysroot is opened
// as it is.
func Init(ctx context.Context, path string, opts ...OpenOption) (*Sysroot, error) {
	if _, err := os.Stat(filepath.Join(path, "ostree", "repo", "objects")); err == nil {
		return Open(ctx, path, opts...)
	}
	for _, d := range []string{"boot", "ostree/deploy"} {
		if err := os.MkdirAll(filepath.Join(path, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating sysroot: %w", err)
		}
	}
	repo, err := ostree.Init(ctx, filepath.Join(path, "ostree", "repo"), ostree.ModeBare)
	if err != nil {
		return nil, fmt.Errorf("creating sysroot repository: %w", err)
	}
	for _, kv := range [][2]string{{"bootloader", "none"}, {"bootprefix", "true"}} {
		if err := repo.SetConfig("sysroot", kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("configuring sysroot repository: %w", err)
		}
	}
	return Open(ctx, path, opts...)
}

// Open opens an existing sysroot and loads its deployments (and the staged one, see
// WithRuntimeDir).
func Open(ctx context.Context, path string, opts ...OpenOption) (*Sysroot, error) {
	repoPath := filepath.Join(path, "ostree", "repo")
	if _, err := os.Stat(repoPath); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s has no ostree/repo", ErrNotSysroot, path)
		}
		return nil, fmt.Errorf("opening sysroot: %w", err)
	}
	repo, err := ostree.Open(ctx, repoPath)
	if err != nil {
		return nil, fmt.Errorf("opening sysroot %s: %w", path, err)
	}
	s := &Sysroot{path: path, repo: repo, cfg: newOpenConfig(opts)}
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Path returns the sysroot directory.
func (s *Sysroot) Path() string { return s.path }

// Repo returns the system repository, ostree/repo.
func (s *Sysroot) Repo() *ostree.Repo { return s.repo }

// abs returns the path of rel (slash-separated, relative to the sysroot).
func (s *Sysroot) abs(rel string) string { return filepath.Join(s.path, filepath.FromSlash(rel)) }

// InitStateroot creates ostree/deploy/<name>/{deploy,var} if missing (`ostree admin os-init`,
// the modern layout: var is left empty so the first deployment seeds it).
func (s *Sysroot) InitStateroot(name string) error {
	if err := validateStateroot(name); err != nil {
		return err
	}
	for _, d := range []string{"deploy", "var"} {
		if err := os.MkdirAll(s.abs("ostree/deploy/"+name+"/"+d), 0o755); err != nil {
			return fmt.Errorf("creating stateroot %s: %w", name, err)
		}
	}
	return nil
}

func validateStateroot(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("invalid stateroot name %q: use a plain name such as \"default\"", name)
	}
	return nil
}

// Load (re)reads the deployments from the current boot configuration, and the staged
// deployment from the runtime state (see Staged).
func (s *Sysroot) Load(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bv, ok, err := s.readBootversion()
	if err != nil {
		return err
	}
	s.bootversion, s.deployments, s.booted = bv, nil, nil
	if s.subbootversion, err = s.readSubbootversion(bv); err != nil {
		return err
	}
	s.live = false
	if ok {
		if s.deployments, err = s.loadEntries(bv); err != nil {
			return err
		}
	}
	if err := s.findBooted(); err != nil {
		return err
	}
	return s.loadStaged()
}

// readBootversion reads /boot/loader -> loader.N; ok is false when there is no such link (no
// deployments yet).
func (s *Sysroot) readBootversion() (int, bool, error) {
	target, err := os.Readlink(s.abs("boot/loader"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		if errors.Is(err, unix.EINVAL) {
			return 0, false, fmt.Errorf("%s is not a symlink: this sysroot was not written by ostree; remove it or use another sysroot", s.abs("boot/loader"))
		}
		return 0, false, fmt.Errorf("reading boot version: %w", err)
	}
	switch target {
	case "loader.0":
		return 0, true, nil
	case "loader.1":
		return 1, true, nil
	}
	return 0, false, fmt.Errorf("%s points to %q, not loader.0 or loader.1", s.abs("boot/loader"), target)
}

// readSubbootversion reads /ostree/boot.N -> boot.N.M; 0 when there is no link.
func (s *Sysroot) readSubbootversion(bv int) (int, error) {
	link := s.abs(fmt.Sprintf("ostree/boot.%d", bv))
	target, err := os.Readlink(link)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading subboot version: %w", err)
	}
	switch target {
	case fmt.Sprintf("boot.%d.0", bv):
		return 0, nil
	case fmt.Sprintf("boot.%d.1", bv):
		return 1, nil
	}
	return 0, fmt.Errorf("%s points to %q, not boot.%d.0 or boot.%d.1", link, target, bv, bv)
}

// loadEntries parses loader.N/entries/*.conf and the deployments they name, in boot order.
func (s *Sysroot) loadEntries(bv int) ([]*Deployment, error) {
	dir := s.abs(fmt.Sprintf("boot/loader.%d/entries", bv))
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading boot entries: %w", err)
	}
	var list []*Deployment
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".conf") || !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("reading boot entry: %w", err)
		}
		entry := parseBLS(data)
		d, err := s.loadDeployment(entry)
		if err != nil {
			return nil, fmt.Errorf("boot entry %s: %w", filepath.Join(dir, e.Name()), err)
		}
		if d != nil {
			list = append(list, d)
		}
	}
	// Highest "version" first (ostree-sysroot.c compare_boot_loader_configs); entries without
	// one last.
	slices.SortStableFunc(list, func(a, b *Deployment) int {
		switch {
		case a.entryVersion != "" && b.entryVersion != "":
			return -strverscmp(a.entryVersion, b.entryVersion)
		case a.entryVersion != "":
			return -1
		case b.entryVersion != "":
			return 1
		}
		return 0
	})
	for i, d := range list {
		d.Index = i
	}
	return list, nil
}

// loadDeployment reads the deployment a boot entry names; nil if the entry has no ostree=.
func (s *Sysroot) loadDeployment(e *blsEntry) (*Deployment, error) {
	kargs := splitKargs(e.get("options"))
	bootlink := ""
	var rest []string
	for _, k := range kargs {
		if v, ok := strings.CutPrefix(k, "ostree="); ok {
			bootlink = v
		} else {
			rest = append(rest, k)
		}
	}
	if bootlink == "" {
		return nil, nil
	}
	stateroot, bootcsum, bootserial, err := parseBootlink(bootlink)
	if err != nil {
		return nil, err
	}
	target, err := os.Readlink(s.abs(strings.TrimPrefix(bootlink, "/")))
	if err != nil {
		return nil, fmt.Errorf("resolving ostree=%s: %w", bootlink, err)
	}
	commit, serial, err := parseDeployName(filepath.Base(target))
	if err != nil {
		return nil, fmt.Errorf("resolving ostree=%s: %w", bootlink, err)
	}
	d := &Deployment{
		Stateroot:    stateroot,
		Commit:       commit,
		Serial:       serial,
		BootCsum:     bootcsum,
		BootSerial:   bootserial,
		Kargs:        rest,
		entryVersion: e.get("version"),
	}
	if err := s.readOrigin(d); err != nil {
		return nil, err
	}
	d.Version = s.commitVersion(commit)
	return d, nil
}

// readOrigin sets d.Origin from the deployment's .origin file (nil without one).
func (s *Sysroot) readOrigin(d *Deployment) error {
	data, err := os.ReadFile(s.abs(d.Dir() + ".origin"))
	switch {
	case err == nil:
		if d.Origin, err = ParseOrigin(data); err != nil {
			return fmt.Errorf("%s.origin: %w", s.abs(d.Dir()), err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("reading origin: %w", err)
	}
	return nil
}

// commitVersion returns the commit's "version" metadata, or "" (also when the commit is not in
// the repository).
func (s *Sysroot) commitVersion(c ostree.Checksum) string {
	commit, err := s.repo.ReadCommit(c)
	if err != nil {
		return ""
	}
	v, _ := commit.Metadata.String("version")
	return v
}

// parseBootlink parses /ostree/boot.N/<stateroot>/<bootcsum>/<bootserial>.
func parseBootlink(link string) (stateroot, bootcsum string, bootserial int, err error) {
	parts := strings.Split(link, "/")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "ostree" || (parts[2] != "boot.0" && parts[2] != "boot.1") {
		return "", "", 0, fmt.Errorf("invalid ostree= argument %q: expected /ostree/boot.N/STATEROOT/BOOTCSUM/SERIAL", link)
	}
	n, err := strconv.Atoi(parts[5])
	if err != nil || n < 0 || parts[3] == "" || parts[4] == "" {
		return "", "", 0, fmt.Errorf("invalid ostree= argument %q: expected /ostree/boot.N/STATEROOT/BOOTCSUM/SERIAL", link)
	}
	return parts[3], parts[4], n, nil
}

// parseDeployName parses a deployment directory name <commit>.<serial>.
func parseDeployName(name string) (ostree.Checksum, int, error) {
	cs, ser, ok := strings.Cut(name, ".")
	if ok {
		c, err := ostree.ParseChecksum(cs)
		n, err2 := strconv.Atoi(ser)
		if err == nil && err2 == nil && n >= 0 && strconv.Itoa(n) == ser {
			return c, n, nil
		}
	}
	return ostree.Checksum{}, 0, fmt.Errorf("invalid deployment name %q: expected CHECKSUM.SERIAL", name)
}

// findBooted sets booted and live. On "/" with ostree= on the kernel command line, it is the
// deployment whose directory is the running root (else the one ostree= resolves to); in a
// sysroot directory, index 0.
func (s *Sysroot) findBooted() error {
	if filepath.Clean(s.path) != "/" {
		if len(s.deployments) > 0 {
			s.booted = s.deployments[0]
		}
		return nil
	}
	cmdline, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return nil // no /proc: nothing is booted
	}
	link := ""
	for _, k := range splitKargs(string(bytes.TrimSpace(cmdline))) {
		if v, ok := strings.CutPrefix(k, "ostree="); ok {
			link = v
		}
	}
	if link == "" {
		return nil
	}
	s.live = true
	// The running root is the booted deployment's directory (ostree-prepare-root bind-mounts
	// it), as libostree finds it: the ostree= link itself may name another deployment, or
	// nothing, once a later boot version has replaced /ostree/boot.N. Before the switch to
	// the deployment's root (in the initramfs), the sysroot is mounted at /sysroot and only
	// the link tells.
	if s.booted = s.deploymentWithRoot("/"); s.booted == nil {
		if s.booted = s.deploymentAt(link, "/"); s.booted == nil {
			s.booted = s.deploymentAt(link, "/sysroot")
		}
	}
	return nil
}

// deploymentWithRoot returns the loaded deployment whose directory is root (same device and
// inode), or nil.
func (s *Sysroot) deploymentWithRoot(root string) *Deployment {
	var want unix.Stat_t
	if err := unix.Stat(root, &want); err != nil {
		return nil
	}
	return s.deploymentWithStat(&want)
}

func (s *Sysroot) deploymentWithStat(want *unix.Stat_t) *Deployment {
	for _, d := range s.deployments {
		var st unix.Stat_t
		if err := unix.Stat(s.abs(d.Dir()), &st); err == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return d
		}
	}
	return nil
}

// deploymentAt returns the loaded deployment whose directory is the one bootlink (an ostree=
// value) resolves to under root, compared by device and inode; nil if none is.
func (s *Sysroot) deploymentAt(bootlink, root string) *Deployment {
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(root, bootlink), &want); err != nil {
		return nil
	}
	return s.deploymentWithStat(&want)
}

// Deployments returns the deployments of the boot configuration in boot order: index 0 is the
// default (next) boot. The staged deployment is not among them (libostree's list has it first,
// shifting the others' indexes; here Index stays the boot entry's position, and a list for
// WriteDeployments is built from Deployments): see Staged.
func (s *Sysroot) Deployments() []*Deployment { return slices.Clone(s.deployments) }

// Booted returns the booted deployment, or nil. When the sysroot is "/" and the kernel
// command line has ostree=, it is the deployment whose directory is the running root
// (compared by device and inode, as libostree does). A sysroot directory
// has no running kernel; there the default deployment (index 0) counts as booted, as if the
// machine had just started from its default entry. The rule is documented in the package
// README and in `bootc status --help`.
func (s *Sysroot) Booted() *Deployment { return s.booted }

// IsLive reports whether the sysroot is the running system's ("/" with ostree= on the kernel
// command line).
func (s *Sysroot) IsLive() bool { return s.live }

// MergeDeployment returns the deployment whose /etc and kernel arguments a new deployment of
// stateroot inherits: the booted one if it belongs to stateroot, else the first deployment of
// stateroot in boot order, else nil.
func (s *Sysroot) MergeDeployment(stateroot string) *Deployment {
	if s.booted != nil && s.booted.Stateroot == stateroot {
		return s.booted
	}
	for _, d := range s.deployments {
		if d.Stateroot == stateroot {
			return d
		}
	}
	return nil
}

// Rollback returns the deployment `rollback` would make the default: the first deployment
// after the booted one (or, with no booted one, after index 0), or nil. Only deployments of
// the booted (or default) deployment's stateroot count, as in
// ostree_sysroot_query_deployments_for.
func (s *Sysroot) Rollback() *Deployment {
	ref := s.booted
	if ref == nil {
		if len(s.deployments) == 0 {
			return nil
		}
		ref = s.deployments[0]
	}
	after := false
	for _, d := range s.deployments {
		if after && d.Stateroot == ref.Stateroot {
			return d
		}
		if d.Equal(ref) {
			after = true
		}
	}
	return nil
}

// RollbackTarget returns the deployment `rollback` makes the default, and whether that undoes a
// pending one: the Rollback deployment when there is one; else, when a deployment of the booted
// stateroot waits ahead of the booted one (the machine was started from an older entry, or an
// update was deployed and not booted yet), the booted deployment itself, as rpm-ostree
// rollback does. nil when the host has nothing to roll back to.
func (s *Sysroot) RollbackTarget() (d *Deployment, undoPending bool) {
	if rb := s.Rollback(); rb != nil {
		return rb, false
	}
	b := s.booted
	if b == nil {
		return nil, false
	}
	for _, d := range s.deployments {
		if d.Equal(b) {
			return nil, false
		}
		if d.Stateroot == b.Stateroot {
			return b, true
		}
	}
	return nil, false
}
