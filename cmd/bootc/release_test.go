package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/transport"
	ug "github.com/bootc-go/bootc/pkg/updategraph"
)

// pushVersioned pushes a small image labelled with version to ref and returns its digest.
func pushVersioned(t *testing.T, ref, version string) v1.Hash {
	t.Helper()
	img, err := random.Image(256, 1)
	must(t, err)
	img, err = mutate.Config(img, v1.Config{Labels: map[string]string{"org.opencontainers.image.version": version}})
	must(t, err)
	r, err := imgref.Parse(ref)
	must(t, err)
	d, err := transport.Write(context.Background(), img, r)
	must(t, err)
	return d
}

func releaseList(t *testing.T, repo string) []ug.ReleaseStatus {
	t.Helper()
	var rows []ug.ReleaseStatus
	must(t, json.Unmarshal([]byte(mustRun(t, "release", "list", "--stream", "stable", "--format", "json", repo)), &rows))
	return rows
}

func releaseEdges(t *testing.T, repo string, args ...string) [][2]int64 {
	t.Helper()
	out := mustRun(t, append([]string{"release", "graph", "--stream", "stable", "--format", "json", repo}, args...)...)
	g, err := ug.ParseGraph(strings.NewReader(out))
	must(t, err)
	slices.SortFunc(g.Edges, func(a, b [2]int64) int { return int(a[0]-b[0])*10 + int(a[1]-b[1]) })
	return g.Edges
}

// Publishing v1, a barrier v2 and a v3 rolling out over an hour to the real registry: the
// index lists them, and the graph shows each host what FCOS's Cincinnati would.
func TestReleasePublish(t *testing.T) {
	repo := "docker://" + testutil.Registry(t) + "/os"
	digests := map[string]v1.Hash{}
	for _, v := range []string{"1", "2", "3"} {
		digests[v] = pushVersioned(t, repo+":"+v, v)
	}
	mustRun(t, "release", "add", "--stream", "stable", repo+":1")
	mustRun(t, "release", "add", "--stream", "stable", "--barrier", "new key", repo+":2")
	out := mustRun(t, "release", "add", "--stream", "stable", "--rollout-start-percentage", "0", "--rollout-duration", "1h", repo+":3")
	if !strings.Contains(out, "releases-stable") {
		t.Errorf("add did not say where the index went: %s", out)
	}
	rows := releaseList(t, repo)
	if len(rows) != 3 {
		t.Fatalf("list: %+v", rows)
	}
	for i, v := range []string{"1", "2", "3"} {
		if rows[i].Version != v || !strings.HasSuffix(rows[i].Payload, "/os@"+digests[v].String()) {
			t.Errorf("release %d: %s %s, want %s by digest %s", i, rows[i].Version, rows[i].Payload, v, digests[v])
		}
	}
	if b := rows[1].Metadata.Barrier; b == nil || b.Reason != "new key" || rows[0].Metadata.Barrier != nil {
		t.Errorf("barriers: %+v %+v", rows[0].Metadata.Barrier, b)
	}
	if rows[2].Phase != ug.RollingOut || rows[2].Open > 0.1 || rows[0].Phase != ug.Open {
		t.Errorf("rollout phases %s %s (open %v)", rows[0].Phase, rows[2].Phase, rows[2].Open)
	}
	if text := mustRun(t, "release", "list", "--stream", "stable", repo); !strings.Contains(text, "barrier") || !strings.Contains(text, "rolling out: 0% open, done ") {
		t.Errorf("list:\n%s", text)
	}
	// The eager host sees v3; the cautious one only v1 -> v2, so it stops at the barrier.
	for _, tc := range []struct {
		args []string
		want [][2]int64
	}{
		{[]string{"--wariness", "0"}, [][2]int64{{0, 1}, {1, 2}}},
		{[]string{"--wariness", "1"}, [][2]int64{{0, 1}}},
		{nil, [][2]int64{{0, 1}, {1, 2}}},
	} {
		if got := releaseEdges(t, repo, tc.args...); !slices.Equal(got, tc.want) {
			t.Errorf("graph %v: edges %v, want %v", tc.args, got, tc.want)
		}
	}
	mustRun(t, "release", "rollout", "--stream", "stable", "--version", "3", repo)
	mustRun(t, "release", "barrier", "--stream", "stable", "--version", "2", "--remove", repo)
	if got := releaseEdges(t, repo, "--wariness", "1"); !slices.Equal(got, [][2]int64{{0, 1}, {0, 2}, {1, 2}}) {
		t.Errorf("after opening v3 to all and removing the barrier: edges %v", got)
	}
	mustRun(t, "release", "deadend", "--stream", "stable", "--version", "2", "--reason", "broken", repo)
	if text := mustRun(t, "release", "graph", "--stream", "stable", repo); !strings.Contains(text, "a host on 2 updates to 3") {
		t.Errorf("graph text of a dead-end:\n%s", text)
	}
}

