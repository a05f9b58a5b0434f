package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"github.com/bootc-go/bootc/internal/osrelease"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"golang.org/x/sys/unix"
)

// WriteOptions configures WriteDeployments.
type WriteOptions struct {
	// SkipCleanup leaves undeployed directories, unused kernels and unreferenced objects for a
	// later Cleanup.
	SkipCleanup bool
	// BootAttempts, when above zero and the sysroot boots with GRUB (boot/grub/grubenv exists),
	// gives the new default deployment that many boot attempts: boot_counter=BootAttempts and
	// boot_success=0 are set in the GRUB environment block before the commit point (other
	// variables kept). At most grub.MaxBootAttempts, the menu's count-down.
	BootAttempts int
}

// WriteDeployments makes list the sysroot's deployments, in this boot order, atomically: the
// new boot version's /boot/loader.N/entries (BLS entries named as ostree 2022.7 does,
// ostree-<n>-<stateroot>.conf), the kernels under /boot/ostree/<stateroot>-<bootcsum>/,
// /ostree/boot.N.M links, and the deployment refs ostree/N/M/<index> are all written first and
// synced; then the /ostree/boot.N and /boot/loader symlinks are swapped by rename. A crash at
// any point leaves either the old or the new list bootable and complete. Then, unless
// SkipCleanup, Cleanup runs.
//
// In detail, with B the current boot version (0 without /boot/loader) and N = 1-B: M is the
// other subboot version than the one /ostree/boot.N points to (1 if none); /boot/loader.N and
// /ostree/boot.N.M are removed if a previous attempt left them; each deployment gets its
// bootserial (counting up per bootcsum in list order), its kernel in /boot/ostree (kept if
// there), its entry in /boot/loader.N/entries and its link
// /ostree/boot.N.M/<stateroot>/<bootcsum>/<bootserial>; /boot/boot -> . is made if missing;
// when the sysroot boots with GRUB (grub.Enabled), the menu /boot/loader.N/grub.cfg is written
// from the same entries, in list order (the default first); the refs ostree/N/M/<index> are
// set; the filesystems are synced (syncfs); /ostree/boot.N is pointed at boot.N.M; the boot
// counter is set (BootAttempts); /boot/loader.tmp -> loader.N is made and synced; and the rename of
// /boot/loader.tmp over /boot/loader switches to the new list. That rename is the commit
// point: before it, /boot/loader -> loader.B and everything it refers to are untouched. After
// it, the deployment refs of other boot versions are deleted and the sysroot is reloaded.
//
// When the new list would get the same entries as the current one (same length, and at each
// index the same stateroot, kernel, kernel arguments and version: only the deployments behind
// them differ), the entries are kept and only /ostree/boot.B is swapped to a new boot.B.M,
// whose rename is then the commit point (the boot counter set before it), as libostree does.
// loader.B's GRUB menu is kept with them: it is made from the entries alone. A sysroot that
// boots with GRUB but whose loader.B has no menu yet gets a new boot version instead.
//
// A staged deployment (Staged) that list does not hold is discarded (DiscardStaged) before
// anything is written, as libostree's write_deployments drops one that is not first; the
// staged deployment itself is refused (its /etc is not merged yet: FinalizeStaged writes it).
// A state file left by an interrupted finalization is removed too.
//
// On success the list's deployments get their Index and BootSerial, and Deployments()
// returns freshly loaded ones. The caller holds Lock.
func (s *Sysroot) WriteDeployments(ctx context.Context, list []*Deployment, o WriteOptions) error {
	if err := s.checkList(list); err != nil {
		return err
	}
	if o.BootAttempts > grub.MaxBootAttempts {
		return fmt.Errorf("writing deployments: %d boot attempts: the GRUB menu counts down from at most %d", o.BootAttempts, grub.MaxBootAttempts)
	}
	cur, haveLoader, err := s.readBootversion()
	if err != nil {
		return err
	}
	if cur != s.bootversion || !haveLoader && len(s.deployments) > 0 {
		if err := s.Load(ctx); err != nil { // written by someone else since our Load
			return err
		}
	}
	if s.staged != nil && !slices.ContainsFunc(list, s.staged.Equal) || s.stagedStale {
		if err := s.DiscardStaged(); err != nil {
			return fmt.Errorf("discarding the staged deployment: %w", err)
		}
	}
	// Bootserials and kernels.
	serials := make([]int, len(list))
	kernels := make([]*kernelLayout, len(list))
	count := map[string]int{}
	for i, d := range list {
		k, err := s.deploymentKernel(d)
		if err != nil {
			return err
		}
		kernels[i] = k
		serials[i] = count[k.bootcsum]
		count[k.bootcsum]++
	}

	var bv, sub int
	if haveLoader && s.sameBootConfig(list, kernels) && s.haveMenu(cur) {
		// Every entry of the current loader.B stays right: only the links behind
		// /ostree/boot.B change, and swapping that symlink is the commit point.
		bv = cur
		if sub, err = s.readSubbootversion(bv); err != nil {
			return err
		}
		sub = 1 - sub
		if err := s.writeBootLinks(bv, sub, list, kernels, serials); err != nil {
			return err
		}
		if err := s.setBootCounter(o.BootAttempts); err != nil {
			return err
		}
		if err := s.syncAndSwap(bv, sub); err != nil {
			return err
		}
	} else {
		bv = 1 - cur
		if sub, err = s.readSubbootversion(bv); err != nil {
			return err
		}
		sub = 1 - sub
		if err := s.writeEntries(ctx, bv, list, kernels, serials); err != nil {
			return err
		}
		if err := s.writeBootLinks(bv, sub, list, kernels, serials); err != nil {
			return err
		}
		if err := s.syncAndSwap(bv, sub); err != nil {
			return err
		}
		if err := s.setBootCounter(o.BootAttempts); err != nil {
			return err
		}
		if err := swapSymlink(fmt.Sprintf("loader.%d", bv), s.abs("boot/loader")); err != nil {
			return err
		}
	}
	// Committed.
	for i, d := range list {
		d.Index, d.BootSerial, d.BootCsum = i, serials[i], kernels[i].bootcsum
	}
	if err := s.deleteOtherDeploymentRefs(bv, sub, len(list)); err != nil {
		return err
	}
	if err := s.Load(ctx); err != nil {
		return err
	}
	if !o.SkipCleanup {
		if _, err := s.Cleanup(ctx); err != nil {
			return fmt.Errorf("the new deployments are in place, but cleaning up failed: %w", err)
		}
	}
	return nil
}

