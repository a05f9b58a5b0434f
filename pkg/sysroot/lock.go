package sysroot

import (
	"context"
	"errors"
	"fmt"

	"github.com/bootc-go/bootc/internal/lockfile"
)

// Lock takes the sysroot's exclusive lock (ostree/lock, flock, as libostree), waiting until ctx
// is done. Every command that writes holds it from start to end. The returned function
// releases it.
//
// When ctx ends first, the error wraps both ErrLocked and ctx's error; a caller that must not
// wait passes a context that is already done, and gets ErrLocked at once if the lock is taken.
func (s *Sysroot) Lock(ctx context.Context) (unlock func(), err error) {
	path := s.abs("ostree/lock")
	unlock, err = lockfile.Lock(ctx, path, lockfile.Exclusive)
	if errors.Is(err, lockfile.ErrLocked) {
		return nil, fmt.Errorf("%w (%s): %w; wait for the other bootc or ostree command to finish", ErrLocked, path, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("sysroot lock: %w", err)
	}
	return unlock, nil
}
