// Package bootable commits a root filesystem directory to an OSTree repository as a bootable
// commit: one that `ostree admin deploy` (and bootc) can deploy and boot.
//
// The source tree is read as it is and never modified; the layout conventions of a bootable
// commit (spec §2.2, §2.5, §5.1) are applied to the tree being committed:
//
//   - /etc is stored as /usr/etc, where libostree keeps the defaults of the three-way /etc merge.
//     A rootfs with both /etc and a non-empty /usr/etc is refused (ErrEtcConflict); an empty
//     /usr/etc is replaced. A rootfs with neither gets an empty /usr/etc.
//   - The kernel: exactly one is required (ErrNoKernel, ErrMultipleKernels; see FindKernels).
//     Files that a kernel package puts in /boot are moved next to the kernel, in
//     usr/lib/modules/KVER, under the names Fedora's kernel package uses:
//     vmlinuz-KVER → vmlinuz, initrd.img-KVER (Debian) or initramfs-KVER.img (dracut) →
//     initramfs.img, System.map-KVER → System.map, config-KVER → config,
//     .vmlinuz-KVER.hmac → .vmlinuz.hmac. If the destination already exists with the same content
//     object (content, owner, mode and xattrs) the /boot copy is dropped; if it differs, the
//     commit fails (ErrKernelFileConflict). usr/lib/modules/KVER is created if missing.
//   - /boot is stored as an empty directory: its remaining content is dropped (and the contents of
//     its subdirectories, such as grub/ or efi/, are never read). The root symlinks Debian points
//     into /boot (vmlinuz, vmlinuz.old, initrd.img, initrd.img.old) are dropped too.
//   - /dev, /proc, /sys, /run and /tmp are stored as empty directories; their contents are never
//     read, so device nodes, sockets and FIFOs there do no harm. Missing ones are created (mode
//     0755, /tmp 01777, owned by root). Device nodes, sockets and FIFOs anywhere else make the
//     commit fail with an error naming the path.
//   - /var is committed as it is.
//
// The commit metadata holds, in this order: the WithMetadataString entries, "version" (if known),
// "ostree.bootable" (true), "ostree.linux" (the kernel version), then, unless WithoutBindings,
// "ostree.ref-binding".
package bootable

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/bootc-go/bootc/internal/osrelease"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

// ErrEtcConflict means the rootfs has both /etc and a non-empty /usr/etc.
var ErrEtcConflict = errors.New("the rootfs has both /etc and a non-empty /usr/etc")

// ErrKernelFileConflict means a kernel file in /boot and its counterpart in usr/lib/modules/KVER
// both exist and differ.
var ErrKernelFileConflict = errors.New("kernel file conflict")

// apiDirs are the directories stored empty, and the mode each gets if the rootfs lacks it. /sysroot
// is where the host mounts its physical root; in an ostree-container image it holds the embedded
// repository, which is never part of the tree.
var apiDirs = []struct {
	name string
	mode uint32
}{{"boot", 0o755}, {"dev", 0o755}, {"proc", 0o755}, {"sys", 0o755}, {"run", 0o755}, {"tmp", 0o1777}, {"sysroot", 0o755}}

// bootSymlinks are the symlinks at the root that Debian's kernel packages point into /boot.
var bootSymlinks = []string{"vmlinuz", "vmlinuz.old", "initrd.img", "initrd.img.old"}

// Option configures Commit.
//
// Defaults: no branch (the commit is an orphan), empty subject and body; the version is
// VERSION_ID, else VERSION, from usr/lib/os-release, else etc/os-release, else there is none; the
// timestamp is the current time (as ostree's: the newest mtime in the tree would not be
// reproducible; callers pass a fixed time, such as SOURCE_DATE_EPOCH, with WithTimestamp); the commit is bound to its branch (ostree.ref-binding);
// no progress reports; no log.
type Option func(*config)

type config struct {
	branch, subject, body string
	version               *string
	timestamp             *time.Time
	metadata              ostree.Metadata
	noBindings            bool
	progress              func(ostree.CommitProgress)
	log                   *slog.Logger
}

// WithBranch makes the commit the new head of branch; its parent is the branch's old head.
func WithBranch(branch string) Option { return func(c *config) { c.branch = branch } }

// WithSubject sets the commit subject.
func WithSubject(s string) Option { return func(c *config) { c.subject = s } }

// WithBody sets the commit body.
func WithBody(s string) Option { return func(c *config) { c.body = s } }