// deploymentKernel returns d's kernel layout and bootcsum. The kernel is checksummed (tens of
// MiB) only where nothing vouches for it: a deployment Deploy made in this process carries the
// layout it checksummed; one whose recorded BootCsum already has its kernel directory
// /boot/ostree/<stateroot>-<bootcsum> holding every file of the layout boots from that copy
// (installKernel keeps what is there), as libostree trusts a deployment's bootcsum once it is
// deployed. Otherwise the kernel is checksummed and must match a recorded BootCsum.
func (s *Sysroot) deploymentKernel(d *Deployment) (*kernelLayout, error) {
	if d.kernel != nil && d.kernel.bootcsum == d.BootCsum {
		return d.kernel, nil
	}
	root := s.abs(d.Dir())
	k, err := locateKernel(root)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Dir(), err)
	}
	if d.BootCsum != "" && s.haveBootDir(d.Stateroot, d.BootCsum, k) {
		k.bootcsum = d.BootCsum
		return k, nil
	}
	if err := k.checksum(root); err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Dir(), err)
	}
	if d.BootCsum != "" && d.BootCsum != k.bootcsum {
		return nil, fmt.Errorf("deployment %s: its kernel checksums to %s, not the recorded %s; the deployment directory was modified, deploy the image again", d.Dir(), k.bootcsum, d.BootCsum)
	}
	return k, nil
}

