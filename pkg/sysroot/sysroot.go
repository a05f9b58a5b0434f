// Package sysroot manages an OSTree sysroot (spec §2): the physical root that holds
// /ostree/repo, the stateroots under /ostree/deploy with their deployments, and the boot
// configuration under /boot. Everything it writes is readable by the real `ostree admin`.
//
// CONTRACT STUB (issue 4): the helper implementing this package replaces the bodies; the
// exported names are shared with cmd/bootc and must not change without telling its author.
package sysroot

import (
	"context"
	"errors"

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
}

// Init creates the layout of `ostree admin init-fs --modern` in path (boot/, ostree/deploy/,
// ostree/repo in bare mode, with sysroot.bootloader=none and sysroot.bootprefix=true in the
// repository config, as bootc install sets them) and opens it. An existing sysroot is opened
// as it is.
func Init(ctx context.Context, path string) (*Sysroot, error) {
	return nil, errors.New("sysroot.Init: not implemented")
}

// Open opens an existing sysroot and loads its deployments.
func Open(ctx context.Context, path string) (*Sysroot, error) {
	return nil, errors.New("sysroot.Open: not implemented")
}

// Path returns the sysroot directory.
func (s *Sysroot) Path() string { return s.path }

// Repo returns the system repository, ostree/repo.
func (s *Sysroot) Repo() *ostree.Repo { return s.repo }

// InitStateroot creates ostree/deploy/<name>/{deploy,var} if missing (`ostree admin os-init`,
// the modern layout: var is left empty so the first deployment seeds it).
func (s *Sysroot) InitStateroot(name string) error {
	return errors.New("InitStateroot: not implemented")
}

// Lock takes the sysroot's exclusive lock (ostree/lock, flock, as libostree), waiting until ctx
// is done. Every command that writes holds it from start to end. The returned function
// releases it.
func (s *Sysroot) Lock(ctx context.Context) (unlock func(), err error) {
	return nil, errors.New("Lock: not implemented")
}

// Load (re)reads the deployments from the current boot configuration.
func (s *Sysroot) Load(ctx context.Context) error {
	return errors.New("Load: not implemented")
}

// Deployments returns the deployments in boot order: index 0 is the default (next) boot.
func (s *Sysroot) Deployments() []*Deployment { return nil }

// Booted returns the booted deployment, or nil. When the sysroot is "/", it is the deployment
// the kernel command line's ostree= names (compared by device and inode). A sysroot directory
// has no running kernel; there the default deployment (index 0) counts as booted, as if the
// machine had just started from its default entry. The rule is documented in the package
// README and in `bootc status --help`.
func (s *Sysroot) Booted() *Deployment { return nil }

// IsLive reports whether the sysroot is the running system's ("/" with ostree= on the kernel
// command line).
func (s *Sysroot) IsLive() bool { return false }

// MergeDeployment returns the deployment whose /etc and kernel arguments a new deployment of
// stateroot inherits: the booted one if it belongs to stateroot, else the first deployment of
// stateroot in boot order, else nil.
func (s *Sysroot) MergeDeployment(stateroot string) *Deployment { return nil }

// Rollback returns the deployment `rollback` would make the default: the first deployment
// after the booted one (or, with no booted one, after index 0), or nil.
func (s *Sysroot) Rollback() *Deployment { return nil }

// Deployment is one deployed tree.
type Deployment struct {
	// Index is the position in boot order (0 is the default boot).
	Index     int
	Stateroot string
	Commit    ostree.Checksum
	// Serial is the deployserial: deployments of the same commit count up from 0.
	Serial int
	// BootCsum is the sha256 of the kernel, initramfs and devicetree (spec §2.2).
	BootCsum string
	// BootSerial counts deployments sharing BootCsum.
	BootSerial int
	// Kargs are the kernel arguments of the boot entry, without ostree=.
	Kargs []string
	// Origin is the .origin keyfile.
	Origin *Origin
	// Version is the commit's "version" metadata, or "".
	Version string
}

// Dir returns the deployment's directory relative to the sysroot:
// ostree/deploy/<stateroot>/deploy/<commit>.<serial>.
func (d *Deployment) Dir() string { return "" }

// Pinned reports whether the origin has [libostree-transient] pinned=true.
func (d *Deployment) Pinned() bool { return false }

// Equal reports whether d and o are the same deployment (stateroot, commit, serial).
func (d *Deployment) Equal(o *Deployment) bool { return false }

// Origin is a deployment's origin keyfile (spec §2.4): groups of key=value lines, kept in
// order so that what we do not know survives a rewrite.
type Origin struct{}

// NewContainerOrigin returns an origin with [origin] container-image-reference=ref.
func NewContainerOrigin(ref string) *Origin { return &Origin{} }

