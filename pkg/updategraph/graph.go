// Package updategraph is a release stream's update graph, as Fedora CoreOS has it: a publisher
// keeps a stream's release list (Index, the shape of FCOS's updates/<stream>.json, each release
// naming its image by digest), and a host walks the graph built from it (Build), the one
// Cincinnati serves: nodes {version, payload, metadata}, edges [from, to] by node index.
//
// The graph builder's rules are fedora-coreos-cincinnati's:
//   - nodes are the releases in list order, oldest first; a node's age index is its position;
//   - every release with a rollout gets edges from each earlier node back to (and including) the
//     previous barrier; every barrier gets the same, so no host jumps over a barrier;
//   - a release with neither a rollout nor a barrier gets no edges (publishers start a rollout,
//     even one open to all at once, to release it);
//   - a dead-end loses its outgoing edges (FilterDeadends);
//   - an edge into a rollout node is hidden for a host (Throttle) while the host's wariness is
//     above start_value + (1 - start_value) * (now - start_epoch) / (duration_minutes * 60), with
//     0 before start_epoch and 1 after the end; without a duration the value stays start_value.
//
// A stream's Index is kept in its images' repository, as an OCI artifact under the tag
// releases-STREAM (IndexRef, ReadIndex, WriteIndex). A host gets its graph from a Source: the
// index read from the registry (NewRegistrySource) or a Cincinnati server
// (NewCincinnatiSource); Handler is such a server.
//
// Metadata keys are FCOS's (prefix org.fedoraproject.coreos.), so Zincati can read our graphs and
// we can read FCOS's; payloads use the "oci" scheme: an image pull spec by digest.
package updategraph

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metadata keys of a graph node.
const (
	KeyPrefix        = "org.fedoraproject.coreos."
	KeyScheme        = KeyPrefix + "scheme"
	KeyAgeIndex      = KeyPrefix + "releases.age_index"
	KeyArch          = KeyPrefix + "releases.arch"
	KeyBarrier       = KeyPrefix + "updates.barrier"
	KeyBarrierReason = KeyPrefix + "updates.barrier_reason"
	KeyDeadend       = KeyPrefix + "updates.deadend"
	KeyDeadendReason = KeyPrefix + "updates.deadend_reason"
	KeyRollout       = KeyPrefix + "updates.rollout"
	KeyStartEpoch    = KeyPrefix + "updates.start_epoch"
	KeyStartValue    = KeyPrefix + "updates.start_value"
	KeyDuration      = KeyPrefix + "updates.duration_minutes"

	// SchemeOCI: a node's payload is an image pull spec by digest (REPOSITORY@sha256:...).
	SchemeOCI = "oci"
)

// Graph is an update graph in Cincinnati's JSON form.
type Graph struct {
	Nodes []Node     `json:"nodes"`
	Edges [][2]int64 `json:"edges"`
}

// Node is one release of a graph.
type Node struct {
	Version  string            `json:"version"`
	Payload  string            `json:"payload"`
	Metadata map[string]string `json:"metadata"`
}

// AgeIndex is the node's position in its stream, oldest 0 (-1 when the metadata lacks it).
func (n *Node) AgeIndex() int {
	i, err := strconv.Atoi(n.Metadata[KeyAgeIndex])
	if err != nil {
		return -1
	}
	return i
}

// Barrier and Deadend report the node's flags; the reasons are in Metadata.
func (n *Node) Barrier() bool { return n.Metadata[KeyBarrier] == "true" }
func (n *Node) Deadend() bool { return n.Metadata[KeyDeadend] == "true" }

// Digest is the digest part of an oci payload ("sha256:..."), or "".
func (n *Node) Digest() string {
	_, d, ok := strings.Cut(n.Payload, "@")
	if !ok {
		return ""
	}
	return d
}

// Build makes the graph of idx for arch (recorded in each node's metadata; a release's payload
// may be an image index that serves several), with dead-ends already filtered; Throttle applies
// a host's rollout policy on top. It fails on an index that Validate refuses.
func Build(idx *Index, arch string) (*Graph, error) {
	if err := idx.Validate(); err != nil {
		return nil, err
	}
	g := &Graph{Nodes: make([]Node, 0, len(idx.Releases)), Edges: [][2]int64{}}
	var rollouts, barriers []int
	for i, r := range idx.Releases {
		md := map[string]string{
			KeyAgeIndex: strconv.Itoa(i),
			KeyScheme:   SchemeOCI,
		}
		if arch != "" {
			md[KeyArch] = arch
		}
		if b := r.Metadata.Barrier; b != nil {
			md[KeyBarrier], md[KeyBarrierReason] = "true", reasonOr(b.Reason)
			barriers = append(barriers, i)
		}
		if d := r.Metadata.Deadend; d != nil {
			md[KeyDeadend], md[KeyDeadendReason] = "true", reasonOr(d.Reason)
		}
		if ro := r.Metadata.Rollout; ro != nil {
			md[KeyRollout] = "true"
			if ro.StartEpoch != nil {
				md[KeyStartEpoch] = strconv.FormatInt(*ro.StartEpoch, 10)
			}
			if ro.StartPercentage != nil {
				md[KeyStartValue] = strconv.FormatFloat(*ro.StartPercentage, 'f', -1, 64)
			}
			if ro.DurationMinutes != nil {
				md[KeyDuration] = strconv.FormatInt(*ro.DurationMinutes, 10)
			}
			rollouts = append(rollouts, i)
		}
		g.Nodes = append(g.Nodes, Node{Version: r.Version, Payload: r.Payload, Metadata: md})
	}
	previousBarrier := func(age int) int {
		p := 0
		for _, b := range barriers {
			if b < age {
				p = b
			}
		}
		return p
	}
	for _, to := range slices.Backward(rollouts) {
		for from := previousBarrier(to); from < to; from++ {
			g.Edges = append(g.Edges, [2]int64{int64(from), int64(to)})
		}
	}
	for _, to := range barriers {
		if slices.Contains(rollouts, to) {
			continue // a barrier in rollout: its edges are there already
		}
		for from := previousBarrier(to); from < to; from++ {
			g.Edges = append(g.Edges, [2]int64{int64(from), int64(to)})
		}
	}
	return g.FilterDeadends(), nil
}