// haveBootDir reports whether /boot/ostree/<stateroot>-<bootcsum> holds every file of k.
func (s *Sysroot) haveBootDir(stateroot, bootcsum string, k *kernelLayout) bool {
	dir := s.abs(fmt.Sprintf("boot/ostree/%s-%s", stateroot, bootcsum))
	for _, f := range k.files() {
		if st, err := os.Lstat(filepath.Join(dir, f[1])); err != nil || !st.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// sameBootConfig reports whether list would get the same boot entries as the loaded
// deployments, position by position (deployment_bootconfigs_equal): same number, and at each
// index the same stateroot, bootcsum, kernel arguments and commit version. Then libostree
// only swaps the subboot version, and so do we.
func (s *Sysroot) sameBootConfig(list []*Deployment, kernels []*kernelLayout) bool {
	if len(list) != len(s.deployments) {
		return false
	}
	for i, d := range list {
		old := s.deployments[i]
		if d.Stateroot != old.Stateroot || kernels[i].bootcsum != old.BootCsum ||
			strings.Join(withoutOstreeKarg(d.Kargs), " ") != strings.Join(old.Kargs, " ") ||
			s.commitVersion(d.Commit) != old.Version {
			return false
		}
	}
	return true
}

// writeEntries writes /boot/loader.<bv>/entries for list (removing what an earlier attempt
// left there), installs the kernels and, when the sysroot boots with GRUB, writes the menu
// /boot/loader.<bv>/grub.cfg from the same entries.
func (s *Sysroot) writeEntries(ctx context.Context, bv int, list []*Deployment, kernels []*kernelLayout, serials []int) error {
	bootprefix, err := s.bootprefix()
	if err != nil {
		return err
	}
	showStateroot := false
	for _, d := range list {
		showStateroot = showStateroot || d.Stateroot != list[0].Stateroot
	}
	loaderDir := s.abs(fmt.Sprintf("boot/loader.%d", bv))
	entriesDir := filepath.Join(loaderDir, "entries")
	if err := os.RemoveAll(loaderDir); err != nil {
		return fmt.Errorf("removing a stale %s: %w", loaderDir, err)
	}
	if err := os.MkdirAll(entriesDir, 0o755); err != nil {
		return fmt.Errorf("writing boot entries: %w", err)
	}
	var menu []grub.MenuEntry
	for i, d := range list {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := kernels[i]
		bootDir := s.abs(fmt.Sprintf("boot/ostree/%s-%s", d.Stateroot, k.bootcsum))
		if err := installKernel(s.abs(d.Dir()), k, bootDir); err != nil {
			return fmt.Errorf("deployment %s: %w", d.Dir(), err)
		}
		entry, err := s.bootEntry(d, i, len(list), bv, serials[i], k, bootprefix, showStateroot)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("ostree-%d-%s.conf", len(list)-i, d.Stateroot)
		if err := atomicfile.WriteFile(filepath.Join(entriesDir, name), entry.marshal(), 0o644); err != nil {
			return fmt.Errorf("writing boot entry %s: %w", name, err)
		}
		menu = append(menu, menuEntry(entry, d.Stateroot, k.bootcsum, serials[i]))
	}
	if err := atomicfile.SyncDir(entriesDir); err != nil {
		return err
	}
	if grub.Enabled(s.abs("boot")) {
		cfg, err := grub.Config(menu, grub.ConfigOptions{})
		if err != nil {
			return fmt.Errorf("writing the GRUB menu: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(loaderDir, "grub.cfg"), cfg, 0o644); err != nil {
			return fmt.Errorf("writing the GRUB menu: %w", err)
		}
		if err := atomicfile.SyncDir(loaderDir); err != nil {
			return err
		}
	}
	return ensureSymlink(".", s.abs("boot/boot"))
}

// menuEntry is the GRUB menu entry of a BLS entry: its title, kernel, initramfs and options.
// The ID names the entry's ostree= target without the boot version,
// ostree-<stateroot>-<bootcsum>-<bootserial>: the same in both boot versions, and the same
// for entries that sameBootConfig finds equal.
func menuEntry(e *blsEntry, stateroot, bootcsum string, bootserial int) grub.MenuEntry {
	m := grub.MenuEntry{
		ID:      fmt.Sprintf("ostree-%s-%s-%d", stateroot, bootcsum, bootserial),
		Title:   e.get("title"),
		Linux:   e.get("linux"),
		Options: e.get("options"),
	}
	if initrd := e.get("initrd"); initrd != "" {
		m.Initrd = []string{initrd}
	}
	return m
}

// haveMenu reports whether /boot/loader.<bv> has the GRUB menu it needs: true unless the
// sysroot boots with GRUB and loader.<bv>/grub.cfg is missing (GRUB was set up after the
// entries were written).
func (s *Sysroot) haveMenu(bv int) bool {
	if !grub.Enabled(s.abs("boot")) {
		return true
	}
	_, err := os.Stat(s.abs(fmt.Sprintf("boot/loader.%d/grub.cfg", bv)))
	return err == nil
}

// setBootCounter gives the next boot n attempts at the default deployment (WriteOptions.
// BootAttempts): boot_counter=n and boot_success=0 in /boot/grub/grubenv, when n is above zero
// and that file exists.
func (s *Sysroot) setBootCounter(n int) error {
	if n <= 0 {
		return nil
	}
	path := s.abs("boot/" + grub.EnvFile)
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("setting the boot counter: %w", err)
	}
	err := grub.UpdateEnv(path, func(e *grub.Env) {
		e.Set(grub.VarBootCounter, strconv.Itoa(n))
		e.Set(grub.VarBootSuccess, "0")
	})
	if err != nil {
		return fmt.Errorf("setting the boot counter: %w", err)
	}
	return nil
}

// writeBootLinks writes /ostree/boot.<bv>.<sub>/<stateroot>/<bootcsum>/<bootserial> ->
// ../../../deploy/<stateroot>/deploy/<commit>.<serial> (removing what an earlier attempt left
// there) and the deployment refs ostree/<bv>/<sub>/<index>.
func (s *Sysroot) writeBootLinks(bv, sub int, list []*Deployment, kernels []*kernelLayout, serials []int) error {
	subDir := s.abs(fmt.Sprintf("ostree/boot.%d.%d", bv, sub))
	if err := os.RemoveAll(subDir); err != nil {
		return fmt.Errorf("removing a stale %s: %w", subDir, err)
	}
	for i, d := range list {
		linkDir := filepath.Join(subDir, d.Stateroot, kernels[i].bootcsum)
		if err := os.MkdirAll(linkDir, 0o755); err != nil {
			return fmt.Errorf("writing boot links: %w", err)
		}
		target := "../../../deploy/" + d.Stateroot + "/deploy/" + d.name()
		if err := os.Symlink(target, filepath.Join(linkDir, fmt.Sprint(serials[i]))); err != nil {
			return fmt.Errorf("writing boot links: %w", err)
		}
	}
	return s.setDeploymentRefs(bv, sub, list)
}

// syncAndSwap syncs everything written and points /ostree/boot.<bv> at boot.<bv>.<sub>.
func (s *Sysroot) syncAndSwap(bv, sub int) error {
	if err := s.syncfs(); err != nil {
		return err
	}
	return swapSymlink(fmt.Sprintf("boot.%d.%d", bv, sub), s.abs(fmt.Sprintf("ostree/boot.%d", bv)))
}

func withoutOstreeKarg(kargs []string) []string {
	var out []string
	for _, a := range kargs {
		if !strings.HasPrefix(a, "ostree=") {
			out = append(out, a)
		}
	}
	return out
}

// checkList refuses an empty list, duplicates, and deployments whose directory is missing.
func (s *Sysroot) checkList(list []*Deployment) error {
	if len(list) == 0 {
		return errors.New("writing deployments: the list is empty; a sysroot needs at least one deployment to boot")
	}
	for i, d := range list {
		if d == nil {
			return fmt.Errorf("writing deployments: entry %d is nil", i)
		}
		if err := validateStateroot(d.Stateroot); err != nil {
			return err
		}
		if d.staged {
			return fmt.Errorf("writing deployments: %s is staged, its /etc not merged yet: finalize it (FinalizeStaged) instead", d.Dir())
		}
		for _, e := range list[:i] {
			if e.Equal(d) {
				return fmt.Errorf("writing deployments: %s is listed twice", d.Dir())
			}
		}
		if st, err := os.Stat(s.abs(d.Dir())); err != nil || !st.IsDir() {
			return fmt.Errorf("writing deployments: %s does not exist (was it cleaned up? deploy it again)", s.abs(d.Dir()))
		}
	}
	return nil
}

// bootprefix is "/boot/" when the repository config has sysroot.bootprefix=true, else "/".
func (s *Sysroot) bootprefix() (string, error) {
	cfg, err := s.repo.Config()
	if err != nil {
		return "", fmt.Errorf("reading the repository config: %w", err)
	}
	if v := strings.ToLower(cfg["sysroot"]["bootprefix"]); v == "true" || v == "1" {
		return "/boot/", nil
	}
	return "/", nil
}

// bootEntry builds deployment d's BLS entry (install_deployment_kernel, spec §2.3).
func (s *Sysroot) bootEntry(d *Deployment, index, n, bootversion, bootserial int, k *kernelLayout, bootprefix string, showStateroot bool) (*blsEntry, error) {
	root, err := os.OpenRoot(s.abs(d.Dir()))
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", d.Dir(), err)
	}
	osr, path, err := osrelease.Read(root)
	root.Close()
	if err == nil && path == "" {
		err = fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("deployment %s: reading os-release: %w", d.Dir(), err)
	}
	title := osReleaseTitle(osr)
	if title == "" {
		return nil, fmt.Errorf("deployment %s: os-release has no PRETTY_NAME or ID; the image must set one", d.Dir())
	}
	version := s.commitVersion(d.Commit)
	if version != "" && !strings.Contains(title, version) {
		title += " " + version
	}
	title += " (ostree"
	if showStateroot {
		title += ":" + d.Stateroot
	}
	title += fmt.Sprintf(":%d)", index)

	e := &blsEntry{values: map[string]string{}}
	e.set("title", title)
	e.set("version", fmt.Sprint(n-index))
	dir := bootprefix + "ostree/" + d.Stateroot + "-" + k.bootcsum + "/"
	kargs := withoutOstreeKarg(d.Kargs)
	if k.initramfs == "" {
		kargs = replaceKarg(kargs, fmt.Sprintf("init=/ostree/boot.%d/%s/%s/%d/usr/lib/ostree/ostree-prepare-root", bootversion, d.Stateroot, k.bootcsum, bootserial))
	}
	kargs = append(kargs, fmt.Sprintf("ostree=/ostree/boot.%d/%s/%s/%d", bootversion, d.Stateroot, k.bootcsum, bootserial))
	e.set("options", strings.Join(kargs, " "))
	if k.devicetree != "" {
		e.set("devicetree", dir+"devicetree-"+k.kver)
	}
	e.set("linux", dir+"vmlinuz-"+k.kver)
	if k.initramfs != "" {
		e.set("initrd", dir+k.initramfsName())
	}
	return e, nil
}

// replaceKarg replaces the first argument with arg's key (and drops the others), or appends
// arg, as ostree_kernel_args_replace_take.
func replaceKarg(kargs []string, arg string) []string {
	key, _, _ := strings.Cut(arg, "=")
	out := kargs[:0:0]
	done := false
	for _, a := range kargs {
		if k, _, _ := strings.Cut(a, "="); k == key {
			if !done {
				out = append(out, arg)
				done = true
			}
			continue
		}
		out = append(out, a)
	}
	if !done {
		out = append(out, arg)
	}
	return out
}

// ensureSymlink makes path a symlink to target unless it already is one.
func ensureSymlink(target, path string) error {
	if t, err := os.Readlink(path); err == nil && t == target {
		return nil
	}
	return swapSymlink(target, path)
}

// swapSymlink atomically points path at target: a symlink <path>.tmp is made, synced with its
// directory, and renamed over path.
func swapSymlink(target, path string) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("swapping %s: %w", path, err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		return fmt.Errorf("swapping %s: %w", path, err)
	}
	if err := atomicfile.SyncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("swapping %s: %w", path, err)
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// syncfs flushes the filesystems of the sysroot and of /boot (a separate partition on real
// systems) to disk.
func (s *Sysroot) syncfs() error {
	for _, dir := range []string{s.path, s.abs("boot")} {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", dir, err)
		}
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("syncing %s: %w", dir, err)
		}
	}
	return nil
}

