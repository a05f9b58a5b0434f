package fleetlock

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The etcd keys, as airlock names them: KeyPrefix + group + "/v1/semaphore".
const (
	KeyPrefix    = "com.coreos.airlock/groups/"
	keySemaphore = "/v1/semaphore"
)

// SemaphoreKey is the etcd key of group's semaphore (airlock's key, so that airlock and this
// server can share one etcd).
func SemaphoreKey(group string) string {
	return KeyPrefix + url.QueryEscape(group) + keySemaphore
}

// ErrContended is the failure of a change that lost the race against other writers of the same
// semaphore more times than the backend retries.
var ErrContended = errors.New("too many concurrent changes of the semaphore")

// EtcdBackend keeps the semaphores in etcd, where any number of servers (and airlock) can share
// them: every change reads the key and writes it back in a transaction that succeeds only if the
// key has not changed since (its ModRevision, or its absence for a new semaphore), and is
// retried on a conflict.
type EtcdBackend struct {
	cfg     Config
	client  *clientv3.Client
	retries int
}

// EtcdOption is an option of NewEtcdBackend.
type EtcdOption func(*etcdOptions)

type etcdOptions struct {
	tls     *tls.Config
	retries int
	timeout time.Duration
}

// WithEtcdTLS connects to etcd over TLS with conf (default: plain, for http:// endpoints).
func WithEtcdTLS(conf *tls.Config) EtcdOption { return func(o *etcdOptions) { o.tls = conf } }

// WithRetries sets how many times a change that conflicts with another writer is tried in all
// (default 32) before it fails with ErrContended.
func WithRetries(n int) EtcdOption { return func(o *etcdOptions) { o.retries = n } }

// WithConnectTimeout bounds NewEtcdBackend's first read, which checks that etcd answers
// (default 10 s).
func WithConnectTimeout(d time.Duration) EtcdOption { return func(o *etcdOptions) { o.timeout = d } }

// NewEtcdBackend connects to the etcd cluster at endpoints (http://HOST:PORT URLs) and checks that
// it answers. Close releases the connection.
func NewEtcdBackend(ctx context.Context, endpoints []string, cfg Config, opts ...EtcdOption) (*EtcdBackend, error) {
	o := etcdOptions{retries: 32, timeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if len(endpoints) == 0 || o.retries < 1 || o.timeout <= 0 {
		return nil, fmt.Errorf("fleetlock: etcd: need at least one endpoint, one try and a positive timeout")
	}
	client, err := clientv3.New(clientv3.Config{Endpoints: endpoints, TLS: o.tls, Logger: zap.NewNop(), DialTimeout: o.timeout})
	if err != nil {
		return nil, fmt.Errorf("fleetlock: etcd %s: %w", strings.Join(endpoints, ","), err)
	}
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if _, err := client.Get(cctx, KeyPrefix, clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		client.Close()
		return nil, fmt.Errorf("fleetlock: etcd %s does not answer: %w", strings.Join(endpoints, ","), err)
	}
	return &EtcdBackend{cfg: cfg, client: client, retries: o.retries}, nil
}

// Close closes the connection to etcd.
func (e *EtcdBackend) Close() error { return e.client.Close() }

// Lock implements Backend.
func (e *EtcdBackend) Lock(ctx context.Context, group, id string) error {
	return e.change(ctx, group, func(s *Semaphore) (bool, error) { return s.lock(id) })
}

// Unlock implements Backend.
func (e *EtcdBackend) Unlock(ctx context.Context, group, id string) error {
	return e.change(ctx, group, func(s *Semaphore) (bool, error) { return s.unlock(id), nil })
}

// Holders implements Backend. It creates no key.
func (e *EtcdBackend) Holders(ctx context.Context, group string) (Semaphore, error) {
	n, err := e.cfg.slots(group)
	if err != nil {
		return Semaphore{}, err
	}
	s, _, err := e.read(ctx, group, n)
	return s, err
}

// Semaphores returns every semaphore stored in etcd by group, whether the configuration names
// the group or not (what 'bootc fleetlock status' shows).
func (e *EtcdBackend) Semaphores(ctx context.Context) (map[string]Semaphore, error) {
	resp, err := e.client.Get(ctx, KeyPrefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("fleetlock: etcd: reading %s*: %w", KeyPrefix, err)
	}
	out := map[string]Semaphore{}
	for _, kv := range resp.Kvs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(string(kv.Key), KeyPrefix), keySemaphore)
		group, err := url.QueryUnescape(name)
		if !ok || err != nil {
			continue // another version's key, or none of ours
		}
		if out[group], err = parseSemaphore(kv.Key, kv.Value); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// change applies f to group's semaphore and writes the result if f changed it, retrying when
// another writer changed the key in between.
func (e *EtcdBackend) change(ctx context.Context, group string, f func(*Semaphore) (bool, error)) error {
	n, err := e.cfg.slots(group)
	if err != nil {
		return err
	}
	key := SemaphoreKey(group)
	for try := 1; ; try++ {
		s, unchanged, err := e.read(ctx, group, n)
		if err != nil {
			return err
		}
		if changed, err := f(&s); err != nil || !changed {
			return err
		}
		data, err := json.Marshal(s)
		if err != nil {
			return err
		}
		resp, err := e.client.Txn(ctx).If(unchanged).Then(clientv3.OpPut(key, string(data))).Commit()
		if err != nil {
			return fmt.Errorf("fleetlock: etcd: writing %s: %w", key, err)
		} else if resp.Succeeded {
			return nil
		} else if try >= e.retries {
			return fmt.Errorf("fleetlock: %s: %w (%d tries)", key, ErrContended, try)
		}
		// Another writer won: wait a little (more with each try) before reading again.
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleetlock: %s: %w", key, ctx.Err())
		case <-time.After(time.Duration(rand.Int64N(int64(try) * int64(2*time.Millisecond)))):
		}
	}
}

// read returns group's semaphore (a new one of n slots when the key is absent) and the
// comparison that holds as long as the key is unchanged.
func (e *EtcdBackend) read(ctx context.Context, group string, n int) (Semaphore, clientv3.Cmp, error) {
	key := SemaphoreKey(group)
	resp, err := e.client.Get(ctx, key)
	if err != nil {
		return Semaphore{}, clientv3.Cmp{}, fmt.Errorf("fleetlock: etcd: reading %s: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return newSemaphore(n), clientv3.Compare(clientv3.CreateRevision(key), "=", 0), nil
	}
	kv := resp.Kvs[0]
	s, err := parseSemaphore(kv.Key, kv.Value)
	return s, clientv3.Compare(clientv3.ModRevision(key), "=", kv.ModRevision), err
}

// parseSemaphore reads a stored semaphore (which airlock may have written).
func parseSemaphore(key, untrusted []byte) (Semaphore, error) {
	var s Semaphore
	if err := json.Unmarshal(untrusted, &s); err != nil || s.TotalSlots < 0 {
		return Semaphore{}, fmt.Errorf("fleetlock: etcd: %s holds no semaphore (%q): fix or delete the key", key, untrusted)
	}
	if s.Holders == nil {
		s.Holders = []string{}
	}
	slices.Sort(s.Holders) // airlock keeps them sorted; lock and unlock search them
	return s, nil
}
