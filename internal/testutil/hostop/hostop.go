// Package hostop is the output of the hostop test driver (internal/testutil/cmd/hostop), which
// runs one operation of package host on a sysroot and writes what it reports as JSON lines on
// stdout: one Line per Event of the operation, then one with the Result, or one with the Error.
// Tests that must run the operation in a process of its own (to kill it) read these lines back
// with Decode.
package hostop

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/sysroot"
	"github.com/bootc-go/bootc/pkg/verify"
)

// The events, by their Line.Event.
const (
	EventWaitingForLock = "waiting-for-lock"
	EventVerified       = "verified"
	EventPullProgress   = "pull-progress"
	// EventPulled is host.PullDone: the pull is complete, the deployment begins.
	EventPulled  = "pulled"
	EventWarning = "warning"
)

// Line is one line of output: an event (Event set), the result (Result set) or the error
// (Error set).
type Line struct {
	Event string `json:"event,omitempty"`
	// Path is the sysroot of EventWaitingForLock.
	Path string `json:"path,omitempty"`
	// Progress is the pull's progress in EventPullProgress.
	Progress *Progress `json:"progress,omitempty"`
	// Pulled is what the pull fetched, in EventPulled.
	Pulled *Pulled `json:"pulled,omitempty"`
	// Digest is the digest verified, in EventVerified.
	Digest string `json:"digest,omitempty"`
	// Warning is the EventWarning's What and Err.
	Warning string `json:"warning,omitempty"`

	Result *Result `json:"result,omitempty"`

	// Error is the operation's error, Is the sentinel errors it matches (errors.Is) by name.
	Error string   `json:"error,omitempty"`
	Is    []string `json:"is,omitempty"`
}

// Progress is an imagestore.PullProgress.
type Progress struct {
	Phase      string `json:"phase"`
	Layers     int    `json:"layers"`
	LayersDone int    `json:"layersDone"`
}

// Image is an image in the image store: its manifest digest, merged commit and version.
type Image struct {
	Digest  string `json:"digest"`
	Commit  string `json:"commit"`
	Version string `json:"version,omitempty"`
}

// Pulled is a host.Pulled.
type Pulled struct {
	// Image is the reference pulled (ostree-unverified-image:oci:..., ...).
	Image         string `json:"image"`
	State         Image  `json:"state"`
	LayersFetched int    `json:"layersFetched"`
	LayersReused  int    `json:"layersReused"`
	LayersPartial int    `json:"layersPartial"`
	BytesFetched  int64  `json:"bytesFetched"`
}

// Deployment names a deployment and its place in the boot order (0: it boots next).
type Deployment struct {
	Stateroot string `json:"stateroot"`
	Commit    string `json:"commit"`
	Serial    int    `json:"serial"`
	Index     int    `json:"index"`
}

// Deployed is a host.Deployed.
type Deployed struct {
	Deployment  Deployment `json:"deployment"`
	Image       Image      `json:"image"`
	EtcModified int        `json:"etcModified"`
	EtcAdded    int        `json:"etcAdded"`
	EtcRemoved  int        `json:"etcRemoved"`
	VarSeeded   bool       `json:"varSeeded"`
	// Staged: the deployment is staged (Deployment.Index -1), to be finalized.
	Staged bool `json:"staged,omitempty"`
}

// Finalized is a host.FinalizeResult.
type Finalized struct {
	// Deployment is nil when nothing was staged.
	Deployment     *Deployment `json:"deployment,omitempty"`
	Locked         bool        `json:"locked,omitempty"`
	AlreadyWritten bool        `json:"alreadyWritten,omitempty"`
	EtcModified    int         `json:"etcModified"`
	EtcAdded       int         `json:"etcAdded"`
	EtcRemoved     int         `json:"etcRemoved"`
}

// Result is a host.SwitchResult (Op "switch"), host.UpgradeResult (Op "upgrade") or
// host.FinalizeResult (Op "finalize", in Finalized).
type Result struct {
	Op string `json:"op"`
	// Image is the reference switched to, or the one the upgraded host follows.
	Image  string  `json:"image"`
	Pulled *Pulled `json:"pulled,omitempty"`
	// Unchanged is SwitchResult.Unchanged.
	Unchanged bool `json:"unchanged,omitempty"`
	// From, FromImage, Next and NoUpdate are those of the UpgradeResult.
	From      *Deployment `json:"from,omitempty"`
	FromImage *Image      `json:"fromImage,omitempty"`
	Next      *Image      `json:"next,omitempty"`
	NoUpdate  bool        `json:"noUpdate,omitempty"`
	// Deployed is the new deployment, nil when nothing was deployed.
	Deployed *Deployed `json:"deployed,omitempty"`
	// Finalized is what finalize did.
	Finalized *Finalized `json:"finalized,omitempty"`
}

// Noop reports whether the operation found nothing to do (Unchanged or NoUpdate).
func (r *Result) Noop() bool { return r.Unchanged || r.NoUpdate }

