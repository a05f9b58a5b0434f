package sysroot

// Staged deployments, as libostree's ostree_sysroot_stage_tree_with_options and
// _ostree_sysroot_finalize_staged (ostree-sysroot-deploy.c) and _ostree_sysroot_reload_staged
// (ostree-sysroot.c) have them, 2022.7 to 2026.4.
//
// The state file <runtime dir>/staged-deployment is a GVariant of type a{sv}, written with the
// keys in this order (as libostree's GVariantBuilder adds them; readers look keys up by name):
//
//	"target"           a{sv}: "name" s "<commit>.<deployserial>", "osname" s, "bootcsum" s
//	"merge-deployment" a{sv}: the same three keys, for the deployment whose /etc is merged
//	                   (absent without one)
//	"kargs"            as: the kernel arguments (absent: the merge deployment's at
//	                   finalization)
//	"bootc.retain"     b: true keeps every deployment at finalization (switch --retain); only
//	                   written when true, a key of ours that libostree ignores
//
// libostree also knows "overlay-initrds" (as) and, since 2023.8, "locked" (b true: finalization
// is locked); we never write them, and honour "locked" when reading. The file
// <runtime dir>/staged-deployment-locked locks finalization too.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"github.com/bootc-go/bootc/internal/fsflags"
	"github.com/bootc-go/bootc/pkg/gvariant"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// DefaultRuntimeDir is the runtime state directory of the running system, libostree's.
const DefaultRuntimeDir = "/run/ostree"

// The files in the runtime directory.
const (
	stagedFileName = "staged-deployment"
	lockedFileName = "staged-deployment-locked"
)

// The staged state's keys.
const (
	stagedKeyTarget = "target"
	stagedKeyMerge  = "merge-deployment"
	stagedKeyKargs  = "kargs"
	stagedKeyLocked = "locked"
	stagedKeyRetain = "bootc.retain"
)

// ErrCannotStage: Stage on a sysroot without runtime state (a directory opened without
// WithRuntimeDir) or without a booted deployment.
var ErrCannotStage = errors.New("cannot stage a deployment")

var (
	typeStaged = gvariant.MustParseType("a{sv}")
	typeString = gvariant.MustParseType("s")
	typeAS     = gvariant.MustParseType("as")
	typeBool   = gvariant.MustParseType("b")
)

// stagedID names a deployment in the staged state (serialize_deployment_to_variant).
type stagedID struct {
	stateroot string
	commit    ostree.Checksum
	serial    int
	bootcsum  string
}

func idOf(d *Deployment) *stagedID {
	return &stagedID{stateroot: d.Stateroot, commit: d.Commit, serial: d.Serial, bootcsum: d.BootCsum}
}

// stub is a Deployment with the id's names, for Equal.
func (id *stagedID) stub() *Deployment {
	return &Deployment{Index: -1, Stateroot: id.stateroot, Commit: id.commit, Serial: id.serial, BootCsum: id.bootcsum}
}

func (id *stagedID) value() []any {
	return []any{
		[]any{"name", gvariant.Variant{Type: typeString, Value: fmt.Sprintf("%s.%d", id.commit, id.serial)}},
		[]any{"osname", gvariant.Variant{Type: typeString, Value: id.stateroot}},
		[]any{"bootcsum", gvariant.Variant{Type: typeString, Value: id.bootcsum}},
	}
}

// stagedState is the content of the staged state file.
type stagedState struct {
	target *stagedID
	merge  *stagedID
	// kargs is nil when the file has none.
	kargs          []string
	locked, retain bool
}

// marshal serializes the state as libostree writes it (see the top of this file).
func (st *stagedState) marshal() ([]byte, error) {
	v := []any{[]any{stagedKeyTarget, gvariant.Variant{Type: typeStaged, Value: st.target.value()}}}
	if st.merge != nil {
		v = append(v, []any{stagedKeyMerge, gvariant.Variant{Type: typeStaged, Value: st.merge.value()}})
	}
	if st.kargs != nil {
		args := make([]any, len(st.kargs))
		for i, a := range st.kargs {
			args[i] = a
		}
		v = append(v, []any{stagedKeyKargs, gvariant.Variant{Type: typeAS, Value: args}})
	}
	if st.locked {
		v = append(v, []any{stagedKeyLocked, gvariant.Variant{Type: typeBool, Value: true}})
	}
	if st.retain {
		v = append(v, []any{stagedKeyRetain, gvariant.Variant{Type: typeBool, Value: true}})
	}
	return gvariant.Marshal(typeStaged, v)
}

