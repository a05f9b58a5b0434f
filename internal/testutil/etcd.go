package testutil

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// EtcdServer is a real etcd (Debian's etcd-server) serving on 127.0.0.1, with its data in a
// temporary directory. Stop and Start restart it on the same data and ports.
type EtcdServer struct {
	t          testing.TB
	dir        string
	client     string // http://127.0.0.1:PORT
	peer       string
	mu         sync.Mutex
	cmd        *exec.Cmd
	exited     chan struct{}
	stopCancel context.CancelFunc
}

// Etcd starts etcd and waits until it serves; it is killed when the test ends.
func Etcd(t testing.TB) *EtcdServer {
	t.Helper()
	RequireTool(t, "etcd")
	e := &EtcdServer{t: t, dir: t.TempDir(), client: "http://" + freeAddr(t), peer: "http://" + freeAddr(t)}
	t.Cleanup(e.Stop)
	e.Start()
	return e
}

// freeAddr returns a 127.0.0.1:PORT that was free a moment ago.
func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Endpoint is the client URL, http://127.0.0.1:PORT.
func (e *EtcdServer) Endpoint() string { return e.client }

// Start starts etcd (again, after Stop) and waits up to 20 s until it reports itself healthy.
func (e *EtcdServer) Start() {
	e.t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd != nil {
		e.t.Fatal("testutil: etcd is running already")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	cmd := exec.CommandContext(ctx, "etcd", "--name", "test", "--data-dir", filepath.Join(e.dir, "data"),
		"--listen-client-urls", e.client, "--advertise-client-urls", e.client,
		"--listen-peer-urls", e.peer, "--initial-advertise-peer-urls", e.peer,
		"--initial-cluster", "test="+e.peer, "--initial-cluster-state", "new")
	logf, err := os.OpenFile(filepath.Join(e.dir, "etcd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		cancel()
		logf.Close()
		e.t.Fatalf("testutil: starting etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	e.cmd, e.exited, e.stopCancel = cmd, exited, cancel
	if err := waitHealthy(e.client+"/health", exited); err != nil {
		log, _ := os.ReadFile(filepath.Join(e.dir, "etcd.log"))
		e.t.Fatalf("testutil: etcd on %s: %v\n%s", e.client, err, log[max(0, len(log)-3000):])
	}
}

// waitHealthy polls url until it answers {"health":"true"}.
func waitHealthy(url string, exited <-chan struct{}) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"true"`) {
				return nil
			}
			err = fmt.Errorf("%s: %s", resp.Status, body)
		}
		select {
		case <-exited:
			return fmt.Errorf("etcd exited")
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not healthy after 20 s: %v", err)
		}
	}
}

// Stop stops etcd (SIGTERM, then SIGKILL after 10 s) and waits for it to exit; a no-op when it
// is not running.
func (e *EtcdServer) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.stopCancel() // kills it
		<-e.exited
	}
	e.stopCancel()
	e.cmd = nil
}
