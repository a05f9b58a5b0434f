package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bootc-go/bootc/pkg/ignition"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// SwitchOption configures Switch.
type SwitchOption func(*switchConfig)

type switchConfig struct{ retain, lockFinalization bool }

// Retain keeps every existing deployment, instead of only the booted one and one rollback.
func Retain() SwitchOption { return func(c *switchConfig) { c.retain = true } }

// LockFinalization stages the new deployment with its finalization locked
// (sysroot.StageOptions.LockFinalization): a shutdown does not apply it until
// Host.UnlockFinalization, so only a reboot the caller chooses does. Where Switch deploys at once
// (no runtime state) it changes nothing.
func LockFinalization() SwitchOption { return func(c *switchConfig) { c.lockFinalization = true } }

// SwitchResult says what Switch did.
type SwitchResult struct {
	Pulled *Pulled
	// Unchanged: the host already followed the image and was on it; nothing was deployed.
	Unchanged bool
	// Deployed is the new deployment (nil when Unchanged).
	Deployed *Deployed
}

// Switch pulls ref's image (verified first when ref asks for it), deploys it in the stateroot of
// the deployment the host follows with that deployment's /etc changes carried over, and makes it
// the default boot entry; from then on the host follows ref. The previous deployment stays as
// the rollback (all of them with Retain). On the running system (runtime state, see
// WithRuntimeDir) the new deployment is staged instead (Deployed.Staged, replacing one staged
// before): /etc is merged and the boot entries written at shutdown, by FinalizeStaged.
func (h *Host) Switch(ctx context.Context, ref imgref.OstreeRef, opts ...SwitchOption) (*SwitchResult, error) {
	var c switchConfig
	for _, o := range opts {
		o(&c)
	}
	spec := specDeployment(h.sys)
	if spec == nil {
		return nil, fmt.Errorf("%w, so there is nothing to switch from: install first with 'bootc install to-filesystem --source-imgref IMAGE ROOT'", ErrNoBootedDeployment)
	}
	p, err := h.pull(ctx, ref)
	if err != nil {
		return nil, err
	}
	res := &SwitchResult{Pulled: p}
	if cur, ok := OriginImage(spec); ok && cur.String() == ref.String() && spec.Commit == p.State.Commit {
		res.Unchanged = true
		h.tidy(ctx)
		return res, nil
	}
	res.Deployed, err = h.deploy(ctx, deployOptions{ref: ref, image: p.State, stateroot: spec.Stateroot, place: sysroot.PlaceOptions{Retain: c.retain}, lockFinalization: c.lockFinalization})
	return res, err
}

// follows returns the deployment the host follows and its image reference.
func (h *Host) follows(what string) (*sysroot.Deployment, imgref.OstreeRef, error) {
	spec := specDeployment(h.sys)
	if spec == nil {
		return nil, imgref.OstreeRef{}, fmt.Errorf("%w, so there is nothing to %s: install first with 'bootc install to-filesystem --source-imgref IMAGE ROOT'", ErrNoBootedDeployment, what)
	}
	ref, ok := OriginImage(spec)
	if !ok {
		return nil, imgref.OstreeRef{}, &NoImageError{Deployment: spec.Dir()}
	}
	return spec, ref, nil
}

// UpdateCheck is what CheckUpgrade found (its JSON form is that of `bootc upgrade --check
// --format json`).
type UpdateCheck struct {
	Image           ImageReference `json:"image"`
	UpdateAvailable bool           `json:"updateAvailable"`
	Current         *CheckedImage  `json:"current"`
	Available       CheckedImage   `json:"available"`
	// Download is what an upgrade would fetch; Total is the whole image.
	Download TransferSize `json:"download"`
	Total    TransferSize `json:"total"`
	// Files, when some layers would be fetched in part (zstd:chunked), says how many of their
	// files the repository lacks: only those are downloaded.
	Files *FileTransfer `json:"files,omitempty"`

	// Ref is the image the host follows.
	Ref imgref.OstreeRef `json:"-"`
	// HeldBack: the available image failed to boot here (see FailedUpdate), so it is no
	// update (UpdateAvailable false).
	HeldBack *FailedUpdate `json:"heldBack,omitempty"`
}