// parseStaged reads a staged state file as libostree does: keys are looked up by name (the
// last of duplicates wins, as in a GVariantDict), a known key of another type counts as
// absent, unknown keys are ignored; without "target" nothing is staged (nil, nil). The
// deployments' names are checked (a stateroot is a plain name, a bootcsum a sha256), since they
// become paths.
func parseStaged(untrusted []byte) (*stagedState, error) {
	v, err := gvariant.Unmarshal(typeStaged, untrusted)
	if err != nil {
		return nil, fmt.Errorf("not a GVariant of type a{sv}: %w", err)
	}
	dict := lookupDict(v)
	st := &stagedState{}
	if st.target, err = parseStagedID(dict[stagedKeyTarget]); err != nil || st.target == nil {
		return nil, err
	}
	if st.merge, err = parseStagedID(dict[stagedKeyMerge]); err != nil {
		return nil, fmt.Errorf("%s: %w", stagedKeyMerge, err)
	}
	if k, ok := dict[stagedKeyKargs]; ok && k.Type.String() == "as" {
		st.kargs = []string{}
		for _, a := range k.Value.([]any) {
			st.kargs = append(st.kargs, a.(string))
		}
	}
	for key, p := range map[string]*bool{stagedKeyLocked: &st.locked, stagedKeyRetain: &st.retain} {
		if b, ok := dict[key]; ok && b.Type.String() == "b" {
			*p = b.Value.(bool)
		}
	}
	return st, nil
}

// lookupDict turns a decoded a{sv} into a map, the last of duplicate keys winning.
func lookupDict(v any) map[string]gvariant.Variant {
	m := map[string]gvariant.Variant{}
	for _, e := range v.([]any) {
		kv := e.([]any)
		m[kv[0].(string)] = kv[1].(gvariant.Variant)
	}
	return m
}

// parseStagedID reads a deployment's a{sv} (_ostree_sysroot_deserialize_deployment_from_variant);
// nil if v is absent or not an a{sv}.
func parseStagedID(v gvariant.Variant) (*stagedID, error) {
	if v.Type == nil || v.Type.String() != "a{sv}" {
		return nil, nil
	}
	dict := lookupDict(v.Value)
	str := map[string]string{}
	for _, k := range []string{"name", "osname", "bootcsum"} {
		s, ok := dict[k]
		if !ok || s.Type.String() != "s" {
			return nil, fmt.Errorf("missing key: %s", k)
		}
		str[k] = s.Value.(string)
	}
	commit, serial, err := parseDeployName(str["name"])
	if err != nil {
		return nil, err
	}
	if err := validateStateroot(str["osname"]); err != nil {
		return nil, err
	}
	if _, err := ostree.ParseChecksum(str["bootcsum"]); err != nil {
		return nil, fmt.Errorf("invalid bootcsum %q: %w", str["bootcsum"], err)
	}
	return &stagedID{stateroot: str["osname"], commit: commit, serial: serial, bootcsum: str["bootcsum"]}, nil
}

// RuntimeDir returns the runtime state directory in use: the one WithRuntimeDir gave, else
// DefaultRuntimeDir on the running system, else "" (Stage refuses; nothing is staged).
func (s *Sysroot) RuntimeDir() string { return s.runDir }

func (s *Sysroot) stagedPath() string { return filepath.Join(s.runDir, stagedFileName) }
func (s *Sysroot) lockedPath() string { return filepath.Join(s.runDir, lockedFileName) }

// Staged returns the staged deployment, or nil. It is not in Deployments and has Index -1; its
// Kargs are those the state file records (nil: the merge deployment's, taken at finalization);
// until FinalizeStaged its etc/ holds the image's defaults, without the local changes.
func (s *Sysroot) Staged() *Deployment { return s.staged }

