package grub

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/bootc-go/bootc/internal/atomicfile"
)

// configLink is the target of <boot>/grub/grub.cfg: the menu of the current boot version.
const configLink = "../loader/grub.cfg"

// Setup prepares the boot directory bootDir (a sysroot's /boot) for GRUB: it makes grub/, the
// symlink grub/grub.cfg -> ../loader/grub.cfg and an empty environment block grub/grubenv,
// each only if missing, in that order, each made durable (directory synced) before the next.
// It is idempotent: a second call changes nothing, and an existing grubenv keeps its variables.
// The menu the link points to appears with the next write of the sysroot's deployments.
//
// A grub/grub.cfg that is anything else than that link, or a grubenv that is not a regular
// file of EnvSize bytes (GRUB's save_env could not rewrite it), is an error: Setup does not
// take over a boot directory another GRUB installation manages.
func Setup(bootDir string) error {
	dir := filepath.Join(bootDir, "grub")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("setting up GRUB: %w", err)
	}
	if err := atomicfile.SyncDir(bootDir); err != nil {
		return err
	}
	cfg := filepath.Join(dir, "grub.cfg")
	target, err := os.Readlink(cfg)
	switch {
	case err == nil && target == configLink:
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Symlink(configLink, cfg); err != nil {
			return fmt.Errorf("setting up GRUB: %w", err)
		}
		if err := atomicfile.SyncDir(dir); err != nil {
			return err
		}
	case err == nil:
		return fmt.Errorf("setting up GRUB: %s points to %s, not %s; remove it to let bootc manage the menu", cfg, target, configLink)
	default:
		return fmt.Errorf("setting up GRUB: %s is not a symlink to %s (%w); remove it to let bootc manage the menu", cfg, configLink, err)
	}
	env := filepath.Join(bootDir, EnvFile)
	st, err := os.Lstat(env)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return WriteEnv(env, NewEnv())
	case err != nil:
		return fmt.Errorf("setting up GRUB: %w", err)
	case !st.Mode().IsRegular() || st.Size() != EnvSize:
		return fmt.Errorf("setting up GRUB: %s is not a regular file of %d bytes, which GRUB's save_env needs; remove it", env, EnvSize)
	}
	if _, err := ReadEnv(env); err != nil {
		return fmt.Errorf("setting up GRUB: %w", err)
	}
	return nil
}

// Enabled reports whether bootDir (a sysroot's /boot) boots with the menu this package writes:
// grub/grub.cfg is a symlink to ../loader/grub.cfg (libostree, too, detects GRUB by
// boot/grub/grub.cfg).
func Enabled(bootDir string) bool {
	target, err := os.Readlink(filepath.Join(bootDir, "grub", "grub.cfg"))
	return err == nil && target == configLink
}