// Decode reads one line of output.
func Decode(b []byte) (*Line, error) {
	var l Line
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// FromEvent is the Line of an event.
func FromEvent(e host.Event) *Line {
	switch e := e.(type) {
	case host.WaitingForLock:
		return &Line{Event: EventWaitingForLock, Path: e.Path}
	case host.Verified:
		return &Line{Event: EventVerified, Digest: e.Digest.String()}
	case host.PullProgress:
		return &Line{Event: EventPullProgress, Progress: &Progress{Phase: e.Phase, Layers: e.Layers, LayersDone: e.LayersDone}}
	case host.PullDone:
		return &Line{Event: EventPulled, Pulled: pulledOf(e.Pulled)}
	case host.Warning:
		return &Line{Event: EventWarning, Warning: e.What + ": " + e.Err.Error()}
	}
	return nil
}

// FromSwitch is the Result of a Switch.
func FromSwitch(r *host.SwitchResult) *Result {
	res := &Result{Op: "switch", Pulled: pulledOf(r.Pulled), Unchanged: r.Unchanged, Deployed: deployedOf(r.Deployed)}
	if r.Pulled != nil {
		res.Image = r.Pulled.Image.String()
	}
	return res
}

// FromFinalize is the Result of a FinalizeStaged.
func FromFinalize(r *host.FinalizeResult) *Result {
	return &Result{Op: "finalize", Finalized: &Finalized{Deployment: deploymentOf(r.Deployment), Locked: r.Locked,
		AlreadyWritten: r.AlreadyWritten, EtcModified: r.EtcModified, EtcAdded: r.EtcAdded, EtcRemoved: r.EtcRemoved}}
}

// FromUpgrade is the Result of an Upgrade.
func FromUpgrade(r *host.UpgradeResult) *Result {
	return &Result{
		Op:        "upgrade",
		Image:     r.Image.String(),
		Pulled:    pulledOf(r.Pulled),
		From:      deploymentOf(r.From),
		FromImage: imageOf(r.FromImage),
		Next:      imageOf(r.Next),
		NoUpdate:  r.NoUpdate,
		Deployed:  deployedOf(r.Deployed),
	}
}

// sentinels are the errors callers of package host test for.
var sentinels = []struct {
	name string
	err  error
}{
	{"ErrNoBootedDeployment", host.ErrNoBootedDeployment},
	{"ErrNoImage", host.ErrNoImage},
	{"ErrNoDownloadedUpdate", host.ErrNoDownloadedUpdate},
	{"ErrNothingToRollBack", host.ErrNothingToRollBack},
	{"ErrAlreadyInstalled", host.ErrAlreadyInstalled},
	{"ErrNotLive", host.ErrNotLive},
	{"sysroot.ErrNotSysroot", sysroot.ErrNotSysroot},
	{"sysroot.ErrLocked", sysroot.ErrLocked},
	{"sysroot.ErrNoKernel", sysroot.ErrNoKernel},
	{"verify.ErrRejected", verify.ErrRejected},
	{"verify.ErrAcceptsAnything", verify.ErrAcceptsAnything},
	{"verify.ErrInvalidPolicy", verify.ErrInvalidPolicy},
	{"imagestore.ErrDigestMismatch", imagestore.ErrDigestMismatch},
	{"imagestore.ErrBadLayer", imagestore.ErrBadLayer},
	{"imagestore.ErrNotBootable", imagestore.ErrNotBootable},
	{"imagestore.ErrImageChanged", imagestore.ErrImageChanged},
	{"imagestore.ErrImageNotPulled", imagestore.ErrImageNotPulled},
	{"context.Canceled", context.Canceled},
	{"context.DeadlineExceeded", context.DeadlineExceeded},
}

// FromError is the Line of an operation's error.
func FromError(err error) *Line {
	l := &Line{Error: err.Error()}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			l.Is = append(l.Is, s.name)
		}
	}
	return l
}

func imageOf(s *imagestore.ImageState) *Image {
	if s == nil {
		return nil
	}
	return &Image{Digest: s.Digest.String(), Commit: s.Commit.String(), Version: s.Version}
}

func pulledOf(p *host.Pulled) *Pulled {
	if p == nil {
		return nil
	}
	out := &Pulled{Image: p.Image.String(), LayersFetched: p.LayersFetched, LayersReused: p.LayersReused, LayersPartial: p.LayersPartial, BytesFetched: p.BytesFetched}
	if p.State != nil {
		out.State = *imageOf(p.State)
	}
	return out
}

func deploymentOf(d *sysroot.Deployment) *Deployment {
	if d == nil {
		return nil
	}
	return &Deployment{Stateroot: d.Stateroot, Commit: d.Commit.String(), Serial: d.Serial, Index: d.Index}
}

func deployedOf(d *host.Deployed) *Deployed {
	if d == nil {
		return nil
	}
	out := &Deployed{Deployment: *deploymentOf(d.Deployment), EtcModified: d.EtcModified, EtcAdded: d.EtcAdded, EtcRemoved: d.EtcRemoved, VarSeeded: d.VarSeeded, Staged: d.Staged}
	if im := imageOf(d.Image); im != nil {
		out.Image = *im
	}
	return out
}