// StagedIgnored says why the last Load ignored a staged state file (it names a deployment that
// does not exist, or there is no booted deployment), or nil.
func (s *Sysroot) StagedIgnored() error { return s.stagedIgnored }

// loadStaged reads the staged state (after the boot entries and the booted deployment). A file
// that does not parse is an error (as in libostree, which then fails to load); one naming a
// missing deployment is ignored with a warning; one naming a deployment the boot entries list
// is what a finalization stopped between its commit point and removing the file left:
// stagedStale, nothing is staged.
func (s *Sysroot) loadStaged() error {
	s.staged, s.stagedState, s.stagedStale, s.stagedIgnored = nil, nil, false, nil
	s.runDir = s.cfg.runtimeDir
	if s.runDir == "" && s.live {
		s.runDir = DefaultRuntimeDir
	}
	if s.runDir == "" {
		return nil
	}
	data, err := os.ReadFile(s.stagedPath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the staged deployment: %w", err)
	}
	st, err := parseStaged(data)
	if err != nil {
		return fmt.Errorf("loading the staged deployment from %s: %w; remove the file to drop the staged deployment", s.stagedPath(), err)
	}
	if st == nil {
		return nil
	}
	d := st.target.stub()
	d.Kargs, d.staged = slices.Clone(st.kargs), true
	if slices.ContainsFunc(s.deployments, d.Equal) {
		s.stagedStale, s.stagedState = true, st
		return nil
	}
	ignore := func(why string) error {
		s.stagedIgnored = fmt.Errorf("%s names the staged deployment %s, but %s: ignored (stage again, or remove the file)", s.stagedPath(), d.Dir(), why)
		s.cfg.log.Warn("ignoring the staged deployment", "err", s.stagedIgnored)
		return nil
	}
	if s.booted == nil {
		return ignore("no deployment is booted")
	}
	if fi, err := os.Stat(s.abs(d.Dir())); err != nil || !fi.IsDir() {
		return ignore("it does not exist")
	}
	if err := s.readOrigin(d); err != nil {
		return err
	}
	d.Version = s.commitVersion(d.Commit)
	d.mergeKnown = st.merge == nil
	if st.merge != nil {
		if i := slices.IndexFunc(s.deployments, st.merge.stub().Equal); i >= 0 {
			d.merge, d.mergeKnown = s.deployments[i], true
		}
	}
	s.staged, s.stagedState = d, st
	return nil
}

// StageOptions configures Stage.
type StageOptions struct {
	DeployOptions
	// Retain keeps every existing deployment at finalization (PlaceOptions.Retain).
	Retain bool
	// LockFinalization locks the new deployment's finalization (the staged-deployment-locked
	// file, written before the state file): a shutdown leaves it staged, and a reboot drops it,
	// until UnlockFinalization.
	LockFinalization bool
}

