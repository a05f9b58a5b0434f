package fleetlock

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// PathMetrics is where a Server serves its Prometheus metrics.
const PathMetrics = "/metrics"

// MaxRequestBytes is the largest request body a Server reads (a real one is under 200 bytes).
const MaxRequestBytes = 4 << 10

// ErrInvalidRequest is the refusal of a request body that is not a valid FleetLock request.
var ErrInvalidRequest = errors.New("invalid fleetlock request")

// ParseRequest parses an untrusted request body strictly: one JSON object
// {"client_params":{"id":ID,"group":GROUP}} and nothing else (no unknown or duplicate keys, no
// trailing data), with a non-empty id and a group matching GroupPattern. Errors wrap ErrInvalidRequest.
func ParseRequest(untrusted []byte) (ClientParams, error) {
	dec := json.NewDecoder(bytes.NewReader(untrusted))
	dec.DisallowUnknownFields()
	var req Request
	if err := dec.Decode(&req); err != nil {
		return ClientParams{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return ClientParams{}, fmt.Errorf("%w: data after the JSON object", ErrInvalidRequest)
	}
	if err := noDuplicateKeys(untrusted); err != nil {
		return ClientParams{}, fmt.Errorf("%w: %w", ErrInvalidRequest, err)
	}
	p := req.ClientParams
	switch {
	case p.ID == "":
		return p, fmt.Errorf("%w: empty client_params.id", ErrInvalidRequest)
	case !GroupPattern.MatchString(p.Group):
		return p, fmt.Errorf("%w: group %q: a group name is non-empty and has only letters, digits, '.' and '-'", ErrInvalidRequest, p.Group)
	}
	return p, nil
}

// noDuplicateKeys walks a JSON document and fails on an object with a key twice (which
// encoding/json would resolve silently, the last one winning).
func noDuplicateKeys(doc []byte) error {
	type object struct {
		keys    map[string]bool
		wantKey bool
	}
	var stack []*object // nil entries are arrays
	dec := json.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		var top *object
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch {
		case tok == json.Delim('{'):
			stack = append(stack, &object{keys: map[string]bool{}, wantKey: true})
		case tok == json.Delim('['):
			stack = append(stack, nil)
		case tok == json.Delim('}') || tok == json.Delim(']'):
			if stack = stack[:len(stack)-1]; len(stack) > 0 && stack[len(stack)-1] != nil {
				stack[len(stack)-1].wantKey = true
			}
		case top != nil && top.wantKey:
			key, _ := tok.(string)
			if top.keys[key] {
				return fmt.Errorf("key %q twice", key)
			}
			top.keys[key], top.wantKey = true, false
		case top != nil:
			top.wantKey = true
		}
	}
}

// Server serves the FleetLock protocol from a Backend: POST PathPreReboot takes a slot, POST
// PathSteadyState gives it back, GET PathMetrics gives Prometheus metrics. Refusals are
// {"kind","value"} JSON (see the Kind constants for kinds and statuses).
type Server struct {
	backend Backend
	log     *slog.Logger
	timeout time.Duration
	mux     *http.ServeMux
	metrics metrics
}

// Option is an option of NewHandler.
type Option func(*Server)

// WithLogger logs each grant and release (Info) and each backend failure (Error) to l (default:
// nothing is logged).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithBackendTimeout bounds each request's work in the backend (default 10 s).
func WithBackendTimeout(d time.Duration) Option { return func(s *Server) { s.timeout = d } }

