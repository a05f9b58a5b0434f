package ostree

import (
	"context"
	"errors"
)

// CONTRACT STUB (issue 4): the helper implementing this file replaces the bodies; the
// signatures are shared with pkg/sysroot and pkg/deploy and must not change without telling them.

// PruneOptions configures Prune.
type PruneOptions struct {
	// DryRun counts what would be deleted and deletes nothing.
	DryRun bool
}

// PruneStats says what Prune found and did.
type PruneStats struct {
	// Objects is the number of loose objects before pruning; Deleted how many were (or, in a
	// dry run, would be) removed; BytesFreed their size on disk.
	Objects, Deleted int
	BytesFreed       int64
	// StagingRemoved counts abandoned transaction staging directories removed (left by a
	// killed process).
	StagingRemoved int
}

// Prune deletes every loose object no ref reaches, as `ostree prune --refs-only --depth=0`:
// from each ref's commit, its commitmeta, root dirtree and dirmeta and everything below them
// are kept; parent commits are not followed. It takes the repository's lock exclusively, so it
// waits for running transactions and none start while it runs; abandoned staging directories
// under tmp/ are removed too.
func (r *Repo) Prune(ctx context.Context, opts PruneOptions) (*PruneStats, error) {
	return nil, errors.New("Prune: not implemented")
}

// CommitTree writes a commit whose root is an existing dirtree and dirmeta (both must be in the
// repository), with the usual commit options (branch, metadata, timestamp, parent, bindings).
// It is how an image whose tree is unchanged gets a commit of its own carrying new metadata.
func (r *Repo) CommitTree(ctx context.Context, tree, meta Checksum, opts ...CommitOption) (Checksum, error) {
	return Checksum{}, errors.New("CommitTree: not implemented")
}

// Config returns the repository's config keyfile as group -> key -> value.
func (r *Repo) Config() (map[string]map[string]string, error) {
	return nil, errors.New("Config: not implemented")
}

// SetConfig sets one key of the repository's config, keeping the other lines (and comments)
// as they were; the file is replaced atomically.
func (r *Repo) SetConfig(group, key, value string) error {
	return errors.New("SetConfig: not implemented")
}
