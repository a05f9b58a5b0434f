package fleetlock

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/bootc-go/bootc/internal/testutil"
)

func TestEtcdBackend(t *testing.T) {
	testBackend(t, func(t *testing.T, cfg Config) Backend {
		return newEtcdBackend(t, testutil.Etcd(t), cfg)
	})
}

func newEtcdBackend(t *testing.T, etcd *testutil.EtcdServer, cfg Config) *EtcdBackend {
	t.Helper()
	b, err := NewEtcdBackend(context.Background(), []string{etcd.Endpoint()}, cfg)
	must(t, err)
	t.Cleanup(func() { b.Close() })
	return b
}

// serve starts a server of a new EtcdBackend (a replica with an etcd client of its own) and
// returns a client of it and a function that stops both.
func serve(t *testing.T, etcd *testutil.EtcdServer, cfg Config) (*Client, *EtcdBackend, func()) {
	t.Helper()
	b := newEtcdBackend(t, etcd, cfg)
	srv := httptest.NewServer(NewHandler(b, WithBackendTimeout(2*time.Second)))
	t.Cleanup(srv.Close)
	c, err := NewClient(srv.URL, nil)
	must(t, err)
	return c, b, func() { srv.Close(); b.Close() }
}

// etcdClient is a plain etcd client, to look at the keys as airlock would.
func etcdClient(t *testing.T, etcd *testutil.EtcdServer) *clientv3.Client {
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.Endpoint()}, Logger: zap.NewNop()})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func wantHolders(t *testing.T, b Backend, group string, want ...string) {
	t.Helper()
	s, err := b.Holders(context.Background(), group)
	must(t, err)
	if !slices.Equal(s.Holders, want) {
		t.Fatalf("holders of %s: %q, want %q", group, s.Holders, want)
	}
}

// A roll survives a restart of etcd (the server reconnects) and of the server (the holders are
// in etcd, not in the server).
func TestEtcdRestart(t *testing.T) {
	ctx := context.Background()
	etcd := testutil.Etcd(t)
	cfg := Config{DefaultSlots: 2}
	c1, _, stop1 := serve(t, etcd, cfg)
	must(t, c1.PreReboot(ctx, "a", DefaultGroup))

	etcd.Stop()
	var e *Error
	if err := c1.PreReboot(ctx, "b", DefaultGroup); !errors.As(err, &e) || e.Kind != KindBackend || e.Status != 500 {
		t.Fatalf("a lock while etcd was down: %v, want a backend error", err)
	}
	etcd.Start()
	deadline := time.Now().Add(30 * time.Second)
	for err := c1.PreReboot(ctx, "b", DefaultGroup); err != nil; err = c1.PreReboot(ctx, "b", DefaultGroup) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not reconnect to the restarted etcd: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop1()

	c2, b2, _ := serve(t, etcd, cfg)
	wantHolders(t, b2, DefaultGroup, "a", "b")
	if err := c2.PreReboot(ctx, "c", DefaultGroup); !IsFull(err) {
		t.Fatalf("third host after the restarts: %v, want full", err)
	}
	must(t, c2.PreReboot(ctx, "a", DefaultGroup)) // still a holder: recursive
	must(t, c2.SteadyState(ctx, "a", DefaultGroup))
	must(t, c2.PreReboot(ctx, "c", DefaultGroup))
	wantHolders(t, b2, DefaultGroup, "b", "c")
}

// Two replicas, each with its own etcd client, and 20 hosts racing for 2 slots: exactly 2
// grants, and no version of the key ever had more than 2 holders.
func TestEtcdReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	etcd := testutil.Etcd(t)
	cfg := Config{DefaultSlots: 2}
	clients := make([]*Client, 2)
	clients[0], _, _ = serve(t, etcd, cfg)
	clients[1], _, _ = serve(t, etcd, cfg)
	watch := etcdClient(t, etcd).Watch(ctx, SemaphoreKey(DefaultGroup))

	var mu sync.Mutex
	var granted, full []string
	var wg sync.WaitGroup
	for i := range 20 {
		id := string(rune('a' + i))
		wg.Go(func() {
			err := clients[i%2].PreReboot(ctx, id, DefaultGroup)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				granted = append(granted, id)
			case IsFull(err):
				full = append(full, id)
			default:
				t.Errorf("host %s: %v", id, err)
			}
		})
	}
	wg.Wait()
	if len(granted) != 2 || len(full) != 18 {
		t.Fatalf("granted %q, refused as full %d; want 2 and 18", granted, len(full))
	}
	// The key was written exactly twice (created with one holder, then the second added), and
	// every version of it had at most 2 holders.
	var versions []Semaphore
	for len(versions) < 2 {
		select {
		case resp := <-watch:
			for _, ev := range resp.Events {
				var s Semaphore
				must(t, json.Unmarshal(ev.Kv.Value, &s))
				versions = append(versions, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the watch saw %d writes of the key, want 2", len(versions))
		}
	}
	for _, s := range versions {
		if len(s.Holders) > 2 || s.TotalSlots != 2 {
			t.Errorf("a version of the key has %d holders of %d slots: %q", len(s.Holders), s.TotalSlots, s.Holders)
		}
	}
	slices.Sort(granted)
	if last := versions[len(versions)-1]; !slices.Equal(last.Holders, granted) {
		t.Errorf("the key holds %q, the granted hosts are %q", last.Holders, granted)
	}
	select {
	case resp := <-watch:
		t.Errorf("a further write of the key: %+v", resp.Events)
	case <-time.After(200 * time.Millisecond):
	}
}

// The stored value is airlock's, byte for byte, and a semaphore airlock wrote is used as it is:
// its stored slot count wins over the configuration's.
func TestEtcdAirlockInterop(t *testing.T) {
	ctx := context.Background()
	etcd := testutil.Etcd(t)
	c, b, _ := serve(t, etcd, Config{DefaultSlots: 2, Groups: map[string]int{"workers": 1}})
	kv := etcdClient(t, etcd)
	must(t, c.PreReboot(ctx, "b", DefaultGroup))
	must(t, c.PreReboot(ctx, "a", DefaultGroup))
	resp, err := kv.Get(ctx, "com.coreos.airlock/groups/default/v1/semaphore")
	must(t, err)
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != `{"total_slots":2,"holders":["a","b"]}` {
		t.Fatalf("stored %q", resp.Kvs)
	}
	must(t, c.SteadyState(ctx, "a", DefaultGroup))
	must(t, c.SteadyState(ctx, "b", DefaultGroup))
	resp, err = kv.Get(ctx, SemaphoreKey(DefaultGroup))
	must(t, err)
	if string(resp.Kvs[0].Value) != `{"total_slots":2,"holders":[]}` {
		t.Fatalf("stored after the releases %q", resp.Kvs[0].Value)
	}

	// A workers semaphore airlock created with 3 slots (configured here: 1).
	_, err = kv.Put(ctx, "com.coreos.airlock/groups/workers/v1/semaphore", `{"total_slots":3,"holders":["x"]}`)
	must(t, err)
	must(t, c.PreReboot(ctx, "y", "workers"))
	must(t, c.PreReboot(ctx, "z", "workers"))
	if err := c.PreReboot(ctx, "w", "workers"); !IsFull(err) {
		t.Fatalf("fourth host of 3 stored slots: %v", err)
	}
	all, err := b.Semaphores(ctx)
	must(t, err)
	if len(all) != 2 || all["workers"].TotalSlots != 3 || !slices.Equal(all["workers"].Holders, []string{"x", "y", "z"}) || len(all[DefaultGroup].Holders) != 0 {
		t.Fatalf("Semaphores: %+v", all)
	}
}
