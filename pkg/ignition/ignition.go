// Package ignition applies the part of an Ignition config (spec 3.0 to 3.5, as Fedora CoreOS
// provisions machines) that makes sense on a bootc host: files, directories and links under
// /etc, /var and /home, users and groups, and systemd units. It is used at install time (the
// new deployment's /etc and its stateroot's /var) and on the first boot (the running system).
// Everything else (disks, RAID, filesystems, LUKS, paths elsewhere) is refused with the field
// named, before anything is written.
package ignition

import (
	"context"
	"errors"
)

// ErrUnsupported is wrapped by the errors of Parse for a config that asks for something this
// package does not do (the error names the field).
var ErrUnsupported = errors.New("unsupported Ignition config")

// ErrInvalid is wrapped by the errors of Parse for a config that is not a valid Ignition config
// of spec 3.0 to 3.5 (an older one included).
var ErrInvalid = errors.New("invalid Ignition config")

// Config is a parsed config, translated to spec 3.5, that passed the subset's checks.
type Config struct {
	raw []byte
}

// Parse reads an Ignition config and checks it against what Apply does.
func Parse(untrusted []byte) (*Config, error) {
	return nil, errors.New("ignition: not implemented yet")
}

// Target is where Apply writes.
type Target struct {
	// Root is the root of the tree whose /etc is written: a deployment's directory, or "/".
	Root string
	// Var is the directory that is /var on that tree when it runs: the stateroot's var
	// directory for a deployment, "/var" on the running system.
	Var string
}

// Report says what Apply did.
type Report struct {
	// Written lists the paths (as the host sees them, e.g. /etc/motd) created or changed.
	Written []string
	// Users and Groups created or changed.
	Users, Groups []string
	// Enabled and Masked units; Enabled is what a first boot starts.
	Enabled, Masked []string
}

// Apply writes cfg into t. Every path is checked before the first write.
func Apply(ctx context.Context, cfg *Config, t Target) (*Report, error) {
	return nil, errors.New("ignition: not implemented yet")
}