// ParseOrigin parses an origin keyfile.
func ParseOrigin(data []byte) (*Origin, error) { return nil, errors.New("ParseOrigin: not implemented") }

// Get returns group.key.
func (o *Origin) Get(group, key string) (string, bool) { return "", false }

// Set sets group.key (adding the group if needed).
func (o *Origin) Set(group, key, value string) {}

// Remove deletes group.key.
func (o *Origin) Remove(group, key string) {}

// HasGroup reports whether group exists (bootc treats rpm-ostree groups as incompatible).
func (o *Origin) HasGroup(group string) bool { return false }

// ContainerImageReference returns [origin] container-image-reference.
func (o *Origin) ContainerImageReference() (string, bool) { return "", false }

// Marshal writes the keyfile.
func (o *Origin) Marshal() []byte { return nil }

// DeployOptions configures Deploy.
type DeployOptions struct {
	// Stateroot is the stateroot to deploy into (it must exist: see InitStateroot).
	Stateroot string
	// Origin is written as the deployment's .origin file.
	Origin *Origin
	// Kargs replaces the kernel arguments; nil inherits the merge deployment's (none without
	// one).
	Kargs []string
	// Merge is the deployment whose /etc changes are carried over; nil means
	// MergeDeployment(Stateroot). Set NoMerge to start from the image's /etc alone.
	Merge   *Deployment
	NoMerge bool
}

// DeployStats says what Deploy did to /etc and /var.
type DeployStats struct {
	EtcModified, EtcAdded, EtcRemoved int
	// VarSeeded is true when the stateroot's empty /var was filled from the commit's /var.
	VarSeeded bool
}

// Deploy makes a new deployment of commit without touching the boot configuration: the tree
// is checked out as hardlinks into the repository (under a temporary name, renamed into place
// when complete), /etc is created from usr/etc and the merge deployment's changes are applied
// (the three-way merge of spec §2.5, ignoring xattrs), /var is seeded when empty (§2.6), the
// origin is written, and the kernel is located (ErrNoKernel if none). The deployment is not
// listed anywhere until WriteDeployments is called with it; until then a crash leaves only an
// unreferenced directory that Cleanup removes.
func (s *Sysroot) Deploy(ctx context.Context, commit ostree.Checksum, o DeployOptions) (*Deployment, *DeployStats, error) {
	return nil, nil, errors.New("Deploy: not implemented")
}

// WriteOptions configures WriteDeployments.
type WriteOptions struct {
	// SkipCleanup leaves undeployed directories, unused kernels and unreferenced objects for a
	// later Cleanup.
	SkipCleanup bool
}

// WriteDeployments makes list the sysroot's deployments, in this boot order, atomically: the
// new boot version's /boot/loader.N/entries (BLS entries named as ostree 2022.7 does,
// ostree-<n>-<stateroot>.conf), the kernels under /boot/ostree/<stateroot>-<bootcsum>/,
// /ostree/boot.N.M links, and the deployment refs ostree/N/M/<index> are all written first and
// synced; then the /ostree/boot.N and /boot/loader symlinks are swapped by rename. A crash at
// any point leaves either the old or the new list bootable and complete. Then, unless
// SkipCleanup, Cleanup runs.
func (s *Sysroot) WriteDeployments(ctx context.Context, list []*Deployment, o WriteOptions) error {
	return errors.New("WriteDeployments: not implemented")
}

// PlaceOptions configures Place.
type PlaceOptions struct {
	// Retain keeps every existing deployment (bootc switch --retain).
	Retain bool
	// NotDefault puts the new deployment after the booted one instead of first.
	NotDefault bool
}

// Place returns the deployment list after adding d, with the retention rules of
// ostree_sysroot_simple_write_deployment (spec §2.7): d first (or after the booted one with
// NotDefault), then the pinned, other stateroots', booted and merge deployments; everything
// else is dropped unless Retain.
func (s *Sysroot) Place(d *Deployment, o PlaceOptions) []*Deployment { return nil }

// CleanupStats says what Cleanup removed.
type CleanupStats struct {
	Deployments, BootDirs int
	Prune                 *ostree.PruneStats
}

// Cleanup removes deployment directories no boot entry lists (clearing their immutable flag),
// partial deployments left by a crash, kernel directories under /boot/ostree no entry uses, the
// unused loader.N and boot.N.M, deployment refs of the other boot version, and then prunes the
// repository (objects no ref reaches). Callers that keep images in the repository delete the
// image refs they no longer need first (deploy.GC).
func (s *Sysroot) Cleanup(ctx context.Context) (*CleanupStats, error) {
	return nil, errors.New("Cleanup: not implemented")
}
