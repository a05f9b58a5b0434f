package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/fleetlock"
)

// lockedBuffer is a bytes.Buffer that a running command and the test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServe runs 'bootc fleetlock serve ARGS --listen 127.0.0.1:PORT' in-process until the
// test calls stop, which returns the exit code and stderr; it returns once the server answers.
func startServe(t *testing.T, args ...string) (url string, stop func() (int, string)) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var stderr lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, append([]string{"bootc", "fleetlock", "serve", "--listen", addr}, args...), &stderr, &stderr)
	}()
	stopped := false
	stop = func() (int, string) {
		if !stopped {
			stopped = true
			cancel()
		}
		return <-done, stderr.String()
	}
	t.Cleanup(func() { cancel() })
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return "http://" + addr, stop
		}
		if time.Now().After(deadline) {
			code, errs := stop()
			t.Fatalf("fleetlock serve did not listen on %s: exit %d\n%s", addr, code, errs)
		}
	}
}

func TestFleetlockServeLockUnlock(t *testing.T) {
	url, stop := startServe(t, "--memory", "--slots", "2", "--group", "workers=1")
	flags := func(id, group string) []string { return []string{"--url", url, "--id", id, "--group", group} }
	if out := mustRun(t, append([]string{"fleetlock", "lock"}, flags("a", "workers")...)...); out != "a holds a slot of group workers\n" {
		t.Errorf("lock printed %q", out)
	}
	mustRun(t, append([]string{"fleetlock", "lock"}, flags("a", "workers")...)...) // recursive
	_, errs, code := run(t, append([]string{"fleetlock", "lock"}, flags("b", "workers")...)...)
	if code != 1 || !strings.Contains(errs, fleetlock.KindFull) || !strings.Contains(errs, "try again later") {
		t.Fatalf("lock of a full group: exit %d\n%s", code, errs)
	}
	_, errs, code = run(t, append([]string{"fleetlock", "lock"}, flags("b", "typo")...)...)
	if code != 1 || !strings.Contains(errs, fleetlock.KindUnknownGroup) {
		t.Fatalf("lock of an unknown group: exit %d\n%s", code, errs)
	}
	mustRun(t, append([]string{"fleetlock", "unlock"}, flags("nobody", "workers")...)...)
	if out := mustRun(t, append([]string{"fleetlock", "unlock"}, flags("a", "workers")...)...); out != "released: a holds no slot of group workers now\n" {
		t.Errorf("unlock printed %q", out)
	}
	mustRun(t, append([]string{"fleetlock", "lock"}, flags("b", "workers")...)...)
	mustRun(t, append([]string{"fleetlock", "lock"}, flags("c", "default")...)...)
	code, log := stop()
	if code != 0 || !strings.Contains(log, "fleetlock: granted") || !strings.Contains(log, "id=b") || !strings.Contains(log, "fleetlock: released") {
		t.Fatalf("serve: exit %d, log:\n%s", code, log)
	}
}

func TestFleetlockUsageErrors(t *testing.T) {
	for name, args := range map[string][]string{
		"no backend":   {"fleetlock", "serve"},
		"two backends": {"fleetlock", "serve", "--memory", "--etcd-endpoints", "http://127.0.0.1:1"},
		"bad slots":    {"fleetlock", "serve", "--memory", "--group", "workers=many"},
		"no url":       {"fleetlock", "lock", "--id", "a"},
		"no etcd":      {"fleetlock", "status"},
	} {
		if _, errs, code := run(t, args...); code != 2 {
			t.Errorf("%s: exit %d, want 2 (usage)\n%s", name, code, errs)
		}
	}
}

// serve with etcd, and status reading the semaphores from etcd.
func TestFleetlockStatus(t *testing.T) {
	etcd := testutil.Etcd(t)
	url, _ := startServe(t, "--etcd-endpoints", etcd.Endpoint(), "--slots", "2", "--group", "workers=1")
	mustRun(t, "fleetlock", "lock", "--url", url, "--id", "b")
	mustRun(t, "fleetlock", "lock", "--url", url, "--id", "a")
	mustRun(t, "fleetlock", "lock", "--url", url, "--id", "w", "--group", "workers")
	out := mustRun(t, "fleetlock", "status", "--etcd-endpoints", etcd.Endpoint())
	if want := "GROUP    HELD  HOLDERS\ndefault  2/2   a,b\nworkers  1/1   w\n"; out != want {
		t.Errorf("status printed\n%s\nwant\n%s", out, want)
	}
	var got map[string]fleetlock.Semaphore
	must(t, json.Unmarshal([]byte(mustRun(t, "fleetlock", "status", "--etcd-endpoints", etcd.Endpoint(), "--group", "workers", "--format", "json")), &got))
	if len(got) != 1 || got["workers"].TotalSlots != 1 || strings.Join(got["workers"].Holders, ",") != "w" {
		t.Errorf("status --group workers --format json: %+v", got)
	}
	if _, errs, code := run(t, "fleetlock", "status", "--etcd-endpoints", etcd.Endpoint(), "--group", "none"); code != 1 || !strings.Contains(errs, "no semaphore") {
		t.Errorf("status of a group without semaphore: exit %d\n%s", code, errs)
	}
}