// Stage makes a new deployment of commit to be finalized later (FinalizeStaged, at shutdown):
// as Deploy (checkout, kernel, origin, /var seeded), but etc/ stays the image's defaults and
// the directory stays mutable until finalization, and instead of a boot entry the runtime state
// file records it (first), with its merge deployment and kernel arguments. A deployment staged
// before is removed, and so is the file that locks its finalization (libostree since 2023.8)
// unless o.LockFinalization locks the new one.
// The boot configuration is untouched: until finalization the machine boots as before, and a
// reboot without finalization (the state lives in /run) drops the staged deployment, which
// Cleanup then removes. It needs runtime state (RuntimeDir) and a booted deployment, else
// ErrCannotStage.
//
// The order: the deployment directory (as Deploy, under a temporary name renamed into place;
// a crash leaves an unreferenced directory for Cleanup); the state file, replaced atomically
// (the commit point); the previous staged deployment's directory and origin; the deployment
// refs, so that a prune keeps the staged commit. The caller holds Lock.
func (s *Sysroot) Stage(ctx context.Context, commit ostree.Checksum, o StageOptions) (*Deployment, *DeployStats, error) {
	if s.runDir == "" {
		return nil, nil, fmt.Errorf("%w: %s is a sysroot directory, not the running system, and has no runtime state directory", ErrCannotStage, s.path)
	}
	if s.booted == nil {
		return nil, nil, fmt.Errorf("%w: no deployment is booted", ErrCannotStage)
	}
	d, stats, err := s.deploy(ctx, commit, o.DeployOptions, true)
	if err != nil {
		return nil, nil, err
	}
	st := &stagedState{target: idOf(d), kargs: slices.Clone(d.Kargs), retain: o.Retain}
	if st.kargs == nil {
		st.kargs = []string{}
	}
	if d.merge != nil {
		st.merge = idOf(d.merge)
	}
	data, err := st.marshal()
	if err == nil {
		err = os.MkdirAll(s.runDir, 0o755)
	}
	if err == nil && o.LockFinalization {
		err = atomicfile.WriteFile(s.lockedPath(), nil, 0o644)
	}
	if err == nil {
		err = atomicfile.WriteFile(s.stagedPath(), data, 0o644)
	}
	if err != nil {
		_ = s.removeDeployment(d)
		return nil, nil, fmt.Errorf("writing the staged deployment: %w", err)
	}
	prev := s.staged
	d.staged = true
	s.staged, s.stagedState, s.stagedStale, s.stagedIgnored = d, st, false, nil
	if prev != nil {
		if err := s.removeDeployment(prev); err != nil {
			return nil, nil, fmt.Errorf("removing the deployment staged before: %w", err)
		}
	}
	if prev != nil && !o.LockFinalization {
		if err := removeIfExists(s.lockedPath()); err != nil {
			return nil, nil, err
		}
	}
	if err := s.setDeploymentRefs(s.bootversion, s.subbootversion, s.withStaged()); err != nil {
		return nil, nil, err
	}
	return d, stats, nil
}

// FinalizationLocked reports whether the staged deployment's finalization is locked (the
// staged-deployment-locked file, or the state's "locked" key); false when nothing is staged.
func (s *Sysroot) FinalizationLocked() bool {
	if s.staged == nil {
		return false
	}
	_, err := os.Lstat(s.lockedPath())
	return err == nil || s.stagedState.locked
}

// UnlockFinalization lets the staged deployment be finalized at the next shutdown: it removes
// the staged-deployment-locked file and, when the state file has the "locked" key (libostree's
// --lock-finalization), rewrites the state without it (atomically). Nothing staged or nothing
// locked is no error. The caller holds Lock.
func (s *Sysroot) UnlockFinalization() error {
	if s.staged == nil {
		return nil
	}
	if st := s.stagedState; st.locked {
		unlocked := *st
		unlocked.locked = false
		data, err := unlocked.marshal()
		if err == nil {
			err = atomicfile.WriteFile(s.stagedPath(), data, 0o644)
		}
		if err != nil {
			return fmt.Errorf("unlocking the staged deployment's finalization: %w", err)
		}
		s.stagedState = &unlocked
	}
	if err := removeIfExists(s.lockedPath()); err != nil {
		return fmt.Errorf("unlocking the staged deployment's finalization: %w", err)
	}
	return nil
}

// withStaged is the deployment list as libostree has it: the staged deployment first.
func (s *Sysroot) withStaged() []*Deployment {
	if s.staged == nil {
		return s.deployments
	}
	return append([]*Deployment{s.staged}, s.deployments...)
}

// DiscardStaged drops the staged deployment, if any: the state file and the lock file are
// removed, then its directory and origin. WriteDeployments does it when its list does not hold
// the staged deployment (as libostree's write_deployments). It also removes a state file left
// by an interrupted finalization or naming a missing deployment. The caller holds Lock.
func (s *Sysroot) DiscardStaged() error {
	if s.runDir == "" {
		return nil
	}
	for _, p := range []string{s.stagedPath(), s.lockedPath()} {
		if err := removeIfExists(p); err != nil {
			return err
		}
	}
	d := s.staged
	s.staged, s.stagedState, s.stagedStale, s.stagedIgnored = nil, nil, false, nil
	if d != nil {
		return s.removeDeployment(d)
	}
	return nil
}