// The publisher's mistakes are refused with errors that say what to do.
func TestReleaseErrors(t *testing.T) {
	reg := testutil.Registry(t)
	repo := "docker://" + reg + "/os"
	pushVersioned(t, repo+":1", "1")
	pushVersioned(t, repo+":x", "")
	mustRun(t, "release", "add", "--stream", "stable", repo+":1")
	foreign, err := imgref.Parse("docker://" + reg + "/other")
	must(t, err)
	_, err = ug.WriteIndex(context.Background(), foreign, &ug.Index{Stream: "stable", Releases: []ug.Release{{Version: "1", Payload: fmt.Sprintf("%s/os@sha256:%064d", reg, 1)}}})
	must(t, err)
	pushVersioned(t, "docker://"+reg+"/other:2", "2")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"version twice", []string{"add", "--stream", "stable", repo + ":1"}, 1, "already has this version: 1 is "},
		{"no version label", []string{"add", "--stream", "stable", repo + ":x"}, 1, "give the release a --version"},
		{"another repository", []string{"add", "--stream", "stable", "docker://" + reg + "/other:2"}, 1, "push the image there first"},
		{"no stream", []string{"add", repo + ":1"}, 2, "--stream is required"},
		{"bad share", []string{"add", "--stream", "s", "--rollout-start-percentage", "50", repo + ":1"}, 2, "between 0 and 1"},
		{"bad start", []string{"add", "--stream", "s", "--rollout-start", "tomorrow", repo + ":1"}, 2, "RFC 3339"},
		{"unknown stream", []string{"list", "--stream", "testing", repo}, 1, "no release index"},
		{"unknown version", []string{"barrier", "--stream", "stable", "--version", "9", repo}, 1, "has no release \"9\""},
		{"wariness and node id", []string{"graph", "--stream", "stable", "--wariness", "0", "--node-uuid", "x", repo}, 2, "not both"},
		{"no version", []string{"rollout", "--stream", "stable", repo}, 2, "--version is required"},
		{"archive", []string{"list", "--stream", "stable", "oci-archive:/tmp/x.tar"}, 1, "oci:DIR layout"},
	} {
		_, errs, code := run(t, append([]string{"release"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%s: exit %d, %q; want %d with %q", tc.name, code, errs, tc.code, tc.want)
		}
	}
}

// release serve answers Cincinnati's /v1/graph from the registry's index until its context ends.
func TestReleaseServe(t *testing.T) {
	repo := "docker://" + testutil.Registry(t) + "/os"
	pushVersioned(t, repo+":1", "1")
	pushVersioned(t, repo+":2", "2")
	mustRun(t, "release", "add", "--stream", "stable", repo+":1")
	mustRun(t, "release", "add", "--stream", "stable", repo+":2")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		done <- Main(ctx, []string{"bootc", "release", "serve", "--listen", addr, repo}, io.Discard, io.Discard)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d", code)
		}
	}()
	src := ug.NewCincinnatiSource("http://"+addr, nil)
	var g *ug.Graph
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if g, err = src.Graph(ctx, ug.Query{Stream: "stable", Basearch: "x86_64", NodeUUID: "n1"}); err == nil {
			break
		}
	}
	if err != nil || len(g.Nodes) != 2 || !slices.Equal(g.Edges, [][2]int64{{0, 1}}) || g.Nodes[0].Metadata[ug.KeyArch] != "x86_64" {
		t.Fatalf("served %+v, %v", g, err)
	}
	if _, err := src.Graph(ctx, ug.Query{Stream: "testing", Basearch: "x86_64"}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown stream: %v", err)
	}
}
