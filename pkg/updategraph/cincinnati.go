package updategraph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// MaxGraphSize bounds the bytes ParseGraph reads.
const MaxGraphSize = 16 << 20

// ErrInvalidGraph is wrapped by ParseGraph's errors.
var ErrInvalidGraph = errors.New("invalid update graph")

// ParseGraph reads a graph in Cincinnati's JSON form strictly: unknown fields, trailing data,
// more than MaxGraphSize bytes, nodes without a version or an age index and edges that are not
// pairs of node indices are refused.
func ParseGraph(r io.Reader) (*Graph, error) {
	var raw struct {
		Nodes []Node    `json:"nodes"`
		Edges [][]int64 `json:"edges"`
	}
	if err := decodeStrict(r, MaxGraphSize, &raw, ErrInvalidGraph); err != nil {
		return nil, err
	}
	g := &Graph{Nodes: raw.Nodes, Edges: make([][2]int64, 0, len(raw.Edges))}
	for i := range g.Nodes {
		if n := &g.Nodes[i]; n.Version == "" || n.AgeIndex() < 0 {
			return nil, fmt.Errorf("%w: node %d has no version or no %s", ErrInvalidGraph, i, KeyAgeIndex)
		}
	}
	for i, e := range raw.Edges {
		if len(e) != 2 || e[0] < 0 || e[1] < 0 || e[0] >= int64(len(g.Nodes)) || e[1] >= int64(len(g.Nodes)) {
			return nil, fmt.Errorf("%w: edge %d %v is not a pair of node indices (0..%d)", ErrInvalidGraph, i, e, len(g.Nodes)-1)
		}
		g.Edges = append(g.Edges, [2]int64{e[0], e[1]})
	}
	return g, nil
}

// NewCincinnatiSource is the Source of hosts that ask a Cincinnati server, as Zincati does:
// GET BASE/v1/graph with the query's stream, basearch, node_uuid and (when set)
// rollout_wariness, and oci=true. The server throttles, so the graph is taken as it comes. hc
// nil is http.DefaultClient.
func NewCincinnatiSource(baseURL string, hc *http.Client) Source {
	if hc == nil {
		hc = http.DefaultClient
	}
	return cincinnatiSource{base: strings.TrimSuffix(baseURL, "/"), hc: hc}
}

type cincinnatiSource struct {
	base string
	hc   *http.Client
}

func (s cincinnatiSource) Graph(ctx context.Context, q Query) (*Graph, error) {
	v := url.Values{"basearch": {q.Basearch}, "stream": {q.Stream}, "node_uuid": {q.NodeUUID}, "oci": {"true"}}
	if q.Wariness != nil {
		v.Set("rollout_wariness", strconv.FormatFloat(q.EffectiveWariness(), 'f', 6, 64))
	}
	u := s.base + "/v1/graph?" + v.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("update graph %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("update graph: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("update graph %s: %s: %s", u, resp.Status, bytes.TrimSpace(body))
	}
	g, err := ParseGraph(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("update graph %s: %w", u, err)
	}
	return g, nil
}

// Handler serves GET /v1/graph as Cincinnati does for Fedora CoreOS: stream and basearch are
// required (400 without), a stream whose index lookup fails with ErrNoIndex is 404, the graph
// is built from the stream's index with dead-ends filtered and throttled for the client's
// rollout_wariness, or the one derived from node_uuid. Errors are {"kind","value"} JSON.
func Handler(src func(ctx context.Context, stream string) (*Index, error)) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/graph", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			graphError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed: use GET")
			return
		}
		q, err := parseQuery(r.URL.Query())
		if err != nil {
			graphError(w, http.StatusBadRequest, "invalid_params", err.Error())
			return
		}
		idx, err := src(r.Context(), q.Stream)
		if errors.Is(err, ErrNoIndex) {
			graphError(w, http.StatusNotFound, "unknown_stream", fmt.Sprintf("no stream %q", q.Stream))
			return
		}
		var g *Graph
		if err == nil {
			g, err = hostGraph(idx, q)
		}
		if err != nil {
			graphError(w, http.StatusInternalServerError, "failed_graph", err.Error())
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(g)
	})
	return mux
}

func parseQuery(v url.Values) (Query, error) {
	q := Query{Stream: v.Get("stream"), Basearch: v.Get("basearch"), NodeUUID: v.Get("node_uuid"), Now: time.Now()}
	if q.Stream == "" || q.Basearch == "" {
		return q, errors.New("the stream and basearch parameters are required")
	}
	if !streamName.MatchString(q.Stream) {
		return q, fmt.Errorf("stream %q is no stream name", q.Stream)
	}
	if s := v.Get("rollout_wariness"); s != "" {
		w, err := strconv.ParseFloat(s, 64)
		if err != nil || w < 0 || w > 1 {
			return q, fmt.Errorf("rollout_wariness %q is not a number between 0 and 1", s)
		}
		q.Wariness = &w
	}
	return q, nil
}

func graphError(w http.ResponseWriter, status int, kind, value string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"kind": kind, "value": value})
}