// CheckedImage is an image by digest, version and creation time (RFC 3339).
type CheckedImage struct {
	Digest    string `json:"digest"`
	Version   string `json:"version,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
}

// FileTransfer is the file-level part of a download: PartialLayers layers fetched in part, of
// whose Files Missing are fetched.
type FileTransfer struct {
	PartialLayers int `json:"partialLayers"`
	Files         int `json:"files"`
	Missing       int `json:"missing"`
}

// TransferSize counts layers and compressed bytes.
type TransferSize struct {
	Layers int   `json:"layers"`
	Bytes  int64 `json:"bytes"`
}

func checkedOf(s *imagestore.ImageState) *CheckedImage {
	ci := &CheckedImage{Digest: s.Digest.String(), Version: s.Version}
	if !s.Created.IsZero() {
		ci.Timestamp = s.Created.UTC().Format(time.RFC3339)
	}
	return ci
}

// CheckUpgrade says whether the image the host follows has changed and what an upgrade would
// download, from the manifest and config alone (verified first when the host follows a signed
// image). It changes nothing.
func (h *Host) CheckUpgrade(ctx context.Context) (*UpdateCheck, error) {
	spec, ref, err := h.follows("upgrade")
	if err != nil {
		return nil, err
	}
	current, _ := imagestore.ImageStateOf(h.sys.Repo(), spec.Commit)
	o, _, err := h.pullOptions(ctx, ref)
	if err != nil {
		return nil, err
	}
	plan, est, err := imagestore.InspectFetch(ctx, h.sys.Repo(), ref, o)
	if err != nil {
		return nil, fmt.Errorf("checking %s: %w", ref.Image, err)
	}
	res := &UpdateCheck{
		Image:           ImageReferenceOf(ref),
		Ref:             ref,
		UpdateAvailable: current == nil || current.Digest != plan.Digest,
		Available:       *checkedOf(&imagestore.ImageState{Digest: plan.Digest, Version: plan.Version, Created: plan.Created}),
		Total:           TransferSize{Layers: len(plan.Layers)},
	}
	if current != nil {
		res.Current = checkedOf(current)
	}
	if res.UpdateAvailable {
		res.HeldBack = h.heldBack(spec.Stateroot, ref, plan.Digest)
		res.UpdateAvailable = res.HeldBack == nil
	}
	for _, l := range plan.Layers {
		res.Total.Bytes += l.Size
	}
	if res.UpdateAvailable {
		res.Download.Layers, res.Download.Bytes = est.Layers, est.Bytes
		if est.PartialLayers > 0 {
			res.Files = &FileTransfer{PartialLayers: est.PartialLayers, Files: est.Files, Missing: est.Missing}
		}
	}
	return res, nil
}

// UpgradeMode says how far Upgrade goes.
type UpgradeMode int

const (
	// UpgradeDeploy pulls the update and deploys it.
	UpgradeDeploy UpgradeMode = iota
	// UpgradeDownloadOnly pulls the update and deploys nothing; Status lists it as the
	// cachedUpdate, and the image store keeps it for UpgradeFromDownloaded.
	UpgradeDownloadOnly
	// UpgradeFromDownloaded deploys the update pulled by UpgradeDownloadOnly without reading
	// the image's source (ErrNoDownloadedUpdate when there is none).
	UpgradeFromDownloaded
)

// UpgradeResult says what Upgrade did.
type UpgradeResult struct {
	// Image is the reference the host follows.
	Image imgref.OstreeRef
	// From is the deployment upgraded from, FromImage its image (nil if unknown).
	From      *sysroot.Deployment
	FromImage *imagestore.ImageState
	// Pulled is what the pull fetched (nil with UpgradeFromDownloaded).
	Pulled *Pulled
	// Next is the newest image; NoUpdate says it is the one From runs, or HeldBack (nothing
	// was deployed).
	Next     *imagestore.ImageState
	NoUpdate bool
	// HeldBack: Next failed to boot here (see FailedUpdate); Upgrade does not deploy it.
	HeldBack *FailedUpdate
	// Deployed is the new deployment (nil with NoUpdate or UpgradeDownloadOnly).
	Deployed *Deployed
}

// Upgrade brings the host to the newest version of the image it follows: pulls only what
// changed (verified first when the host follows a signed image) and, unless mode is
// UpgradeDownloadOnly, deploys it as the default boot entry with /etc changes carried over
// (staged on the running system, as with Switch). A staged deployment counts as what the host
// runs: an update it already has is NoUpdate.
func (h *Host) Upgrade(ctx context.Context, mode UpgradeMode) (*UpgradeResult, error) {
	spec, ref, err := h.follows("upgrade")
	if err != nil {
		return nil, err
	}
	res := &UpgradeResult{Image: ref, From: spec}
	res.FromImage, _ = imagestore.ImageStateOf(h.sys.Repo(), spec.Commit)
	if mode == UpgradeFromDownloaded {
		res.Next, err = imagestore.QueryImage(h.sys.Repo(), ref)
		if errors.Is(err, imagestore.ErrImageNotPulled) || (err == nil && res.Next.Commit == spec.Commit) {
			return nil, fmt.Errorf("%w for %s: run 'bootc upgrade --download-only' first", ErrNoDownloadedUpdate, ref.Image)
		}
		if err != nil {
			return nil, err
		}
	} else {
		if res.Pulled, err = h.pull(ctx, ref); err != nil {
			return nil, err
		}
		res.Next = res.Pulled.State
	}
	if res.Next.Commit == spec.Commit {
		res.NoUpdate = true
		h.tidy(ctx)
		return res, nil
	}
	if res.HeldBack = h.heldBack(spec.Stateroot, ref, res.Next.Digest); res.HeldBack != nil {
		res.NoUpdate = true
		return res, nil
	}
	if mode == UpgradeDownloadOnly {
		return res, nil
	}
	res.Deployed, err = h.deploy(ctx, deployOptions{ref: ref, image: res.Next, stateroot: spec.Stateroot})
	return res, err
}

// RollbackResult says what Rollback did.
type RollbackResult struct {
	// Deployment boots next; Image is its image (nil if it was not deployed from one).
	Deployment *sysroot.Deployment
	Image      *imagestore.ImageState
	// UndoPending: the booted deployment became the default again, undoing a deployment made
	// after it (the one ahead of it stays as the rollback), or the staged one.
	UndoPending bool
	// Discarded is the staged deployment the rollback dropped, or nil.
	Discarded *sysroot.Deployment
}

// Rollback makes the rollback deployment the default boot entry (sysroot.RollbackTarget);
// nothing listed is deleted, so a second Rollback swaps back.
//
// A staged deployment is discarded, as libostree's write_deployments drops a staged deployment
// the new list does not start with (rpm-ostree and upstream bootc roll back so). When it is all
// there is to roll back from (nothing listed after or ahead of the booted deployment), Rollback
// only discards it: the booted deployment stays the default (UndoPending), where rpm-ostree
// refuses and points to its `cleanup -p`.
func (h *Host) Rollback(ctx context.Context) (*RollbackResult, error) {
	rb, undo := h.sys.RollbackTarget()
	staged := h.sys.Staged()
	if rb == nil && staged != nil && h.sys.Booted() != nil {
		if err := h.sys.DiscardStaged(); err != nil {
			return nil, fmt.Errorf("discarding the staged deployment: %w", err)
		}
		h.tidy(ctx)
		b := h.sys.Booted()
		state, _ := imagestore.ImageStateOf(h.sys.Repo(), b.Commit)
		return &RollbackResult{Deployment: b, Image: state, UndoPending: true, Discarded: staged}, nil
	}
	if rb == nil {
		return nil, fmt.Errorf("%w: the host has only one deployment", ErrNothingToRollBack)
	}
	if err := h.makeDefault(ctx, rb); err != nil {
		return nil, fmt.Errorf("writing the boot configuration: %w", err)
	}
	state, _ := imagestore.ImageStateOf(h.sys.Repo(), rb.Commit)
	return &RollbackResult{Deployment: rb, Image: state, UndoPending: undo, Discarded: staged}, nil
}

// makeDefault writes the boot order with d first and the other deployments behind it, in their
// order (and cleans up).
func (h *Host) makeDefault(ctx context.Context, d *sysroot.Deployment) error {
	list := []*sysroot.Deployment{d}
	for _, o := range h.sys.Deployments() {
		if !o.Equal(d) {
			list = append(list, o)
		}
	}
	return h.sys.WriteDeployments(ctx, list, sysroot.WriteOptions{})
}

// Install says what InstallToFilesystem installs.
type Install struct {
	// Source is the image to install.
	Source imgref.OstreeRef
	// Target is the image the installed host follows (nil: Source).
	Target *imgref.OstreeRef
	// Stateroot is the stateroot to deploy into ("" means "default").
	Stateroot string
	// Kargs are kernel arguments for the boot entry, before the image's (kargs.d).
	Kargs []string
	// Ignition is applied to the new deployment (its /etc) and its stateroot's /var once the
	// image is deployed, before the install returns (nil: none). It is parsed by the caller
	// (ignition.Parse), so that a refused config is refused before anything is written.
	Ignition *ignition.Config
	// RootSSHAuthorizedKeys are root's SSH authorized keys (an authorized_keys file), written
	// as upstream bootc does (RootSSHTmpfiles).
	RootSSHAuthorizedKeys []byte
}

// ErrInvalidInstall marks an install that cannot work as asked: a stateroot that is no plain name,
// a root that is no directory.
var ErrInvalidInstall = errors.New("invalid install")

// Validate checks the stateroot name ("" stands for "default") and root's SSH keys.
func (in Install) Validate() error {
	if s := in.Stateroot; strings.ContainsAny(s, "/ \t\n") || s == "." || s == ".." {
		return fmt.Errorf("%w: stateroot %q: use a plain name such as default or fedora", ErrInvalidInstall, s)
	}
	if in.RootSSHAuthorizedKeys != nil {
		if _, err := RootSSHTmpfiles(in.RootSSHAuthorizedKeys); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidInstall, err)
		}
	}
	return nil
}

// InstallResult says what InstallToFilesystem did.
type InstallResult struct {
	Root, Stateroot string
	// Target is the image the host follows.
	Target   imgref.OstreeRef
	Pulled   *Pulled
	Deployed *Deployed
	// Ignition says what Install.Ignition did (nil without one).
	Ignition *ignition.Report
	// RootSSHKeys is where root's SSH keys were written (the tmpfiles.d snippet, as the host
	// sees it), "" without Install.RootSSHAuthorizedKeys.
	RootSSHKeys string
}

// InstallToFilesystem creates the sysroot layout in the directory root (ostree/repo,
// ostree/deploy, boot), takes its lock, pulls in.Source, deploys it into the stateroot and
// writes the boot entries; before those, it writes root's SSH keys and applies the Ignition
// config to the new deployment (provision), and a failure there removes the deployment again.
// root must not hold deployments already (*AlreadyInstalledError).
func InstallToFilesystem(ctx context.Context, root string, in Install, opts ...Option) (*InstallResult, error) {
	cfg := newConfig(opts)
	if in.Stateroot == "" {
		in.Stateroot = "default"
	}
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: root %s is not a directory: mount the target filesystem there first", ErrInvalidInstall, root)
	}
	target := in.Source
	if in.Target != nil {
		target = *in.Target
	}
	sys, err := sysroot.Init(ctx, root)
	if err != nil {
		return nil, err
	}
	h, err := lock(ctx, sys, cfg)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	if n := len(sys.Deployments()); n > 0 {
		return nil, &AlreadyInstalledError{Root: root, Deployments: n}
	}
	if err := sys.InitStateroot(in.Stateroot); err != nil {
		return nil, err
	}
	res := &InstallResult{Root: root, Stateroot: in.Stateroot, Target: target}
	if res.Pulled, err = h.pull(ctx, in.Source); err != nil {
		return nil, err
	}
	res.Deployed, err = h.deploy(ctx, deployOptions{ref: target, image: res.Pulled.State, stateroot: in.Stateroot, kargs: in.Kargs, noMerge: true,
		prepare: func(d *sysroot.Deployment) error { return provision(ctx, root, d, in, res) }})
	if err != nil {
		return nil, err
	}
	return res, nil
}