// NewHandler returns a Server of backend. Its metrics live in a registry of its own.
func NewHandler(backend Backend, opts ...Option) *Server {
	s := &Server{backend: backend, log: slog.New(slog.DiscardHandler), timeout: 10 * time.Second, mux: http.NewServeMux()}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	reg := s.metrics.register()
	s.mux.Handle(PathPreReboot, s.endpoint(PathPreReboot, backend.Lock, s.metrics.grants, "granted"))
	s.mux.Handle(PathSteadyState, s.endpoint(PathSteadyState, backend.Unlock, s.metrics.releases, "released"))
	s.mux.Handle(PathMetrics, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &Error{Status: http.StatusNotFound, Kind: KindNotFound, Value: fmt.Sprintf("no endpoint %s: use POST %s or %s", r.URL.Path, PathPreReboot, PathSteadyState)})
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// endpoint serves one of the two protocol endpoints: op takes or gives back the slot, done
// counts the successes and verb names them in the log.
func (s *Server) endpoint(path string, op func(ctx context.Context, group, id string) error, done *prometheus.CounterVec, verb string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, herr := readRequest(w, r)
		if herr == nil {
			ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
			herr = s.apply(ctx, p, op)
			if herr == nil {
				done.WithLabelValues(p.Group).Inc()
				s.log.Info("fleetlock: "+verb, "group", p.Group, "id", p.ID)
				s.updateGauges(ctx, p.Group)
			}
			cancel()
		}
		result := "ok"
		if herr != nil {
			result = herr.Kind
			writeError(w, herr)
		} else {
			w.WriteHeader(http.StatusOK)
		}
		s.metrics.requests.WithLabelValues(path, result).Inc()
	})
}

// readRequest checks the method and header and parses the body.
func readRequest(w http.ResponseWriter, r *http.Request) (ClientParams, *Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return ClientParams{}, &Error{Status: http.StatusMethodNotAllowed, Kind: KindMethod, Value: fmt.Sprintf("method %s: use POST", r.Method)}
	}
	if v := r.Header.Get(HeaderProtocol); v != "true" {
		return ClientParams{}, &Error{Status: http.StatusBadRequest, Kind: KindInvalidIdentity, Value: fmt.Sprintf("header %s is %q: it must be \"true\"", HeaderProtocol, v)}
	}
	untrusted, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRequestBytes))
	if err != nil {
		status := http.StatusBadRequest
		if errors.As(err, new(*http.MaxBytesError)) {
			status = http.StatusRequestEntityTooLarge
		}
		return ClientParams{}, &Error{Status: status, Kind: KindInvalidIdentity, Value: "reading the request body: " + err.Error()}
	}
	p, err := ParseRequest(untrusted)
	if err != nil {
		return p, &Error{Status: http.StatusBadRequest, Kind: KindInvalidIdentity, Value: err.Error()}
	}
	return p, nil
}

// apply runs op and turns its error into the protocol's.
func (s *Server) apply(ctx context.Context, p ClientParams, op func(ctx context.Context, group, id string) error) *Error {
	err := op(ctx, p.Group, p.ID)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownGroup):
		return &Error{Status: http.StatusBadRequest, Kind: KindUnknownGroup, Value: err.Error()}
	case errors.Is(err, ErrFull):
		return &Error{Status: http.StatusConflict, Kind: KindFull, Value: err.Error()}
	}
	s.log.Error("fleetlock: backend failed", "group", p.Group, "id", p.ID, "err", err)
	return &Error{Status: http.StatusInternalServerError, Kind: KindBackend, Value: err.Error()}
}

// updateGauges sets group's gauges from the backend (after a change; another server may have
// changed the semaphore since, which the next request here shows).
func (s *Server) updateGauges(ctx context.Context, group string) {
	sem, err := s.backend.Holders(ctx, group)
	if err != nil {
		s.log.Warn("fleetlock: reading the semaphore for the metrics", "group", group, "err", err)
		return
	}
	s.metrics.slots.WithLabelValues(group).Set(float64(sem.TotalSlots))
	s.metrics.holders.WithLabelValues(group).Set(float64(len(sem.Holders)))
}

func writeError(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	w.Write(append(body, '\n'))
}

// metrics are a Server's Prometheus metrics.
type metrics struct {
	requests, grants, releases *prometheus.CounterVec
	slots, holders             *prometheus.GaugeVec
}

// register creates the metrics in a new registry.
func (m *metrics) register() *prometheus.Registry {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "fleetlock", Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "fleetlock", Name: name, Help: help}, []string{"group"})
	}
	m.requests = counter("requests_total", "Requests by endpoint and result (ok or the error kind).", "endpoint", "result")
	m.grants = counter("grants_total", "Successful pre-reboot requests (slots taken or already held) by group.", "group")
	m.releases = counter("releases_total", "Successful steady-state requests (slots given back or not held) by group.", "group")
	m.slots = gauge("group_slots", "Total slots of the group's semaphore, as last seen.")
	m.holders = gauge("group_holders", "Held slots of the group's semaphore, as last seen.")
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.requests, m.grants, m.releases, m.slots, m.holders)
	return reg
}
