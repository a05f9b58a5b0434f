package updategraph

import "time"

// Phase is where a release's rollout stands.
type Phase string

// The phases of a rollout.
const (
	// Unreleased: no rollout, so no edges lead to the release.
	Unreleased Phase = "unreleased"
	// Scheduled: the rollout starts later.
	Scheduled Phase = "scheduled"
	// RollingOut: open to a share of hosts that grows until End.
	RollingOut Phase = "rolling-out"
	// Held: open to a share of hosts that stays (a rollout without duration).
	Held Phase = "held"
	// Open: open to all hosts.
	Open Phase = "open"
)

// ReleaseStatus is a release of an index and how far it is open at a given time.
type ReleaseStatus struct {
	Release
	// Open is the share of hosts (0..1) that may take the release: those whose wariness is
	// at most Open (RolloutValue).
	Open  float64 `json:"open"`
	Phase Phase   `json:"phase"`
	// Start and End bound the rollout (End nil without a duration, both nil without a rollout).
	Start *time.Time `json:"start,omitempty"`
	End   *time.Time `json:"end,omitempty"`
}

// Status is each release of idx, oldest first, with its rollout at now.
func (idx *Index) Status(now time.Time) ([]ReleaseStatus, error) {
	g, err := Build(idx, "")
	if err != nil {
		return nil, err
	}
	out := make([]ReleaseStatus, 0, len(idx.Releases))
	for i, r := range idx.Releases {
		s := ReleaseStatus{Release: r, Phase: Unreleased}
		if ro := r.Metadata.Rollout; ro != nil {
			s.Open = RolloutValue(&g.Nodes[i], now)
			start := time.Unix(0, 0).UTC() // without start_epoch: epoch 0, as Cincinnati reads it
			if ro.StartEpoch != nil {
				start = time.Unix(*ro.StartEpoch, 0).UTC()
			}
			s.Start = &start
			if ro.DurationMinutes != nil {
				end := start.Add(time.Duration(max(*ro.DurationMinutes, 1)) * time.Minute)
				s.End = &end
			}
			switch {
			case now.Before(start):
				s.Phase = Scheduled
			case s.Open >= 1:
				s.Phase = Open
			case s.End == nil:
				s.Phase = Held
			default:
				s.Phase = RollingOut
			}
		}
		out = append(out, s)
	}
	return out, nil
}
