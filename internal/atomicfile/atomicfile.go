// Package atomicfile replaces files crash-safely: the one home of "write a temporary file in the
// same directory, fsync, rename".
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// Option configures WriteFile.
type Option func(*config)

type config struct {
	noSync   bool
	syncDir  bool
	owner    bool
	uid, gid int
}

// WithOwner gives the file to uid and gid (before its mode is set and before the rename, so
// that no other owner ever holds the new file).
func WithOwner(uid, gid int) Option {
	return func(c *config) { c.owner, c.uid, c.gid = true, uid, gid }
}

// WithoutSync skips the fsync of the file (and of the directory): the rename is still atomic,
// but after a crash the file may be empty. For callers that sync a whole filesystem later
// (libostree's core.fsync=false).
func WithoutSync() Option { return func(c *config) { c.noSync = true } }

// WithDirSync fsyncs the directory after the rename, so that the new name is durable when
// WriteFile returns.
func WithDirSync() Option { return func(c *config) { c.syncDir = true } }

// WriteFile replaces path with data, atomically: readers see the old file or the new one, never
// a part. Order of operations: data is written to a temporary file ".tmp-NAME-*" in path's
// directory, its mode set to perm, the file fsynced (unless WithoutSync) and closed, then renamed
// over path (and the directory fsynced, WithDirSync). On error the temporary file is removed and
// path is untouched.
func WriteFile(path string, data []byte, perm os.FileMode, opts ...Option) error {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if cfg.owner {
		if err := f.Chown(cfg.uid, cfg.gid); err != nil {
			return err
		}
	}
	if err := f.Chmod(perm); err != nil {
		return err
	}
	if !cfg.noSync {
		if err := f.Sync(); err != nil {
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	if cfg.syncDir && !cfg.noSync {
		return SyncDir(filepath.Dir(path))
	}
	return nil
}

// SyncDir fsyncs a directory, making renames and creations in it durable.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