// removeDeployment removes a deployment's directory and origin (_ostree_sysroot_rmrf_deployment).
func (s *Sysroot) removeDeployment(d *Deployment) error {
	if err := removeAll(s.abs(d.Dir())); err != nil {
		return err
	}
	return removeIfExists(s.abs(d.Dir() + ".origin"))
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Finalized says what FinalizeStaged did.
type Finalized struct {
	// Deployment is the deployment that was staged, as now listed (Index 0); nil when nothing
	// was staged.
	Deployment *Deployment
	// Locked: finalization is locked (the staged-deployment-locked file, or the state's
	// "locked" key); nothing was done, and the staged deployment stays staged.
	Locked bool
	// AlreadyWritten: an earlier finalization had switched the boot configuration and stopped
	// before removing the state file; only the file was removed.
	AlreadyWritten bool
	// Stats counts the /etc merge.
	Stats DeployStats
}

// FinalizeStaged finishes the staged deployment, as libostree's finalize-staged at shutdown:
// /etc changes of the merge deployment, as they are now, are merged into it, and it is written
// first in the boot order with the retention rules of Place (Retain if it was staged so) by
// WriteDeployments with o. With nothing staged it does nothing (a nil Deployment, no error);
// with finalization locked it reports Locked and does nothing.
//
// The order, each step safe to repeat after a crash: reload; the deployment directory is made
// mutable, etc/ is rebuilt from the commit's defaults (dropping what an interrupted attempt
// merged) and the merge deployment's changes applied; the directory is made immutable;
// WriteDeployments, whose rename is the commit point (before it the previous list boots, and
// the state file still names the staged deployment, so running FinalizeStaged again does it
// all again); then the state file is removed (a crash before that leaves a file naming a
// listed deployment, which Load ignores and the next FinalizeStaged removes). Unlike
// libostree, which removes the state file first and so never retries a finalization, the
// file is removed last. The caller holds Lock.
func (s *Sysroot) FinalizeStaged(ctx context.Context, o WriteOptions) (*Finalized, error) {
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	if s.stagedStale {
		res := &Finalized{AlreadyWritten: true}
		if i := slices.IndexFunc(s.deployments, s.stagedState.target.stub().Equal); i >= 0 {
			res.Deployment = s.deployments[i]
		}
		if err := removeIfExists(s.stagedPath()); err != nil {
			return nil, fmt.Errorf("removing the finalized staged deployment's state: %w", err)
		}
		s.stagedStale, s.stagedState = false, nil
		return res, nil
	}
	staged, st := s.staged, s.stagedState
	if staged == nil {
		return &Finalized{}, nil
	}
	if _, err := os.Lstat(s.lockedPath()); st.locked || err == nil {
		return &Finalized{Deployment: staged, Locked: true}, nil
	}
	if !staged.mergeKnown {
		return nil, fmt.Errorf("finalizing %s: its merge deployment %s.%d is gone from the boot entries", staged.Dir(), st.merge.commit, st.merge.serial)
	}
	d := *staged
	d.staged = false
	if d.Kargs == nil && d.merge != nil {
		d.Kargs = slices.Clone(d.merge.Kargs)
	}
	root := s.abs(d.Dir())
	if err := fsflags.SetImmutable(root, false); err != nil {
		return nil, err
	}
	if err := resetEtc(ctx, s.repo, d.Commit, root); err != nil {
		return nil, fmt.Errorf("finalizing %s: %w", d.Dir(), err)
	}
	res := &Finalized{}
	if d.merge != nil {
		diff, err := mergeEtc(ctx, s.abs(d.merge.Dir()), root)
		if err != nil {
			return nil, fmt.Errorf("finalizing %s: %w", d.Dir(), err)
		}
		res.Stats.EtcModified, res.Stats.EtcRemoved, res.Stats.EtcAdded = len(diff.modified), len(diff.removed), len(diff.added)
	}
	if err := fsflags.SetImmutable(root, true); err != nil {
		return nil, err
	}
	if err := s.WriteDeployments(ctx, s.Place(&d, PlaceOptions{Retain: st.retain}), o); err != nil {
		return nil, err
	}
	if err := removeIfExists(s.stagedPath()); err != nil {
		return nil, fmt.Errorf("the staged deployment is finalized, but removing its state failed: %w", err)
	}
	s.stagedStale, s.stagedState = false, nil
	if i := slices.IndexFunc(s.deployments, d.Equal); i >= 0 {
		res.Deployment = s.deployments[i]
	}
	return res, nil
}