// deploymentRefPrefix holds the refs that keep deployed commits from being pruned.
const deploymentRefPrefix = "ostree/"

// setDeploymentRefs points ostree/<bv>/<sub>/<i> at list[i]'s commit, first deleting any left
// under ostree/<bv>/<sub>/ by an earlier attempt (no loaded list uses them).
func (s *Sysroot) setDeploymentRefs(bv, sub int, list []*Deployment) error {
	refs, err := s.repo.ListRefs()
	if err != nil {
		return fmt.Errorf("listing deployment refs: %w", err)
	}
	prefix := fmt.Sprintf("%s%d/%d/", deploymentRefPrefix, bv, sub)
	for _, r := range refs {
		if strings.HasPrefix(r.Name, prefix) {
			if err := s.repo.DeleteRef(r.Name); err != nil {
				return fmt.Errorf("deleting stale deployment ref: %w", err)
			}
		}
	}
	for i, d := range list {
		if err := s.repo.SetRef(fmt.Sprintf("%s%d", prefix, i), d.Commit); err != nil {
			return fmt.Errorf("setting deployment ref: %w", err)
		}
	}
	return nil
}

// isDeploymentRef reports whether ref has the form ostree/<bv>/<sub>/<index>; other refs under
// ostree/ (ostree/container/image/..., ostree/container/blob/...) belong to image stores.
func isDeploymentRef(ref string) bool {
	parts := strings.Split(strings.TrimPrefix(ref, deploymentRefPrefix), "/")
	if !strings.HasPrefix(ref, deploymentRefPrefix) || len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return false
		}
	}
	return true
}

// deleteOtherDeploymentRefs deletes every deployment ref but ostree/<bv>/<sub>/<i> for i < n.
func (s *Sysroot) deleteOtherDeploymentRefs(bv, sub, n int) error {
	refs, err := s.repo.ListRefs()
	if err != nil {
		return fmt.Errorf("listing deployment refs: %w", err)
	}
	keep := map[string]bool{}
	for i := range n {
		keep[fmt.Sprintf("%s%d/%d/%d", deploymentRefPrefix, bv, sub, i)] = true
	}
	for _, r := range refs {
		if isDeploymentRef(r.Name) && !keep[r.Name] {
			if err := s.repo.DeleteRef(r.Name); err != nil {
				return fmt.Errorf("deleting old deployment ref: %w", err)
			}
		}
	}
	return nil
}
