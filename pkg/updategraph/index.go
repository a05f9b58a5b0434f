package updategraph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// Index is a stream's release list, oldest release first, in the shape of FCOS's
// updates/<stream>.json plus each release's image (Payload): a pull spec by digest.
type Index struct {
	// Version of this format (IndexVersion); 0 is read as 1.
	Version  int       `json:"version,omitempty"`
	Stream   string    `json:"stream"`
	Releases []Release `json:"releases"`
}

// IndexVersion is the version of the Index format this package writes.
const IndexVersion = 1

// Release is one release of a stream.
type Release struct {
	Version  string          `json:"version"`
	Payload  string          `json:"payload"`
	Metadata ReleaseMetadata `json:"metadata"`
}

// ReleaseMetadata marks a release as a rollout, a barrier or a dead-end.
type ReleaseMetadata struct {
	Rollout *Rollout `json:"rollout,omitempty"`
	Barrier *Reason  `json:"barrier,omitempty"`
	Deadend *Reason  `json:"deadend,omitempty"`
}

// Rollout opens a release to a growing share of hosts: StartPercentage (a fraction, 0..1, as
// FCOS has it) at StartEpoch (Unix seconds), all hosts DurationMinutes later.
type Rollout struct {
	StartEpoch      *int64   `json:"start_epoch,omitempty"`
	StartPercentage *float64 `json:"start_percentage,omitempty"`
	DurationMinutes *int64   `json:"duration_minutes,omitempty"`
}

// Reason says why a release is a barrier or a dead-end.
type Reason struct {
	Reason string `json:"reason"`
}

// ErrInvalidIndex is wrapped by the errors of ParseIndex and Validate.
var ErrInvalidIndex = errors.New("invalid release index")

// MaxIndexSize bounds the bytes ParseIndex reads.
const MaxIndexSize = 16 << 20

// ParseIndex reads a release index strictly (unknown fields, trailing data and more than
// MaxIndexSize bytes are refused) and validates it.
func ParseIndex(r io.Reader) (*Index, error) {
	var idx Index
	if err := decodeStrict(r, MaxIndexSize, &idx, ErrInvalidIndex); err != nil {
		return nil, err
	}
	if err := idx.Validate(); err != nil {
		return nil, err
	}
	return &idx, nil
}

// Validate checks what the graph relies on: a supported format version, a stream name, unique
// non-empty versions, payloads by digest, rollout values in range.
func (idx *Index) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidIndex, fmt.Sprintf(format, a...))
	}
	if idx.Version > IndexVersion || idx.Version < 0 {
		return bad("format version %d; this bootc reads up to %d (update bootc)", idx.Version, IndexVersion)
	}
	if idx.Stream == "" {
		return bad("no stream name")
	}
	seen := make(map[string]bool, len(idx.Releases))
	for i, r := range idx.Releases {
		where := fmt.Sprintf("release %d (%q)", i, r.Version)
		if r.Version == "" {
			return bad("release %d has no version", i)
		}
		if seen[r.Version] {
			return bad("%s appears twice", where)
		}
		seen[r.Version] = true
		if name, digest, ok := strings.Cut(r.Payload, "@"); !ok || name == "" || !strings.HasPrefix(digest, "sha256:") || len(digest) != len("sha256:")+64 {
			return bad("%s: payload %q is not an image by digest (REPOSITORY@sha256:...)", where, r.Payload)
		}
		if ro := r.Metadata.Rollout; ro != nil {
			if p := ro.StartPercentage; p != nil && (math.IsNaN(*p) || *p < 0 || *p > 1) {
				return bad("%s: rollout start_percentage %v is not a fraction between 0 and 1", where, *p)
			}
			if d := ro.DurationMinutes; d != nil && *d < 0 {
				return bad("%s: rollout duration_minutes %d is negative", where, *d)
			}
		}
	}
	return nil
}

// Lookup returns the release with the given version, or nil.
func (idx *Index) Lookup(version string) *Release {
	for i := range idx.Releases {
		if idx.Releases[i].Version == version {
			return &idx.Releases[i]
		}
	}
	return nil
}

// decodeStrict decodes one JSON value from at most limit bytes of untrusted into v, refusing
// unknown fields and anything after the value; its errors wrap invalid.
func decodeStrict(untrusted io.Reader, limit int, v any, invalid error) error {
	b, err := io.ReadAll(io.LimitReader(untrusted, int64(limit)+1))
	if err != nil {
		return err
	}
	if len(b) > limit {
		return fmt.Errorf("%w: larger than %d bytes", invalid, limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", invalid, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON value", invalid)
	}
	return nil
}

// ErrVersionExists and ErrOtherRepository are Append's refusals.
var (
	ErrVersionExists   = errors.New("the stream already has this version")
	ErrOtherRepository = errors.New("the image is not in the repository of the stream's releases")
)

// Append adds r as the stream's newest release. It refuses a version the index already has
// (ErrVersionExists) and an image in another repository than the releases before it
// (ErrOtherRepository: a stream's images live in one repository, beside its index).
func (idx *Index) Append(r Release) error {
	repo, _, _ := strings.Cut(r.Payload, "@")
	for _, old := range idx.Releases {
		if old.Version == r.Version {
			return fmt.Errorf("%w: %s is %s", ErrVersionExists, r.Version, old.Payload)
		}
		if other, _, _ := strings.Cut(old.Payload, "@"); other != repo {
			return fmt.Errorf("%w: the releases of stream %s live in %s, not %s", ErrOtherRepository, idx.Stream, other, repo)
		}
	}
	idx.Releases = append(idx.Releases, r)
	return nil
}
