package ostree

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/bootc-go/bootc/internal/lockfile"
)

// lock takes the repository lock (<repo>/.lock, flock): shared by transactions, exclusive for
// Prune, waiting while an incompatible holder has it until ctx is done. The returned function
// releases it.
func (r *Repo) lock(ctx context.Context, mode lockfile.Mode) (func(), error) {
	unlock, err := lockfile.Lock(ctx, filepath.Join(r.path, ".lock"), mode)
	if errors.Is(err, lockfile.ErrLocked) {
		what := "a transaction is running"
		if mode == lockfile.Shared {
			what = "a prune is running"
		}
		return nil, fmt.Errorf("waiting for the repository lock (%s): %w", what, ctx.Err())
	}
	if err != nil {
		return nil, fmt.Errorf("locking repository: %w", err)
	}
	return unlock, nil
}
