package sysroot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// lockPoll is how often Lock retries while another process holds the lock.
const lockPoll = 100 * time.Millisecond

// Lock takes the sysroot's exclusive lock (ostree/lock, flock, as libostree), waiting until ctx
// is done. Every command that writes holds it from start to end. The returned function
// releases it.
//
// When ctx ends first, the error wraps both ErrLocked and ctx's error; a caller that must not
// wait passes a context that is already done, and gets ErrLocked at once if the lock is taken.
func (s *Sysroot) Lock(ctx context.Context) (unlock func(), err error) {
	path := s.abs("ostree/lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening sysroot lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() {
				_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("locking %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("%w (%s): %w; wait for the other bootc or ostree command to finish", ErrLocked, path, ctx.Err())
		case <-time.After(lockPoll):
		}
	}
}