// WithVersion sets the "version" metadata, instead of the one read from os-release. An empty
// version turns that detection off: the commit then has a version only if a WithMetadataString
// entry gives one. A non-empty version also replaces such an entry, keeping its position.
func WithVersion(v string) Option { return func(c *config) { c.version = &v } }

// WithTimestamp sets the commit time.
func WithTimestamp(t time.Time) Option { return func(c *config) { c.timestamp = &t } }

// WithMetadataString adds a string metadata key, after those added before it (a repeated key
// keeps its first position and takes the last value). "version" given this way is used instead
// of os-release's; the keys ostree.bootable and ostree.linux are Commit's own and may not be set.
func WithMetadataString(key, value string) Option {
	return func(c *config) { c.metadata.Set(key, ostree.StringValue(value)) }
}

// WithoutBindings leaves out the ostree.ref-binding metadata (ostree's --no-bindings).
func WithoutBindings() Option { return func(c *config) { c.noBindings = true } }

// WithProgress calls fn from time to time while the tree is committed, from any goroutine.
func WithProgress(fn func(ostree.CommitProgress)) Option {
	return func(c *config) { c.progress = fn }
}

// WithLogger logs what Commit finds and changes (the kernel, the version, moved and dropped files)
// to l: Info for decisions, Debug for details.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Commit commits rootfs to repo as a bootable commit and returns its checksum. The conventions it
// applies are in the package documentation. The rootfs is checked for a kernel before anything
// is written, so ErrNoKernel and ErrMultipleKernels (as *MultipleKernelsError) come quickly.
func Commit(ctx context.Context, repo *ostree.Repo, rootfs string, opts ...Option) (ostree.Checksum, error) {
	cfg := &config{log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(cfg)
	}
	for _, k := range []string{ostreecontainer.KeyBootable, ostreecontainer.KeyLinux} {
		if _, ok := cfg.metadata.Lookup(k); ok {
			return ostree.Checksum{}, fmt.Errorf("metadata key %s is set by the bootable commit itself and cannot be given", k)
		}
	}
	for _, e := range cfg.metadata {
		if e.Key == "" {
			return ostree.Checksum{}, errors.New("metadata key must not be empty")
		}
	}

	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return ostree.Checksum{}, fmt.Errorf("bootable commit: %w", err)
	}
	defer root.Close()
	p, err := plan(root, cfg)
	if err != nil {
		return ostree.Checksum{}, fmt.Errorf("bootable commit of %s: %w", rootfs, err)
	}

	copts := []ostree.CommitOption{
		ostree.WithBranch(cfg.branch),
		ostree.WithSubject(cfg.subject),
		ostree.WithBody(cfg.body),
	}
	if cfg.timestamp != nil {
		copts = append(copts, ostree.WithTimestamp(*cfg.timestamp))
	}
	md := append(ostree.Metadata(nil), cfg.metadata...)
	if p.version != "" {
		md.Set(ostreecontainer.KeyVersion, ostree.StringValue(p.version))
	}
	md.Set(ostreecontainer.KeyBootable, ostree.BoolValue(true))
	md.Set(ostreecontainer.KeyLinux, ostree.StringValue(p.kernel.Version))
	for _, e := range md {
		copts = append(copts, ostree.WithMetadata(e.Key, e.Value))
	}
	if cfg.noBindings {
		copts = append(copts, ostree.WithoutBindings())
	}
	if cfg.progress != nil {
		copts = append(copts, ostree.WithProgress(cfg.progress))
	}
	copts = append(copts, ostree.WithSkipContents(skipContents))
	sum, err := commitEdited(ctx, repo, rootfs, p, copts)
	if err != nil {
		return ostree.Checksum{}, fmt.Errorf("bootable commit of %s: %w", rootfs, err)
	}
	cfg.log.Info("committed bootable tree", "commit", sum.String(), "kernel", p.kernel.Version, "version", p.version)
	return sum, nil
}