func reasonOr(r string) string {
	if r == "" {
		return "generic"
	}
	return r
}

// FilterDeadends returns a copy of g without the edges out of dead-end nodes.
func (g *Graph) FilterDeadends() *Graph {
	return g.withEdges(func(e [2]int64) bool { return !g.Nodes[e[0]].Deadend() })
}

// Throttle returns a copy of g without the edges into rollout nodes not yet open to a host of
// the given wariness (0 eager .. 1 cautious) at now.
func (g *Graph) Throttle(wariness float64, now time.Time) *Graph {
	return g.withEdges(func(e [2]int64) bool {
		n := &g.Nodes[e[1]]
		return n.Metadata[KeyRollout] == "" || wariness <= RolloutValue(n, now)
	})
}

// RolloutValue is how far a rollout node has opened at now: hosts whose wariness is at most the
// value may take it (1 for a node not in rollout).
func RolloutValue(n *Node, now time.Time) float64 {
	if n.Metadata[KeyRollout] == "" {
		return 1
	}
	start, _ := strconv.ParseInt(n.Metadata[KeyStartEpoch], 10, 64)
	value, _ := strconv.ParseFloat(n.Metadata[KeyStartValue], 64)
	if math.IsNaN(value) {
		value = 0
	}
	t := now.Unix()
	if t < start {
		return 0
	}
	// Like Cincinnati, a duration that is no unsigned number counts as none; the cap keeps
	// end from overflowing (2^40 minutes are two million years).
	minutes, err := strconv.ParseUint(n.Metadata[KeyDuration], 10, 64)
	if err != nil {
		return value // no duration: the rollout stays at its start value
	}
	end := start + int64(min(max(minutes, 1), 1<<40))*60
	if t > end {
		return 1
	}
	return value + (1-value)*float64(t-start)/float64(end-start)
}

func (g *Graph) withEdges(keep func([2]int64) bool) *Graph {
	out := &Graph{Nodes: g.Nodes, Edges: make([][2]int64, 0, len(g.Edges))}
	for _, e := range g.Edges {
		if e[0] >= 0 && e[1] >= 0 && int(e[0]) < len(g.Nodes) && int(e[1]) < len(g.Nodes) && keep(e) {
			out.Edges = append(out.Edges, e)
		}
	}
	return out
}

// Find returns the index of the node whose payload digest is digest or, when none is, whose
// version is version ("" matches nothing); -1 if there is none.
func (g *Graph) Find(digest, version string) int {
	for i := range g.Nodes {
		if digest != "" && g.Nodes[i].Digest() == digest {
			return i
		}
	}
	for i := range g.Nodes {
		if version != "" && g.Nodes[i].Version == version {
			return i
		}
	}
	return -1
}

// Next returns the node a host on node from updates to: of the nodes the edges out of from lead
// to, the newest (highest age index); ok is false when there is none.
//
// A host on a dead-end has no edges out, and Zincati leaves it there. Next moves it on: it takes
// the newest node after from that is not a dead-end, not past the first barrier after from, and
// open to the host (some edge leads into it in g, which the caller has throttled).
func (g *Graph) Next(from int) (to int, ok bool) {
	if from < 0 || from >= len(g.Nodes) {
		return -1, false
	}
	to, best := -1, g.Nodes[from].AgeIndex()
	for _, e := range g.Edges {
		if int(e[0]) == from {
			if a := g.Nodes[e[1]].AgeIndex(); a > best {
				to, best = int(e[1]), a
			}
		}
	}
	if to >= 0 || !g.Nodes[from].Deadend() {
		return to, to >= 0
	}
	open := make(map[int64]bool, len(g.Edges))
	for _, e := range g.Edges {
		open[e[1]] = true
	}
	start, limit := g.Nodes[from].AgeIndex(), math.MaxInt
	for i := range g.Nodes {
		if a := g.Nodes[i].AgeIndex(); a > start && g.Nodes[i].Barrier() {
			limit = min(limit, a)
		}
	}
	to = g.newestOpenUpTo(start, limit, open)
	return to, to >= 0
}

// newestOpenUpTo is the newest open, non-dead-end node with age index in (after, upTo].
func (g *Graph) newestOpenUpTo(after, upTo int, open map[int64]bool) int {
	to, best := -1, after
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if a := n.AgeIndex(); a > best && a <= upTo && open[int64(i)] && !n.Deadend() {
			to, best = i, a
		}
	}
	return to
}

// Wariness is the rollout wariness of a host that sets none, derived from its node id as
// Cincinnati derives it: a hash of the id scaled into (0, 1], the same for the same id. (The
// hash is the first 8 bytes of SHA-256, big-endian, over the id's text: Cincinnati uses Rust's
// SipHash, so the values differ from FCOS's, but spread as evenly.)
func Wariness(nodeUUID string) float64 {
	sum := sha256.Sum256([]byte(nodeUUID))
	v := float64(binary.BigEndian.Uint64(sum[:8])) / float64(math.MaxUint64)
	return min(max(v, 0.000001), 1)
}

// String describes a node for logs: "VERSION (PAYLOAD)".
func (n *Node) String() string { return fmt.Sprintf("%s (%s)", n.Version, n.Payload) }
