package updategraph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A host asking our Handler through NewCincinnatiSource gets what the registry source builds,
// dead-ends filtered and throttled by its wariness.
func TestHandlerAndCincinnatiSource(t *testing.T) {
	idx := index(rel("v1", "r"), rel("v2", "rd"), rel("v3", "r"))
	idx.Releases[2].Metadata.Rollout = &Rollout{StartEpoch: ptr(int64(0)), StartPercentage: ptr(0.5)}
	srv := httptest.NewServer(Handler(func(_ context.Context, stream string) (*Index, error) {
		if stream != "stable" {
			return nil, fmt.Errorf("%w: %s", ErrNoIndex, stream)
		}
		return idx, nil
	}))
	defer srv.Close()
	src := NewCincinnatiSource(srv.URL+"/", srv.Client())
	for _, tc := range []struct {
		name string
		q    Query
	}{
		{"eager", Query{Stream: "stable", Basearch: "x86_64", Wariness: ptr(0.2)}},
		{"cautious", Query{Stream: "stable", Basearch: "x86_64", Wariness: ptr(0.9)}},
		{"by node id", Query{Stream: "stable", Basearch: "aarch64", NodeUUID: "0123456789abcdef"}},
	} {
		got, err := src.Graph(context.Background(), tc.q)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want, _ := hostGraph(idx, tc.q)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: served %+v, want %+v", tc.name, got, want)
		}
	}
	if _, err := src.Graph(context.Background(), Query{Stream: "nope", Basearch: "x86_64"}); err == nil || !strings.Contains(err.Error(), "404") || !strings.Contains(err.Error(), srv.URL) {
		t.Errorf("unknown stream: %v", err)
	}
	for query, status := range map[string]int{
		"stream=stable":   http.StatusBadRequest,
		"basearch=x86_64": http.StatusBadRequest,
		"stream=stable&basearch=x86_64&rollout_wariness=2": http.StatusBadRequest,
		"stream=a/b&basearch=x86_64":                       http.StatusBadRequest,
		"stream=nope&basearch=x86_64":                      http.StatusNotFound,
		"stream=stable&basearch=x86_64":                    http.StatusOK,
	} {
		resp, err := srv.Client().Get(srv.URL + "/v1/graph?" + query)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Kind, Value string }
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != status || status != http.StatusOK && e.Kind == "" {
			t.Errorf("%s: %d %+v, want %d with a kind", query, resp.StatusCode, e, status)
		}
	}
}

func TestCincinnatiSourceQuery(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path + "?" + r.URL.RawQuery + " " + r.Header.Get("Accept")
		io.WriteString(w, `{"nodes":[],"edges":[]}`)
	}))
	defer srv.Close()
	src := NewCincinnatiSource(srv.URL, nil)
	src.Graph(context.Background(), Query{Stream: "s", Basearch: "x86_64", NodeUUID: "id", Wariness: ptr(0.25)})
	if want := "/v1/graph?basearch=x86_64&node_uuid=id&oci=true&rollout_wariness=0.250000&stream=s application/json"; got != want {
		t.Errorf("request %q, want %q", got, want)
	}
	src.Graph(context.Background(), Query{Stream: "s", Basearch: "x86_64", NodeUUID: "id"})
	if strings.Contains(got, "rollout_wariness") {
		t.Errorf("rollout_wariness sent without one: %s", got)
	}
}

func TestParseGraphStrict(t *testing.T) {
	node := `{"version":"1","payload":"p","metadata":{"org.fedoraproject.coreos.releases.age_index":"0"}}`
	if g, err := ParseGraph(strings.NewReader(`{"nodes":[` + node + `],"edges":[[0,0]]}`)); err != nil || len(g.Edges) != 1 {
		t.Fatalf("%+v, %v", g, err)
	}
	for name, bad := range map[string]string{
		"edge out of range": `{"nodes":[` + node + `],"edges":[[0,1]]}`,
		"negative edge":     `{"nodes":[` + node + `],"edges":[[-1,0]]}`,
		"edge of three":     `{"nodes":[` + node + `],"edges":[[0,0,0]]}`,
		"edge of one":       `{"nodes":[` + node + `],"edges":[[0]]}`,
		"no age index":      `{"nodes":[{"version":"1","payload":"p","metadata":{}}],"edges":[]}`,
		"unknown field":     `{"nodes":[],"edges":[],"x":1}`,
		"trailing data":     `{"nodes":[],"edges":[]}x`,
		"trailing bracket":  `{"nodes":[],"edges":[]}]`,
		"too large":         `{"nodes":[],"edges":[]}` + strings.Repeat(" ", MaxGraphSize),
	} {
		if _, err := ParseGraph(strings.NewReader(bad)); !errors.Is(err, ErrInvalidGraph) {
			t.Errorf("%s: %v, want ErrInvalidGraph", name, err)
		}
	}
}

func FuzzParseGraph(f *testing.F) {
	g, _ := Build(index(rel("v1", "r"), rel("v2", "rb"), rel("v3", "rd"), rel("v4", "r")), "x86_64")
	b, _ := json.Marshal(g)
	f.Add(b)
	f.Add([]byte(`{"nodes":[],"edges":[]}`))
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		g, err := ParseGraph(bytes.NewReader(untrusted))
		if err != nil {
			return
		}
		for _, e := range g.Edges {
			if e[0] < 0 || e[1] < 0 || e[0] >= int64(len(g.Nodes)) || e[1] >= int64(len(g.Nodes)) {
				t.Fatalf("edge %v out of range", e)
			}
		}
		th := g.FilterDeadends().Throttle(0.5, time.Unix(0, 0))
		for i := range th.Nodes {
			if th.Nodes[i].AgeIndex() < 0 {
				t.Fatalf("node %d without age index", i)
			}
			if to, ok := th.Next(i); ok && (to < 0 || to >= len(th.Nodes)) {
				t.Fatalf("Next(%d) = %d", i, to)
			}
		}
	})
}
