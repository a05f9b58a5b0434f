package ostree

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/bootc-go/bootc/internal/atomicfile"
	"github.com/bootc-go/bootc/internal/keyfile"
)

// Config returns the repository's config keyfile as group -> key -> value. Values are read as
// GKeyFile reads them (see internal/keyfile): unescaped (\s, \n, \t, \r, \\), the last of a key
// set twice.
func (r *Repo) Config() (map[string]map[string]string, error) {
	kf, err := r.readConfig()
	if err != nil {
		return nil, err
	}
	return kf.Map(), nil
}

func (r *Repo) readConfig() (*keyfile.File, error) {
	path := filepath.Join(r.path, "config")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading repository config: %w", err)
	}
	kf, err := keyfile.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return kf, nil
}

// SetConfig sets one key of the repository's config, keeping the other lines (and comments)
// as they were; the file is replaced atomically.
//
// Every line setting the key in the group is replaced; a missing key is added after the
// group's last key, a missing group at the end of the file. The value is escaped as GKeyFile
// does, so `ostree config get` reads it back unchanged. The open Repo keeps the settings it was
// opened with (mode, fsync, collection ID): reopen it to apply new ones. Concurrent SetConfig
// calls on the same repository are not serialised: the last write wins.
func (r *Repo) SetConfig(group, key, value string) error {
	if err := keyfile.ValidateGroup(group); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := keyfile.ValidateKey(key); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	kf, err := r.readConfig()
	if err != nil {
		return fmt.Errorf("%w; not editing it", err)
	}
	path := filepath.Join(r.path, "config")
	perm := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		perm = st.Mode().Perm()
	}
	kf.Set(group, key, value)
	if err := atomicfile.WriteFile(path, kf.Bytes(), perm, syncOption(r.fsync)...); err != nil {
		return fmt.Errorf("writing repository config: %w", err)
	}
	return nil
}
