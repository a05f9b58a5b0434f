package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"github.com/bootc-go/bootc/internal/fsflags"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// tmpPrefix starts the names of everything written under a temporary name; Cleanup removes
// what a crash leaves. Staged deployments live in ostree/deploy/<stateroot>/, not in its
// deploy/ directory, where libostree refuses names that are not <checksum>.<serial>.
const tmpPrefix = ".tmp-"

// stagingPrefix names a deployment being written: ostree/deploy/<stateroot>/.tmp-deploy-<name>.
const stagingPrefix = tmpPrefix + "deploy-"

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
	// The /etc merge, counted as libostree does ("Copying /etc changes: N modified, N removed,
	// N added"): an added directory counts once for itself and once for each entry below it.
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
//
// The steps, in order: the deployserial is one more than the highest of this commit among the
// loaded deployments and the directories on disk; the tree is checked out to
// ostree/deploy/<stateroot>/.tmp-deploy-<commit>.<serial>; the kernel is looked for; /etc is
// prepared and merged; /var seeded; the .origin written (synced); the directory renamed to
// deploy/<commit>.<serial> and made immutable (FS_IMMUTABLE_FL, where the filesystem has it),
// as libostree does so that nothing deletes a deployment by accident.
func (s *Sysroot) Deploy(ctx context.Context, commit ostree.Checksum, o DeployOptions) (*Deployment, *DeployStats, error) {
	return s.deploy(ctx, commit, o, false)
}

// deploy is Deploy; staged leaves out the /etc merge and the immutable flag, which
// FinalizeStaged does (etc/ is then the commit's defaults).
func (s *Sysroot) deploy(ctx context.Context, commit ostree.Checksum, o DeployOptions, staged bool) (*Deployment, *DeployStats, error) {
	if err := validateStateroot(o.Stateroot); err != nil {
		return nil, nil, err
	}
	osDir := s.abs("ostree/deploy/" + o.Stateroot)
	if st, err := os.Stat(filepath.Join(osDir, "deploy")); err != nil || !st.IsDir() {
		return nil, nil, fmt.Errorf("stateroot %q does not exist in %s: create it first (InitStateroot, `ostree admin os-init`)", o.Stateroot, s.path)
	}
	c, err := s.repo.ReadCommit(commit)
	if err != nil {
		return nil, nil, fmt.Errorf("deploying %s: %w", commit, err)
	}
	version, _ := c.Metadata.String("version")
	merge := o.Merge
	if o.NoMerge {
		merge = nil
	} else if merge == nil {
		merge = s.MergeDeployment(o.Stateroot)
	}
	kargs := o.Kargs
	if kargs == nil && merge != nil {
		kargs = merge.Kargs
	}
	serial, err := s.nextSerial(o.Stateroot, commit)
	if err != nil {
		return nil, nil, err
	}
	d := &Deployment{
		Index:      -1,
		Stateroot:  o.Stateroot,
		Commit:     commit,
		Serial:     serial,
		Kargs:      slices.Clone(kargs),
		Origin:     o.Origin.clone(),
		Version:    version,
		merge:      merge,
		mergeKnown: true,
	}
	staging := filepath.Join(osDir, stagingPrefix+d.name())
	if err := removeAll(staging); err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = removeAll(staging)
		}
	}()
	if err := s.repo.Checkout(ctx, commit.String(), staging); err != nil {
		return nil, nil, fmt.Errorf("checking out %s: %w", commit, err)
	}
	k, err := s.newDeploymentKernel(staging)
	if err != nil {
		return nil, nil, fmt.Errorf("deploying %s: %w", commit, err)
	}
	d.BootCsum, d.kernel = k.bootcsum, k
	if err := prepareEtc(ctx, s.repo, commit, staging); err != nil {
		return nil, nil, err
	}
	stats := &DeployStats{}
	if merge != nil && !staged {
		diff, err := mergeEtc(ctx, s.abs(merge.Dir()), staging)
		if err != nil {
			return nil, nil, err
		}
		stats.EtcModified, stats.EtcRemoved, stats.EtcAdded = len(diff.modified), len(diff.removed), len(diff.added)
	}
	if stats.VarSeeded, err = seedVar(ctx, s.repo, commit, filepath.Join(osDir, "var")); err != nil {
		return nil, nil, err
	}
	final := s.abs(d.Dir())
	if d.Origin != nil {
		if err := atomicfile.WriteFile(final+".origin", d.Origin.Marshal(), 0o644); err != nil {
			return nil, nil, fmt.Errorf("writing the origin: %w", err)
		}
	}
	if err := os.Rename(staging, final); err != nil {
		return nil, nil, fmt.Errorf("moving the deployment into place: %w", err)
	}
	ok = true
	if err := atomicfile.SyncDir(filepath.Dir(final)); err != nil {
		return nil, nil, err
	}
	if !staged {
		if err := fsflags.SetImmutable(final, true); err != nil {
			return nil, nil, err
		}
	}
	return d, stats, nil
}

// nextSerial returns one more than the highest deployserial of commit in stateroot, among the
// loaded deployments and the deployment directories (and origins) on disk; 0 for none.
func (s *Sysroot) nextSerial(stateroot string, commit ostree.Checksum) (int, error) {
	next := 0
	for _, d := range s.deployments {
		if d.Stateroot == stateroot && d.Commit == commit {
			next = max(next, d.Serial+1)
		}
	}
	ents, err := os.ReadDir(s.abs("ostree/deploy/" + stateroot + "/deploy"))
	if err != nil {
		return 0, fmt.Errorf("listing deployments: %w", err)
	}
	for _, e := range ents {
		c, n, err := parseDeployName(strings.TrimSuffix(e.Name(), ".origin"))
		if err == nil && c == commit {
			next = max(next, n+1)
		}
	}
	return next, nil
}

// seedVar fills the stateroot's /var from the commit's /var if it is empty (spec §2.6), copying
// (never hardlinking: /var is written to) with owners, modes and xattrs. It reports whether it
// did.
func seedVar(ctx context.Context, repo *ostree.Repo, commit ostree.Checksum, varDir string) (bool, error) {
	state, err := dirState(varDir)
	if err != nil {
		return false, fmt.Errorf("seeding /var: %w", err)
	}
	if state == dirPopulated {
		return false, nil
	}
	tree, meta, err := subtree(ctx, repo, commit, "/var")
	if err != nil {
		return false, nil // no /var in the commit: nothing to seed
	}
	t, err := repo.ReadDirTree(tree)
	if err != nil {
		return false, fmt.Errorf("seeding /var: %w", err)
	}
	if len(t.Files) == 0 && len(t.Dirs) == 0 {
		return false, nil
	}
	if err := repo.CheckoutTree(ctx, tree, meta, varDir, ostree.WithUnion(), ostree.WithForceCopy()); err != nil {
		return false, fmt.Errorf("seeding /var from %s: %w", commit, err)
	}
	return true, nil
}

// removeAll removes a deployment (or staging) directory, clearing the immutable flag of its
// root first. A missing path is not an error.
func removeAll(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	if st.IsDir() {
		if err := fsflags.SetImmutable(path, false); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
