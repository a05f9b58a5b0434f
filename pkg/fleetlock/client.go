// Package fleetlock speaks the FleetLock protocol (Zincati's docs/development/fleetlock/
// protocol.md; airlock and poseidon/fleetlock serve it): before a host reboots into an update it
// takes a slot of its group's semaphore (POST <base>/v1/pre-reboot), and once it is back and
// healthy it gives the slot back (POST <base>/v1/steady-state). Both requests carry the header
// "fleet-lock-protocol: true" and the body {"client_params":{"id":ID,"group":GROUP}}; 200 means
// done, anything else carries {"kind":...,"value":...}. The lock is a recursive counting
// semaphore owned by id: taking a slot one holds, or giving back one that one does not hold,
// succeeds without change.
//
// Client is the host's side. Server (NewHandler) is the server's, over a Backend: MemoryBackend
// for one process, EtcdBackend for any number of replicas sharing etcd with airlock's keys and
// values. README.md says how an operator frees the slot of a host that died holding it.
package fleetlock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// The protocol's paths, header and group syntax.
const (
	PathPreReboot   = "/v1/pre-reboot"
	PathSteadyState = "/v1/steady-state"
	HeaderProtocol  = "fleet-lock-protocol"
	// DefaultGroup is the group of a host that names none (Zincati's default).
	DefaultGroup = "default"
)

// GroupPattern is the syntax of a group name.
var GroupPattern = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)

// Request is the body of both requests.
type Request struct {
	ClientParams ClientParams `json:"client_params"`
}

// ClientParams names the host and its group.
type ClientParams struct {
	ID    string `json:"id"`
	Group string `json:"group"`
}

// Error is a refusal from the server: the HTTP status and the body's kind and value.
type Error struct {
	Status int    `json:"-"`
	Kind   string `json:"kind"`
	Value  string `json:"value"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("fleetlock: %s (HTTP %d): %s", e.Kind, e.Status, e.Value)
}

// Client talks to one FleetLock server.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the server at baseURL (http or https; the protocol's paths are
// appended to it). hc nil means http.DefaultClient.
func NewClient(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fleetlock: base URL %q is not an http(s) URL (e.g. http://fleetlock.example:8080)", baseURL)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), http: hc}, nil
}

// PreReboot takes a slot of group's semaphore for id (a no-op when id holds one already). A
// full semaphore, like any refusal, is an *Error.
func (c *Client) PreReboot(ctx context.Context, id, group string) error {
	return c.post(ctx, PathPreReboot, id, group)
}

// SteadyState gives id's slot of group's semaphore back (a no-op when it holds none).
func (c *Client) SteadyState(ctx context.Context, id, group string) error {
	return c.post(ctx, PathSteadyState, id, group)
}

func (c *Client) post(ctx context.Context, path, id, group string) error {
	if !GroupPattern.MatchString(group) {
		return fmt.Errorf("fleetlock: group %q: a group name has only letters, digits, '.' and '-'", group)
	}
	body, err := json.Marshal(Request{ClientParams: ClientParams{ID: id, Group: group}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set(HeaderProtocol, "true")
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("fleetlock: %w", err)
	}
	defer resp.Body.Close()
	untrusted, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	e := &Error{Status: resp.StatusCode}
	if json.Unmarshal(untrusted, e) != nil || e.Kind == "" {
		e.Kind, e.Value = "unexpected_response", strings.TrimSpace(string(untrusted))
	}
	return e
}

// IsFull reports whether err is the server's refusal because the group has no free slot (the
// host should try again later). Against airlock, which sends failed_lock for its backend
// failures too, it also reports those: either way, the answer is to try again later.
func IsFull(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == KindFull
}

// Error kinds and the statuses this package's Server sends them with. Where airlock has a kind
// for the case, it is airlock's (its statuses differ: airlock answers a full semaphore, like any
// backend failure, with 500 failed_lock).
const (
	// KindInvalidIdentity (400; 413 for an oversized body): the protocol header is missing or
	// not "true", or the body is not a valid request (bad JSON, unknown keys, empty id, bad
	// group name).
	KindInvalidIdentity = "invalid_client_identity"
	// KindUnknownGroup (400): the server's configuration has no such group.
	KindUnknownGroup = "unknown_group"
	// KindFull (409): every slot of the group is held; try again later.
	KindFull = "failed_lock"
	// KindBackend (500): the server could not read or change the semaphore (etcd down, too
	// many concurrent changes).
	KindBackend = "backend_error"
	// KindMethod (405): the method is not POST.
	KindMethod = "method_not_allowed"
	// KindNotFound (404): no such endpoint.
	KindNotFound = "not_found"
	// KindUnexpectedResp is the client's own kind for a refusal without a {"kind","value"} body.
	KindUnexpectedResp = "unexpected_response"
)
