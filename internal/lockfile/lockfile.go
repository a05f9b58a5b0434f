// Package lockfile takes flock(2) locks on files, waiting for them as long as a context allows:
// the one home of "lock, or poll until the holder lets go or the caller gives up".
package lockfile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrLocked: the context ended while another holder kept the lock. The error also wraps the
// context's error.
var ErrLocked = errors.New("locked by another process")

// Mode is how a lock is held.
type Mode int

// The lock modes.
const (
	Exclusive Mode = iota // one holder, no shared ones
	Shared                // many shared holders, no exclusive one
)

// pollInterval is how often a taken lock is tried again. flock has no timeout, so waiting is
// polling; 50ms keeps a waiter responsive without spinning.
const pollInterval = 50 * time.Millisecond

// Lock opens (creating with mode 0600 if missing) the file at path and locks it, retrying while
// another process holds an incompatible lock, until ctx is done. A ctx that is already done
// makes it try once. The returned function unlocks and closes the file.
//
// When ctx ends first, the error wraps ErrLocked and ctx.Err().
func Lock(ctx context.Context, path string, mode Mode) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	how := unix.LOCK_EX
	if mode == Shared {
		how = unix.LOCK_SH
	}
	var t *time.Timer
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			if t != nil {
				t.Stop()
			}
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		if t == nil {
			t = time.NewTimer(pollInterval)
		} else {
			t.Reset(pollInterval)
		}
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, fmt.Errorf("%s: %w: %w", path, ErrLocked, ctx.Err())
		case <-t.C:
		}
	}
}
