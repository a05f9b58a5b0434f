package updategraph

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// payload is a pull spec by digest whose digest encodes i.
func payload(i int) string { return fmt.Sprintf("registry.invalid/os@sha256:%064x", i) }

// rel is a release test case shorthand: "r" rollout (open to all since epoch 0), "b" barrier,
// "d" dead-end, in any combination; "" neither.
func rel(version, flags string) Release {
	r := Release{Version: version, Payload: payload(len(version) + int(version[len(version)-1]))}
	if strings.Contains(flags, "r") {
		r.Metadata.Rollout = &Rollout{StartEpoch: ptr(int64(0)), StartPercentage: ptr(1.0)}
	}
	if strings.Contains(flags, "b") {
		r.Metadata.Barrier = &Reason{Reason: "signing key"}
	}
	if strings.Contains(flags, "d") {
		r.Metadata.Deadend = &Reason{}
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func index(rels ...Release) *Index {
	return &Index{Version: IndexVersion, Stream: "stable", Releases: rels}
}

func mustBuild(t *testing.T, idx *Index) *Graph {
	t.Helper()
	g, err := Build(idx, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func sortedEdges(g *Graph) [][2]int64 {
	e := slices.Clone(g.Edges)
	slices.SortFunc(e, func(a, b [2]int64) int {
		if a[0] != b[0] {
			return int(a[0] - b[0])
		}
		return int(a[1] - b[1])
	})
	return e
}

// The edges are the ones fedora-coreos-cincinnati's compute_edges and filter_deadends give for
// the same updates.json.
func TestBuildEdges(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string // one per release v0, v1, ...
		want  [][2]int64
	}{
		{"plain rollouts", []string{"r", "r", "r"}, [][2]int64{{0, 1}, {0, 2}, {1, 2}}},
		{"barrier", []string{"r", "b", "r"}, [][2]int64{{0, 1}, {1, 2}}},
		{"barrier in rollout", []string{"r", "rb", "r"}, [][2]int64{{0, 1}, {1, 2}}},
		{"release without rollout gets no edges", []string{"r", "", "r"}, [][2]int64{{0, 2}, {1, 2}}},
		{"only unreleased", []string{"", ""}, [][2]int64{}},
		{"two barriers", []string{"r", "b", "r", "b", "r"}, [][2]int64{{0, 1}, {1, 2}, {1, 3}, {2, 3}, {3, 4}}},
		{"dead-end loses its way out", []string{"r", "rd", "r"}, [][2]int64{{0, 1}, {0, 2}}},
		{"dead-end barrier", []string{"r", "bd", "r"}, [][2]int64{{0, 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rels []Release
			for i, f := range tc.flags {
				rels = append(rels, rel(fmt.Sprintf("v%d", i), f))
			}
			g := mustBuild(t, index(rels...))
			if got := sortedEdges(g); !slices.Equal(got, tc.want) {
				t.Errorf("edges %v, want %v", got, tc.want)
			}
			for i, n := range g.Nodes {
				if n.AgeIndex() != i || n.Metadata[KeyScheme] != SchemeOCI || n.Metadata[KeyArch] != "x86_64" {
					t.Errorf("node %d metadata %v", i, n.Metadata)
				}
				if b := strings.Contains(tc.flags[i], "b"); n.Barrier() != b || b && n.Metadata[KeyBarrierReason] != "signing key" {
					t.Errorf("node %d barrier %v (%q), want %v", i, n.Barrier(), n.Metadata[KeyBarrierReason], b)
				}
				if d := strings.Contains(tc.flags[i], "d"); n.Deadend() != d || d && n.Metadata[KeyDeadendReason] != "generic" {
					t.Errorf("node %d dead-end %v (%q), want %v", i, n.Deadend(), n.Metadata[KeyDeadendReason], d)
				}
			}
		})
	}
}

// v1 -> v3 goes through the barrier v2.
func TestNextThroughBarrier(t *testing.T) {
	g := mustBuild(t, index(rel("v1", "r"), rel("v2", "rb"), rel("v3", "r")))
	for _, tc := range []struct{ from, want string }{{"v1", "v2"}, {"v2", "v3"}} {
		to, ok := g.Next(g.Find("", tc.from))
		if !ok || g.Nodes[to].Version != tc.want {
			t.Errorf("Next(%s) = %d, %v; want %s", tc.from, to, ok, tc.want)
		}
	}
	if to, ok := g.Next(g.Find("", "v3")); ok {
		t.Errorf("Next(v3) = %s, want none", g.Nodes[to].Version)
	}
	if i := g.Find(g.Nodes[1].Digest(), "v3"); i != 1 {
		t.Errorf("Find by digest = %d, want 1 (the digest wins over the version)", i)
	}
	if i := g.Find("", "v9"); i != -1 {
		t.Errorf("Find(v9) = %d", i)
	}
}

// A host on a dead-end moves on to the newest open node up to the next barrier, though
// Cincinnati's graph has no edge out of the dead-end.
func TestNextEscapesDeadend(t *testing.T) {
	g := mustBuild(t, index(rel("v1", "r"), rel("v2", "rd"), rel("v3", "r"), rel("v4", "rb"), rel("v5", "r"), rel("v6", "rd")))
	for _, e := range g.Edges {
		if e[0] == 1 || e[0] == 5 {
			t.Errorf("edge %v out of a dead-end", e)
		}
	}
	for _, tc := range []struct{ from, want string }{{"v2", "v4"}, {"v6", ""}, {"v1", "v4"}} {
		to, ok := g.Next(g.Find("", tc.from))
		got := ""
		if ok {
			got = g.Nodes[to].Version
		}
		if got != tc.want {
			t.Errorf("Next(%s) = %q, want %q", tc.from, got, tc.want)
		}
	}
	// With v4 not yet open to the host, the dead-end host takes v3 (never v5, past the barrier).
	idx := index(rel("v1", "r"), rel("v2", "rd"), rel("v3", "r"), rel("v4", "rb"), rel("v5", "r"))
	idx.Releases[3].Metadata.Rollout = &Rollout{StartEpoch: ptr(int64(0)), StartPercentage: ptr(0.0)}
	th := mustBuild(t, idx).Throttle(0.5, time.Unix(1000, 0))
	if to, ok := th.Next(1); !ok || th.Nodes[to].Version != "v3" {
		t.Errorf("throttled Next(v2) = %d, %v; want v3", to, ok)
	}
}

// A rollout at 0.5 with no duration opens to about half the hosts, the same ones every time.
func TestRolloutHalfOfHosts(t *testing.T) {
	idx := index(rel("v1", "r"), rel("v2", "r"))
	idx.Releases[1].Metadata.Rollout = &Rollout{StartEpoch: ptr(int64(1000)), StartPercentage: ptr(0.5)}
	g := mustBuild(t, idx)
	now := time.Unix(1_000_000, 0)
	open := func() []string {
		var ids []string
		for i := range 1000 {
			id := fmt.Sprintf("%032x", i*7919)
			if len(g.Throttle(Wariness(id), now).Edges) == 1 {
				ids = append(ids, id)
			}
		}
		return ids
	}
	first := open()
	t.Logf("a rollout at 50%%: %d of 1000 node ids see v2", len(first))
	if n := len(first); n < 450 || n > 550 {
		t.Errorf("%d of 1000 hosts see v2, want about 500", n)
	}
	if again := open(); !slices.Equal(first, again) {
		t.Errorf("a second count opened to other hosts")
	}
	if v := RolloutValue(&g.Nodes[1], now); v != 0.5 {
		t.Errorf("RolloutValue without duration = %v, want 0.5", v)
	}
	if w := Wariness("some-id"); w != Wariness("some-id") || w <= 0 || w > 1 {
		t.Errorf("Wariness = %v", w)
	}
}

// A rollout in progress opens to the eager hosts first.
func TestRolloutInProgress(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	idx := index(rel("v1", "r"), rel("v2", "r"))
	idx.Releases[1].Metadata.Rollout = &Rollout{StartEpoch: ptr(start.Unix()), StartPercentage: ptr(0.0), DurationMinutes: ptr(int64(60))}
	g := mustBuild(t, idx)
	for _, tc := range []struct {
		name     string
		at       time.Time
		wariness float64
		open     bool
	}{
		{"before start, a little wary", start.Add(-time.Minute), 0.01, false},
		{"at start, eager", start, 0, true},
		{"at start, a little wary", start, 0.01, false},
		{"half way, wariness 0.5", start.Add(30 * time.Minute), 0.5, true},
		{"half way, wariness 0.6", start.Add(30 * time.Minute), 0.6, false},
		{"after end, cautious", start.Add(61 * time.Minute), 1, true},
	} {
		if got := len(g.Throttle(tc.wariness, tc.at).Edges) == 1; got != tc.open {
			t.Errorf("%s: open %v, want %v", tc.name, got, tc.open)
		}
	}
	for _, tc := range []struct {
		at   time.Time
		want float64
	}{{start.Add(-time.Second), 0}, {start.Add(30 * time.Minute), 0.5}, {start.Add(60*time.Minute + time.Second), 1}} {
		if v := RolloutValue(&g.Nodes[1], tc.at); v != tc.want {
			t.Errorf("RolloutValue at %v = %v, want %v", tc.at, v, tc.want)
		}
	}
	if v := RolloutValue(&g.Nodes[0], start); v != 1 {
		t.Errorf("RolloutValue of a node open to all = %v", v)
	}
}

func TestParseIndexStrict(t *testing.T) {
	good := `{"version":1,"stream":"stable","releases":[{"version":"1","payload":"` + payload(1) + `","metadata":{"rollout":{"start_percentage":1}}}]}`
	if _, err := ParseIndex(strings.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]string{
		"unknown field":   `{"stream":"s","releases":[],"extra":1}`,
		"trailing data":   `{"stream":"s","releases":[]} {}`,
		"trailing brace":  `{"stream":"s","releases":[]}}`,
		"no stream":       `{"releases":[]}`,
		"newer version":   `{"version":2,"stream":"s","releases":[]}`,
		"tag payload":     `{"stream":"s","releases":[{"version":"1","payload":"registry.invalid/os:1","metadata":{}}]}`,
		"twice":           `{"stream":"s","releases":[{"version":"1","payload":"` + payload(1) + `","metadata":{}},{"version":"1","payload":"` + payload(2) + `","metadata":{}}]}`,
		"percentage > 1":  `{"stream":"s","releases":[{"version":"1","payload":"` + payload(1) + `","metadata":{"rollout":{"start_percentage":50}}}]}`,
		"negative length": `{"stream":"s","releases":[{"version":"1","payload":"` + payload(1) + `","metadata":{"rollout":{"duration_minutes":-1}}}]}`,
	} {
		if _, err := ParseIndex(strings.NewReader(bad)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func FuzzParseIndex(f *testing.F) {
	b, _ := json.Marshal(index(rel("v1", "r"), rel("v2", "rb"), rel("v3", "d")))
	f.Add(b)
	f.Add([]byte(`{"stream":"s","releases":[]}`))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		idx, err := ParseIndex(bytes.NewReader(untrusted))
		if err != nil {
			return
		}
		g, err := Build(idx, "x86_64")
		if err != nil {
			t.Fatalf("Build refused a parsed index: %v", err)
		}
		for i := range g.Nodes {
			g.Next(i)
			RolloutValue(&g.Nodes[i], time.Unix(0, 0))
		}
		again, _ := json.Marshal(idx)
		if _, err := ParseIndex(bytes.NewReader(again)); err != nil {
			t.Fatalf("a parsed index does not parse again: %v\n%s", err, again)
		}
	})
}

// Durations Cincinnati does not read as a number of minutes leave the rollout at its start value.
func TestRolloutValueOddDurations(t *testing.T) {
	for _, d := range []string{"-5", "x", "99999999999999999999"} {
		n := &Node{Metadata: map[string]string{KeyRollout: "true", KeyStartEpoch: "0", KeyStartValue: "0.25", KeyDuration: d}}
		if v := RolloutValue(n, time.Unix(1<<40, 0)); v != 0.25 && !(d == "99999999999999999999" && v >= 0 && v <= 1) {
			t.Errorf("duration %q: RolloutValue %v", d, v)
		}
	}
}

func TestStatus(t *testing.T) {
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	idx := index(rel("v1", "r"), rel("v2", ""), rel("v3", "r"), rel("v4", "r"), rel("v5", "r"))
	idx.Releases[2].Metadata.Rollout = &Rollout{StartEpoch: ptr(start.Unix()), StartPercentage: ptr(0.2), DurationMinutes: ptr(int64(100))}
	idx.Releases[3].Metadata.Rollout = &Rollout{StartEpoch: ptr(start.Unix()), StartPercentage: ptr(0.3)}
	idx.Releases[4].Metadata.Rollout = &Rollout{StartEpoch: ptr(start.Add(time.Hour).Unix())}
	st, err := idx.Status(start.Add(50 * time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		phase Phase
		open  float64
	}{{Open, 1}, {Unreleased, 0}, {RollingOut, 0.6}, {Held, 0.3}, {Scheduled, 0}} {
		if st[i].Phase != want.phase || math.Abs(st[i].Open-want.open) > 1e-9 {
			t.Errorf("%s: %s %v, want %s %v", st[i].Version, st[i].Phase, st[i].Open, want.phase, want.open)
		}
	}
	if end := st[2].End; end == nil || !end.Equal(start.Add(100*time.Minute)) || st[3].End != nil || st[1].Start != nil {
		t.Errorf("bounds: %v %v %v", st[2].End, st[3].End, st[1].Start)
	}
}

func TestAppend(t *testing.T) {
	idx := index(rel("v1", "r"))
	if err := idx.Append(rel("v1", "r")); !errors.Is(err, ErrVersionExists) {
		t.Errorf("same version: %v", err)
	}
	other := rel("v2", "r")
	other.Payload = strings.Replace(other.Payload, "/os@", "/other@", 1)
	if err := idx.Append(other); !errors.Is(err, ErrOtherRepository) {
		t.Errorf("other repository: %v", err)
	}
	if err := idx.Append(rel("v2", "r")); err != nil || len(idx.Releases) != 2 || idx.Releases[1].Version != "v2" {
		t.Errorf("append: %v, %+v", err, idx.Releases)
	}
}
