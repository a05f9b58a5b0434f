package fleetlock

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// newTestServer serves a memory backend of testConfig.
func newTestServer(t *testing.T) (*httptest.Server, Backend) {
	b, err := NewMemoryBackend(testConfig)
	must(t, err)
	srv := httptest.NewServer(NewHandler(b))
	t.Cleanup(srv.Close)
	return srv, b
}

// call sends a raw request and returns the status and the decoded error body (nil on 200).
func call(t *testing.T, method, url string, header bool, body string) (int, *Error) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	must(t, err)
	if header {
		req.Header.Set(HeaderProtocol, "true")
	}
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil
	}
	var e Error
	if err := json.Unmarshal(raw, &e); err != nil || e.Kind == "" || e.Value == "" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s %s: %d with a body that is no {kind,value} JSON: %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, &e
}

func body(id, group string) string {
	b, _ := json.Marshal(Request{ClientParams{ID: id, Group: group}})
	return string(b)
}

func TestProtocol(t *testing.T) {
	srv, b := newTestServer(t)
	lock, unlock := srv.URL+PathPreReboot, srv.URL+PathSteadyState
	steps := []struct {
		name         string
		method, url  string
		noHeader     bool
		body         string
		status       int
		kind         string
		wantHoldersA []string // holders of the default group afterwards, when set
	}{
		{name: "granted", url: lock, body: body("a", "default"), status: 200, wantHoldersA: []string{"a"}},
		{name: "recursive", url: lock, body: body("a", "default"), status: 200, wantHoldersA: []string{"a"}},
		{name: "second slot", url: lock, body: body("b", "default"), status: 200, wantHoldersA: []string{"a", "b"}},
		{name: "full", url: lock, body: body("c", "default"), status: 409, kind: KindFull, wantHoldersA: []string{"a", "b"}},
		{name: "unknown group", url: lock, body: body("c", "typo"), status: 400, kind: KindUnknownGroup},
		{name: "malformed group", url: lock, body: body("c", "a/b"), status: 400, kind: KindInvalidIdentity},
		{name: "empty group", url: lock, body: body("c", ""), status: 400, kind: KindInvalidIdentity},
		{name: "empty id", url: lock, body: body("", "default"), status: 400, kind: KindInvalidIdentity},
		{name: "missing header", url: lock, noHeader: true, body: body("c", "default"), status: 400, kind: KindInvalidIdentity},
		{name: "bad json", url: lock, body: `{"client_params":`, status: 400, kind: KindInvalidIdentity},
		{name: "unknown key", url: lock, body: `{"client_params":{"id":"c","group":"default","x":1}}`, status: 400, kind: KindInvalidIdentity},
		{name: "duplicate key", url: lock, body: `{"client_params":{"id":"c","group":"default","id":"d"}}`, status: 400, kind: KindInvalidIdentity},
		{name: "duplicate object", url: lock, body: `{"client_params":{"id":"c","group":"default"},"client_params":{"id":"d","group":"default"}}`, status: 400, kind: KindInvalidIdentity},
		{name: "trailing data", url: lock, body: body("c", "default") + "{}", status: 400, kind: KindInvalidIdentity},
		{name: "too large", url: lock, body: `{"client_params":{"id":"` + strings.Repeat("x", MaxRequestBytes) + `","group":"default"}}`, status: 413, kind: KindInvalidIdentity},
		{name: "wrong method", method: http.MethodGet, url: lock, status: 405, kind: KindMethod},
		{name: "wrong method on unlock", method: http.MethodPut, url: unlock, body: body("a", "default"), status: 405, kind: KindMethod, wantHoldersA: []string{"a", "b"}},
		{name: "no such endpoint", url: srv.URL + "/v2/pre-reboot", body: body("c", "default"), status: 404, kind: KindNotFound},
		{name: "release not held", url: unlock, body: body("c", "default"), status: 200, wantHoldersA: []string{"a", "b"}},
		{name: "release", url: unlock, body: body("a", "default"), status: 200, wantHoldersA: []string{"b"}},
		{name: "release again", url: unlock, body: body("a", "default"), status: 200, wantHoldersA: []string{"b"}},
		{name: "unknown group on unlock", url: unlock, body: body("a", "typo"), status: 400, kind: KindUnknownGroup},
		{name: "granted after release", url: lock, body: body("c", "default"), status: 200, wantHoldersA: []string{"b", "c"}},
	}
	for _, s := range steps {
		status, e := call(t, cmpOr(s.method, http.MethodPost), s.url, !s.noHeader, s.body)
		if status != s.status || (e == nil) != (s.kind == "") || (e != nil && e.Kind != s.kind) {
			t.Fatalf("%s: %d %+v, want %d %q", s.name, status, e, s.status, s.kind)
		}
		if s.wantHoldersA != nil {
			sem, err := b.Holders(context.Background(), DefaultGroup)
			must(t, err)
			if strings.Join(sem.Holders, ",") != strings.Join(s.wantHoldersA, ",") {
				t.Fatalf("%s: holders %q, want %q", s.name, sem.Holders, s.wantHoldersA)
			}
		}
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// The client speaks to the server: grants, IsFull on a full group, and typed refusals.
func TestClientAgainstServer(t *testing.T) {
	srv, _ := newTestServer(t)
	c, err := NewClient(srv.URL+"/", nil)
	must(t, err)
	ctx := context.Background()
	must(t, c.PreReboot(ctx, "a", "workers"))
	must(t, c.PreReboot(ctx, "a", "workers"))
	if err := c.PreReboot(ctx, "b", "workers"); !IsFull(err) {
		t.Fatalf("second host of a 1-slot group: %v, want IsFull", err)
	}
	var e *Error
	if err := c.PreReboot(ctx, "b", "typo"); !errors.As(err, &e) || e.Kind != KindUnknownGroup || e.Status != 400 || IsFull(err) {
		t.Fatalf("unknown group: %v", err)
	}
	must(t, c.SteadyState(ctx, "b", "workers"))
	must(t, c.SteadyState(ctx, "a", "workers"))
	must(t, c.PreReboot(ctx, "b", "workers"))
	if _, err := NewClient("ftp://x", nil); err == nil {
		t.Error("NewClient accepted an ftp URL")
	}
}

func TestMetrics(t *testing.T) {
	srv, _ := newTestServer(t)
	call(t, http.MethodPost, srv.URL+PathPreReboot, true, body("a", "default"))
	call(t, http.MethodPost, srv.URL+PathPreReboot, true, body("a", "workers"))
	call(t, http.MethodPost, srv.URL+PathPreReboot, true, body("b", "workers"))
	call(t, http.MethodPost, srv.URL+PathSteadyState, true, body("a", "default"))
	resp, err := http.Get(srv.URL + PathMetrics)
	must(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`fleetlock_group_slots{group="default"} 2`,
		`fleetlock_group_holders{group="default"} 0`,
		`fleetlock_group_slots{group="workers"} 1`,
		`fleetlock_group_holders{group="workers"} 1`,
		`fleetlock_grants_total{group="workers"} 1`,
		`fleetlock_releases_total{group="default"} 1`,
		`fleetlock_requests_total{endpoint="/v1/pre-reboot",result="failed_lock"} 1`,
		`fleetlock_requests_total{endpoint="/v1/pre-reboot",result="ok"} 2`,
	} {
		if !strings.Contains(string(raw), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, raw)
		}
	}
	// Each server has a registry of its own: a second one starts at zero.
	srv2, _ := newTestServer(t)
	resp2, err := http.Get(srv2.URL + PathMetrics)
	must(t, err)
	defer resp2.Body.Close()
	if raw2, _ := io.ReadAll(resp2.Body); strings.Contains(string(raw2), "grants_total{") {
		t.Errorf("a new server's metrics show another's grants:\n%s", raw2)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{body("a", "default"), `{"client_params":{"id":"x","group":"a.b-C"}}`, `{}`, `{"client_params":null}`, `[]`, body("a", "b") + " ", `{"client_params":{"id":"x","id":"y","group":"g"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, untrusted []byte) {
		p, err := ParseRequest(untrusted)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			return
		}
		if p.ID == "" || !GroupPattern.MatchString(p.Group) {
			t.Fatalf("accepted %q as %+v", untrusted, p)
		}
		// What was accepted round-trips.
		again, err := ParseRequest([]byte(body(p.ID, p.Group)))
		if err != nil || again != p {
			t.Fatalf("%+v does not round-trip: %+v, %v", p, again, err)
		}
	})
}

func TestNoDuplicateKeys(t *testing.T) {
	for doc, dup := range map[string]bool{
		`{"a":[{"b":1},{"b":2}],"c":{"b":1},"d":"a"}`: false,
		`{"a":[1,"a",{"a":{}}],"b":[]}`:               false,
		`{"a":[{"b":1,"b":2}]}`:                       true,
		`{"a":{"x":[]},"a":1}`:                        true,
		`{"a":{"b":{},"b":{}}}`:                       true,
	} {
		if err := noDuplicateKeys([]byte(doc)); (err != nil) != dup {
			t.Errorf("%s: %v, want duplicate %v", doc, err, dup)
		}
	}
}
