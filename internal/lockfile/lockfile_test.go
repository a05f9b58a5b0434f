package lockfile

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lock")
	unlock, err := Lock(t.Context(), path, Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	// Taken: a done context fails at once, with both errors.
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Lock(done, path, Shared); !errors.Is(err, ErrLocked) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Lock of a taken lock with a done context: %v", err)
	}
	// A waiter gets it once the holder lets go.
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		u, err := Lock(ctx, path, Exclusive)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(120 * time.Millisecond)
	unlock()
	if err := <-got; err != nil {
		t.Fatalf("waiting for the lock: %v", err)
	}
	// Shared locks coexist.
	u1, err := Lock(t.Context(), path, Shared)
	if err != nil {
		t.Fatal(err)
	}
	defer u1()
	u2, err := Lock(done, path, Shared)
	if err != nil {
		t.Fatalf("a second shared lock: %v", err)
	}
	u2()
}
