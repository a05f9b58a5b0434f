package host

import (
	"context"
	"time"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// The status document: bootc's BootcHost, org.containers.bootc/v1 (its JSON and YAML field
// names are those of bootc's host-v1 schema).

// APIVersion and Kind identify the status document.
const (
	APIVersion = "org.containers.bootc/v1"
	Kind       = "BootcHost"
)

// BootcHost is the host's state.
type BootcHost struct {
	APIVersion string       `json:"apiVersion" yaml:"apiVersion"`
	Kind       string       `json:"kind" yaml:"kind"`
	Metadata   HostMetadata `json:"metadata" yaml:"metadata"`
	Spec       HostSpec     `json:"spec" yaml:"spec"`
	Status     HostStatus   `json:"status" yaml:"status"`
}

// HostMetadata is the document's metadata (name is always "host").
type HostMetadata struct {
	Name string `json:"name" yaml:"name"`
}

// HostSpec is what the host follows: the image of the staged (else booted) deployment, and
// whether the next boot is the default or a queued rollback.
type HostSpec struct {
	Image     *ImageReference `json:"image" yaml:"image"`
	BootOrder string          `json:"bootOrder" yaml:"bootOrder"`
}

// ImageReference names an image and how its signature is checked: Signature is
// "containerPolicy" or {"ostreeRemote": NAME}, and absent for an unverified image, as bootc
// writes it (its ImageReference::from: ContainerPolicyAllowInsecure => None). Podman Machine
// decodes it into a struct, so a string there for the common unverified case would break
// `podman machine os upgrade`. Records written before this change may hold "insecure".
type ImageReference struct {
	Image     string `json:"image" yaml:"image"`
	Transport string `json:"transport" yaml:"transport"`
	Signature any    `json:"signature,omitempty" yaml:"signature,omitempty"`
}

// HostStatus lists the deployments by role.
type HostStatus struct {
	Staged           *BootEntry   `json:"staged" yaml:"staged"`
	Booted           *BootEntry   `json:"booted" yaml:"booted"`
	Rollback         *BootEntry   `json:"rollback" yaml:"rollback"`
	OtherDeployments []*BootEntry `json:"otherDeployments,omitempty" yaml:"otherDeployments,omitempty"`
	RollbackQueued   bool         `json:"rollbackQueued" yaml:"rollbackQueued"`
	// Type is "bootcHost" when the booted deployment is a container image's, else nil.
	Type *string `json:"type" yaml:"type"`
	// FailedUpdate is the latest update that failed to boot, after which the host fell back
	// to the previous deployment (CheckFallback); absent when none did.
	FailedUpdate *FailedUpdate `json:"failedUpdate,omitempty" yaml:"failedUpdate,omitempty"`
	// UpdateAgent is what the update agent (bootc update-agent) decided on its latest run;
	// absent when it never ran.
	UpdateAgent *UpdateAgentStatus `json:"updateAgent,omitempty" yaml:"updateAgent,omitempty"`
}

// BootEntry is one deployment.
type BootEntry struct {
	Image *ImageStatus `json:"image" yaml:"image"`
	// CachedUpdate is an image pulled for the deployment's origin (upgrade with
	// UpgradeDownloadOnly) that no deployment has yet.
	CachedUpdate *ImageStatus `json:"cachedUpdate" yaml:"cachedUpdate"`
	// Incompatible: the origin has rpm-ostree's client-side changes.
	Incompatible bool          `json:"incompatible" yaml:"incompatible"`
	Pinned       bool          `json:"pinned" yaml:"pinned"`
	Store        *string       `json:"store" yaml:"store"`
	Ostree       *OstreeStatus `json:"ostree" yaml:"ostree"`

	d *sysroot.Deployment
}

// Deployment returns the deployment the entry describes (nil for a decoded document).
func (e *BootEntry) Deployment() *sysroot.Deployment { return e.d }

// ImageStatus is a deployment's (or a cached update's) image.
type ImageStatus struct {
	Image        ImageReference `json:"image" yaml:"image"`
	Version      *string        `json:"version" yaml:"version"`
	Timestamp    *string        `json:"timestamp" yaml:"timestamp"`
	ImageDigest  string         `json:"imageDigest" yaml:"imageDigest"`
	Architecture string         `json:"architecture,omitempty" yaml:"architecture,omitempty"`
}

// OstreeStatus names the deployment in the sysroot.
type OstreeStatus struct {
	Checksum     string `json:"checksum" yaml:"checksum"`
	DeploySerial int    `json:"deploySerial" yaml:"deploySerial"`
	Stateroot    string `json:"stateroot" yaml:"stateroot"`
}

// BootedOnly returns a copy of the document with only the booted deployment.
func (st *BootcHost) BootedOnly() *BootcHost {
	c := *st
	c.Status.Staged, c.Status.Rollback, c.Status.OtherDeployments = nil, nil, nil
	c.Status.RollbackQueued = false
	return &c
}

// rpm-ostree's origin groups: bootc reports such deployments as incompatible.
var rpmOstreeGroups = []string{"rpmostree", "packages", "overrides", "modules"}

// Status reads the sysroot at path, without taking its lock, and describes it. Of the options,
// WithRuntimeDir and WithLogger count.
func Status(ctx context.Context, path string, opts ...Option) (*BootcHost, error) {
	sys, err := sysroot.Open(ctx, path, newConfig(opts).sysrootOptions()...)
	if err != nil {
		return nil, err
	}
	return buildStatus(sys), nil
}

// Status describes the sysroot as loaded under the lock.
func (h *Host) Status() *BootcHost { return buildStatus(h.sys) }

// NotInstalled is the status of a host bootc (or ostree) did not install: no deployments, booted
// null.
func NotInstalled() *BootcHost {
	return &BootcHost{APIVersion: APIVersion, Kind: Kind, Metadata: HostMetadata{Name: "host"}, Spec: HostSpec{BootOrder: "default"}}
}

// buildStatus classifies the deployments and reads each one's image from its commit.
func buildStatus(sys *sysroot.Sysroot) *BootcHost {
	st := NotInstalled()
	roles := classify(sys)
	deployed := map[ostree.Checksum]bool{}
	for _, d := range sys.Deployments() {
		deployed[d.Commit] = true
	}
	if roles.staged != nil {
		deployed[roles.staged.Commit] = true
		st.Status.Staged = entryFor(sys, roles.staged, deployed)
	}
	for _, d := range sys.Deployments() {
		e := entryFor(sys, d, deployed)
		switch {
		case roles.booted != nil && d.Equal(roles.booted):
			st.Status.Booted = e
		case roles.rollback != nil && d.Equal(roles.rollback):
			st.Status.Rollback = e
		default:
			st.Status.OtherDeployments = append(st.Status.OtherDeployments, e)
		}
	}
	if b, r := st.Status.Booted, st.Status.Rollback; b != nil && r != nil && r.d.Index < b.d.Index {
		st.Status.RollbackQueued = true
		st.Spec.BootOrder = "rollback"
	}
	for _, e := range []*BootEntry{st.Status.Staged, st.Status.Booted} {
		if e != nil && e.Image != nil {
			img := e.Image.Image
			st.Spec.Image = &img
			break
		}
	}
	if st.Status.Booted != nil && st.Status.Booted.Image != nil {
		t := "bootcHost"
		st.Status.Type = &t
	}
	if roles.booted != nil {
		if rec, _ := failedUpdate(sys, roles.booted.Stateroot); rec != nil {
			st.Status.FailedUpdate = rec.FailedUpdate
		}
		st.Status.UpdateAgent, _ = readUpdateAgent(sys, roles.booted.Stateroot)
	}
	return st
}

type deploymentRoles struct {
	booted, staged, rollback *sysroot.Deployment
}

// classify finds the booted, staged and rollback deployments: the staged one is the sysroot's
// (its runtime state: on the running system, /run/ostree/staged-deployment); the rollback is
// the first listed deployment other than the booted one. In a sysroot directory the default
// entry counts as booted (sysroot.Booted), and nothing is staged unless WithRuntimeDir gives
// runtime state.
func classify(sys *sysroot.Sysroot) deploymentRoles {
	r := deploymentRoles{booted: sys.Booted(), staged: sys.Staged()}
	if r.booted == nil {
		return r
	}
	for _, d := range sys.Deployments() {
		if !d.Equal(r.booted) {
			r.rollback = d
			break
		}
	}
	return r
}

// specDeployment is the deployment whose origin the host follows: the staged one, else the
// booted one.
func specDeployment(sys *sysroot.Sysroot) *sysroot.Deployment {
	r := classify(sys)
	if r.staged != nil {
		return r.staged
	}
	return r.booted
}

// entryFor describes a deployment. Its cachedUpdate is an image pulled for its origin
// (upgrade --download-only) that no deployment has yet.
func entryFor(sys *sysroot.Sysroot, d *sysroot.Deployment, deployed map[ostree.Checksum]bool) *BootEntry {
	e := &BootEntry{
		Pinned: d.Pinned(),
		Ostree: &OstreeStatus{Checksum: d.Commit.String(), DeploySerial: d.Serial, Stateroot: d.Stateroot},
		d:      d,
	}
	if d.Origin != nil {
		for _, g := range rpmOstreeGroups {
			if d.Origin.HasGroup(g) {
				e.Incompatible = true
			}
		}
	}
	ref, ok := OriginImage(d)
	if !ok {
		return e
	}
	store := "ostreeContainer"
	e.Store = &store
	if state, err := imagestore.ImageStateOf(sys.Repo(), d.Commit); err == nil {
		e.Image = imageStatusOf(ref, state)
	} else {
		e.Image = &ImageStatus{Image: ImageReferenceOf(ref)}
	}
	if cached, err := imagestore.QueryImage(sys.Repo(), ref); err == nil && !deployed[cached.Commit] &&
		(e.Image.ImageDigest == "" || cached.Digest.String() != e.Image.ImageDigest) {
		e.CachedUpdate = imageStatusOf(ref, cached)
	}
	return e
}

// OriginImage returns the image a deployment follows: its origin's container-image-reference.
func OriginImage(d *sysroot.Deployment) (imgref.OstreeRef, bool) {
	if d == nil || d.Origin == nil {
		return imgref.OstreeRef{}, false
	}
	s, ok := d.Origin.ContainerImageReference()
	if !ok {
		return imgref.OstreeRef{}, false
	}
	ref, err := imgref.ParseOstree(s)
	return ref, err == nil
}

// ImageReferenceOf is the status document's form of ref.
func ImageReferenceOf(ref imgref.OstreeRef) ImageReference {
	r := ImageReference{Image: ref.Image.Name, Transport: string(ref.Image.Transport)}
	if ref.Image.Tag != "" {
		r.Image += ":" + ref.Image.Tag
	}
	switch ref.SigVerify {
	case imgref.ContainerPolicy:
		r.Signature = "containerPolicy"
	case imgref.OstreeRemote:
		r.Signature = map[string]string{"ostreeRemote": ref.Remote}
	}
	return r
}

func imageStatusOf(ref imgref.OstreeRef, s *imagestore.ImageState) *ImageStatus {
	is := &ImageStatus{Image: ImageReferenceOf(ref), ImageDigest: s.Digest.String()}
	if s.Version != "" {
		v := s.Version
		is.Version = &v
	}
	if !s.Created.IsZero() {
		t := s.Created.UTC().Format(time.RFC3339)
		is.Timestamp = &t
	}
	if s.Config != nil {
		is.Architecture = s.Config.Architecture
	}
	return is
}

// Role is a deployment's role in the status document.
type Role string

// The roles, in boot order of the human-readable status.
const (
	RoleStaged   Role = "staged"
	RoleBooted   Role = "booted"
	RoleRollback Role = "rollback"
	RoleOther    Role = "other"
)

// RoleEntry is a deployment with its role.
type RoleEntry struct {
	Role Role
	*BootEntry
}

// Entries lists the deployments: staged, booted, rollback, then the others.
func (st *BootcHost) Entries() []RoleEntry {
	var out []RoleEntry
	for _, r := range []RoleEntry{{RoleStaged, st.Status.Staged}, {RoleBooted, st.Status.Booted}, {RoleRollback, st.Status.Rollback}} {
		if r.BootEntry != nil {
			out = append(out, r)
		}
	}
	for _, e := range st.Status.OtherDeployments {
		out = append(out, RoleEntry{RoleOther, e})
	}
	return out
}