// commitEdited commits rootfs with the conventions applied, in one transaction: the directory
// is written as a tree, the tree edited (p.edit), written, and committed.
func commitEdited(ctx context.Context, repo *ostree.Repo, rootfs string, p *commitPlan, opts []ostree.CommitOption) (ostree.Checksum, error) {
	tx, err := repo.Begin(ctx)
	if err != nil {
		return ostree.Checksum{}, err
	}
	defer tx.Abort()
	tree, err := tx.WriteDir(ctx, rootfs, opts...)
	if err != nil {
		return ostree.Checksum{}, err
	}
	if err := p.edit(ctx, tx, tree); err != nil {
		return ostree.Checksum{}, err
	}
	root, err := tree.Write(ctx, tx)
	if err != nil {
		return ostree.Checksum{}, err
	}
	sum, err := tx.WriteCommit(ctx, root, opts...)
	if err != nil {
		return ostree.Checksum{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return ostree.Checksum{}, err
	}
	return sum, nil
}

// skipContents names the directories whose contents are never read: the API filesystems, which
// are mounted over at boot, and the subdirectories of /boot (kernel files are directly in /boot).
func skipContents(p string) bool {
	for _, d := range apiDirs {
		if p == d.name && p != "boot" {
			return true
		}
	}
	return strings.HasPrefix(p, "boot/")
}

// commitPlan is what Commit found on disk before the commit, and applies to the committed tree.
type commitPlan struct {
	kernel Kernel
	// moves maps files in boot/ to their names in usr/lib/modules/KVER.
	moves        map[string]string
	version      string
	rootSymlinks []string
	log          *slog.Logger
}

func plan(root *os.Root, cfg *config) (*commitPlan, error) {
	k, err := findKernel(root)
	if err != nil {
		return nil, err
	}
	cfg.log.Info("found kernel", "version", k.Version, "paths", strings.Join(k.Paths, ","))
	p := &commitPlan{kernel: k, log: cfg.log}
	if p.moves, err = bootFiles(root, k.Version); err != nil {
		return nil, fmt.Errorf("reading /boot: %w", err)
	}
	switch {
	case cfg.version != nil:
		p.version = *cfg.version
	default:
		if _, ok := cfg.metadata.Lookup(ostreecontainer.KeyVersion); ok {
			break // the caller's metadata string stands
		}
		fields, src, err := osrelease.Read(root)
		if err != nil {
			// An unreadable os-release (say, an absolute symlink) only costs the version.
			cfg.log.Warn("cannot read os-release; the commit gets no version", "path", src, "err", err)
		}
		if p.version = osReleaseVersion(fields); p.version != "" {
			cfg.log.Info("version from os-release", "path", src, "version", p.version)
		}
	}
	for _, name := range bootSymlinks {
		fi, err := root.Lstat(name)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if target, err := root.Readlink(name); err == nil && strings.HasPrefix(strings.TrimLeft(target, "/"), "boot/") {
			p.rootSymlinks = append(p.rootSymlinks, name)
		}
	}
	return p, nil
}

// edit applies the conventions to the committed tree.
func (p *commitPlan) edit(ctx context.Context, tx *ostree.Transaction, root *ostree.MutableTree) error {
	if err := p.moveEtc(root); err != nil {
		return err
	}
	if err := p.moveKernel(root); err != nil {
		return err
	}
	for _, name := range p.rootSymlinks {
		_, ok, err := root.File(name)
		if err != nil {
			return err
		}
		if ok {
			if _, err := root.Remove(name); err != nil {
				return err
			}
			p.log.Info("dropped symlink into /boot", "path", "/"+name)
		}
	}
	for _, d := range apiDirs {
		if _, isFile, err := root.File(d.name); err != nil || isFile {
			return errors.Join(err, fmt.Errorf("/%s is not a directory: a bootable tree needs /%s as a directory (something is mounted over it at boot)", d.name, d.name))
		}
		dir, err := root.Dir(d.name)
		if err != nil {
			return err
		}
		if dir == nil {
			meta := ostree.DirMeta{Mode: ostree.ModeDir | d.mode}
			mc, err := tx.WriteMetadata(ostree.ObjectDirMeta, meta.Marshal())
			if err != nil {
				return err
			}
			if _, err := root.MkdirAll(d.name, mc); err != nil {
				return err
			}
			p.log.Debug("created empty directory", "path", "/"+d.name, "mode", fmt.Sprintf("%04o", d.mode))
			continue
		}
		dropped, err := entries(dir)
		if err != nil {
			return err
		}
		if len(dropped) > 0 {
			p.log.Info("dropped content", "path", "/"+d.name, "entries", strings.Join(dropped, ","))
		}
		dir.Clear()
	}
	return p.ostreeLink(tx, root)
}

// entries lists a directory's files and subdirectories.
func entries(dir *ostree.MutableTree) ([]string, error) {
	files, err := dir.Files()
	if err != nil {
		return nil, err
	}
	dirs, err := dir.Dirs()
	return append(files, dirs...), err
}

// ostreeLink makes /ostree a symlink to sysroot/ostree, as bootc base images have it (lint
// baseimage-root): in a deployment it leads to the physical root's repository.
func (p *commitPlan) ostreeLink(tx *ostree.Transaction, root *ostree.MutableTree) error {
	if dir, err := root.Dir("ostree"); err != nil || dir != nil {
		return errors.Join(err, errors.New("/ostree is a directory: a bootable tree has /ostree as a symlink to sysroot/ostree (remove it from the root filesystem)"))
	}
	c, err := tx.WriteContent(&ostree.FileHeader{Mode: ostree.ModeSymlink | 0o777, SymlinkTarget: "sysroot/ostree"}, nil, 0)
	if err != nil {
		return err
	}
	old, ok, err := root.File("ostree")
	if err != nil {
		return err
	}
	if ok && old != c {
		p.log.Info("replaced /ostree with the symlink to sysroot/ostree")
	}
	return root.SetFile("ostree", c)
}

// moveEtc stores /etc as /usr/etc.
func (p *commitPlan) moveEtc(root *ostree.MutableTree) error {
	for _, name := range []string{"etc", "usr/etc", "usr"} {
		if _, isFile, err := root.File(name); err != nil || isFile {
			return errors.Join(err, fmt.Errorf("/%s is not a directory", name))
		}
	}
	etc, err := root.Dir("etc")
	if err != nil {
		return err
	}
	usrEtc, err := root.Dir("usr/etc")
	if err != nil {
		return err
	}
	if etc == nil {
		if usrEtc == nil {
			if _, err := root.MkdirAll("usr/etc", ostree.Checksum{}); err != nil {
				return err
			}
			p.log.Info("the rootfs has no /etc: created an empty /usr/etc")
		}
		return nil
	}
	if usrEtc != nil {
		inside, err := entries(usrEtc)
		if err != nil {
			return err
		}
		if len(inside) > 0 {
			return fmt.Errorf("%w: libostree would refuse to deploy it; merge usr/etc into etc (or remove one) before committing, since a bootable commit stores /etc as /usr/etc", ErrEtcConflict)
		}
		if _, err := root.Remove("usr/etc"); err != nil {
			return err
		}
	}
	if _, err := root.MkdirAll("usr", ostree.Checksum{}); err != nil {
		return err
	}
	if err := root.Rename("etc", "usr/etc"); err != nil {
		return err
	}
	p.log.Debug("stored /etc as /usr/etc")
	return nil
}

// moveKernel moves the kernel's files from /boot into usr/lib/modules/KVER.
func (p *commitPlan) moveKernel(root *ostree.MutableTree) error {
	kver := p.kernel.Version
	modDir := path.Join(ModulesDir, kver)
	dir, err := root.Dir(modDir)
	if err != nil {
		return err
	}
	if dir == nil {
		if _, err := root.MkdirAll(modDir, ostree.Checksum{}); err != nil {
			return fmt.Errorf("kernel %s: %w", kver, err)
		}
		p.log.Warn("kernel has no modules directory: created it", "path", "/"+modDir)
	}
	srcs := make([]string, 0, len(p.moves))
	for src := range p.moves {
		srcs = append(srcs, src)
	}
	// A stable order makes a conflict between initrd.img-KVER and initramfs-KVER.img name the
	// same file every time.
	sort.Strings(srcs)
	for _, src := range srcs {
		from, to := path.Join("boot", src), path.Join(modDir, p.moves[src])
		c, ok, err := root.File(from)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("/%s was in the rootfs but is not in the committed tree (did the rootfs change while it was committed?)", from)
		}
		have, ok, err := root.File(to)
		if err != nil {
			return err
		}
		if ok {
			if have != c {
				return fmt.Errorf("%w: /%s and /%s both exist and differ (in content, owner, mode or xattrs); remove one of them", ErrKernelFileConflict, from, to)
			}
			p.log.Debug("dropped duplicate kernel file", "path", "/"+from, "same-as", "/"+to)
		} else {
			if d, err := root.Dir(to); err != nil || d != nil {
				return errors.Join(err, fmt.Errorf("%w: /%s is a directory, so /%s cannot be moved there", ErrKernelFileConflict, to, from))
			}
			if err := root.SetFile(to, c); err != nil {
				return err
			}
			p.log.Info("moved kernel file", "from", "/"+from, "to", "/"+to)
		}
		if _, err := root.Remove(from); err != nil {
			return err
		}
	}
	if _, ok, err := root.File(path.Join(modDir, "vmlinuz")); err != nil || !ok {
		return errors.Join(err, fmt.Errorf("kernel %s: /%s/vmlinuz is not in the committed tree (is a parent directory a symlink?)", kver, modDir))
	}
	return nil
}
