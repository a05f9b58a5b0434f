package testutil

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
)

// CountingRegistry is go-containerregistry's in-memory registry served over plain HTTP on
// 127.0.0.1, counting the requests it serves, so that a test can tell whether a client reached
// it (through a registries.conf mirror, say) or made no request at all (a blocked registry).
//
// It also answers as an HTTP proxy (see Proxy): an absolute-form request ("GET
// http://registry.invalid/v2/") is served by the same registry whatever the host it names,
// and CONNECT (HTTPS through the proxy) is refused and counted apart. A client given Proxy
// reaches a name that resolves nowhere over plain HTTP, or not at all: that tells a client that
// honours `insecure = true` from one that does not.
type CountingRegistry struct {
	// Addr is "127.0.0.1:PORT".
	Addr string

	mu       sync.Mutex
	requests []string
	connects int
}

// NewCountingRegistry starts a CountingRegistry that stops when the test ends.
func NewCountingRegistry(t testing.TB) *CountingRegistry {
	t.Helper()
	r := &CountingRegistry{}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		if req.Method == http.MethodConnect {
			r.connects++
			r.mu.Unlock()
			http.Error(w, "this proxy does not tunnel HTTPS", http.StatusForbidden)
			return
		}
		r.requests = append(r.requests, req.Method+" "+req.Host+req.URL.Path)
		r.mu.Unlock()
		reg.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.Addr = srv.Listener.Addr().String()
	return r
}

// Requests returns the registry requests served since the start or the last Reset ("METHOD
// HOST/PATH"; CONNECT requests are not among them).
func (r *CountingRegistry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.requests...)
}

// Connects returns how many CONNECT requests (HTTPS through the proxy) were refused since the
// start or the last Reset.
func (r *CountingRegistry) Connects() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.connects
}

// Reset forgets the requests counted so far.
func (r *CountingRegistry) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests, r.connects = nil, 0
}

// Proxy sends every request to the registry, as its HTTP proxy (for transport.Registries.Proxy).
func (r *CountingRegistry) Proxy(*url.URL) (*url.URL, error) {
	return &url.URL{Scheme: "http", Host: r.Addr}, nil
}

// RegistriesConf writes a registries.conf with an empty drop-in directory beside it (so that the
// host's drop-ins do not apply) and returns its path, for transport.Registries.ConfPath or
// --registries-conf.
func RegistriesConf(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path+".d", 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
