// Package ignition applies the part of an Ignition config (spec 3.0 to 3.5, as Fedora CoreOS
// provisions machines) that makes sense on a bootc host: files, directories and links under
// /etc, /var and /home, users and groups, and systemd units. It is used at install time (the
// new deployment's /etc and its stateroot's /var) and on the first boot (the running system).
// Everything else (disks, RAID, filesystems, LUKS, kernel arguments, remote sources, paths
// elsewhere) is refused by Parse, every problem named with its field, before anything is
// written.
//
// # Where things go
//
// Paths are those of the running host. /etc/... is written under Target.Root, /var/... under
// Target.Var, and /home/... under Target.Var's home (as on ostree systems, where /home is a
// link to var/home). Symbolic links met on the way are followed inside the tree only (an
// absolute link restarts at the tree's root, so /root -> var/roothome leads to Target.Var's
// roothome); a path that then ends outside /etc and /var is refused.
//
// # Order of operations
//
// Apply first plans everything (resolves every path, checks every owner and every existing
// file that overwrite=false protects) and writes nothing if a check fails. It then writes the
// groups and users (/etc/group, /etc/gshadow if present, /etc/passwd, /etc/shadow), their
// homes and SSH keys, the directories, files and links (parents first), and the systemd units,
// drop-ins, enablement links and masks. Every file is replaced by a temporary file renamed over
// it (never changed in place: a deployment's files may be hard links into the OSTree
// repository). Apply is not idempotent where Ignition is not (append adds again): run it once per
// config, as Ignition runs once.
//
// # Users and groups
//
// Users and groups are written in Go, not by the host's useradd: a new user gets the uid (and
// its own group the gid) given, else the lowest free one from UID_MIN (GID_MIN) of the target's
// /etc/login.defs (default 1000; a system account the highest free one up to SYS_UID_MAX),
// preferring one free as both uid and gid; its home is homeDir, else /home/NAME, created (unless
// noCreateHome) with a copy of the target's /etc/skel, mode HOME_MODE (else 0777 less UMASK),
// all owned by the user; the shell is SHELL of /etc/default/useradd, else /bin/sh. An existing
// user gets the fields the config gives (uid, primaryGroup, gecos, homeDir, shell,
// passwordHash) and is added to its groups (membership is never removed). sshAuthorizedKeys are
// added to HOME/.ssh/authorized_keys (the file sshd reads by default; keys there are kept),
// .ssh 0700 and the file 0600, owned by the user; root's home is the one the target's
// /etc/passwd names (/root, a link to var/roothome on bootc images). Owners of files are
// resolved by name in the target's database, with the config's users and groups.
//
// # Units
//
// contents go to /etc/systemd/system/NAME and drop-ins to NAME.d/; enabled: true makes the
// links `systemctl enable` makes from the unit's [Install] section (the config's contents, else
// the unit file in /etc/systemd/system, /usr/lib/systemd/system or /lib/systemd/system);
// enabled: false removes them; mask: true links NAME to /dev/null (mask: false removes such a
// link).
package ignition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/coreos/go-semver/semver"
	v35 "github.com/coreos/ignition/v2/config/v3_5"
	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// ErrUnsupported is wrapped by the errors of Parse for a config that asks for something this
// package does not do (the error names the field).
var ErrUnsupported = errors.New("unsupported Ignition config")

// ErrInvalid is wrapped by the errors of Parse for a config that is not a valid Ignition config
// of spec 3.0 to 3.5 (an older one included).
var ErrInvalid = errors.New("invalid Ignition config")

// Problem is one thing wrong with a config: the field's path (as "storage.files[2].path") and
// what is wrong.
type Problem struct {
	Field, Message string
}

func (p Problem) String() string { return p.Field + ": " + p.Message }

// ConfigError is the error of Parse for a config it refuses: every problem found, and the
// sentinel it wraps (ErrUnsupported or ErrInvalid).
type ConfigError struct {
	Kind     error
	Problems []Problem
	// Report is Ignition's own validation report, for ErrInvalid ("" if none).
	Report string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	for _, p := range e.Problems {
		b.WriteString("\n  " + p.String())
	}
	if e.Report != "" {
		b.WriteString("\n  " + strings.ReplaceAll(strings.TrimSpace(e.Report), "\n", "\n  "))
	}
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Kind }

// Config is a parsed config, translated to spec 3.5, that passed the subset's checks.
type Config struct {
	cfg      types.Config
	version  string
	warnings []string
}

// Version is the spec version the config was written in (before translation to 3.5).
func (c *Config) Version() string { return c.version }

// Warnings are the warnings of Ignition's validation (such as a deprecated field).
func (c *Config) Warnings() []string { return c.warnings }

// Parse reads an Ignition config and checks it against what Apply does: spec 3.0 to 3.5
// (translated to 3.5 as Ignition does). A config of another version, or one Ignition's own
// validation rejects, is refused with ErrInvalid; one that asks for more than Apply does with
// ErrUnsupported, every problem named with its field (*ConfigError).
func Parse(untrusted []byte) (*Config, error) {
	version, err := specVersion(untrusted)
	if err != nil {
		return nil, err
	}
	cfg, rpt, err := v35.ParseCompatibleVersion(untrusted)
	if err != nil {
		return nil, &ConfigError{Kind: ErrInvalid, Problems: []Problem{{Field: "ignition", Message: err.Error()}}, Report: rpt.String()}
	}
	if problems := check(&cfg); len(problems) > 0 {
		return nil, &ConfigError{Kind: ErrUnsupported, Problems: problems}
	}
	c := &Config{cfg: cfg, version: version}
	for _, e := range rpt.Entries {
		c.warnings = append(c.warnings, e.String())
	}
	return c, nil
}

// specVersion reads ignition.version and refuses what is not 3.0.0 to 3.5.0, saying what to do.
func specVersion(untrusted []byte) (string, error) {
	var stub struct {
		Ignition struct {
			Version *string `json:"version"`
		} `json:"ignition"`
	}
	invalid := func(msg string) error {
		return &ConfigError{Kind: ErrInvalid, Problems: []Problem{{Field: "ignition.version", Message: msg}}}
	}
	if err := json.Unmarshal(untrusted, &stub); err != nil {
		return "", &ConfigError{Kind: ErrInvalid, Problems: []Problem{{Field: "(config)", Message: "not a JSON object: " + err.Error() + " (an Ignition config is JSON; translate a Butane YAML config with butane first)"}}}
	}
	if stub.Ignition.Version == nil {
		return "", invalid("missing: an Ignition config of spec 3.0.0 to 3.5.0 has \"ignition\": {\"version\": \"3.5.0\"}")
	}
	s := *stub.Ignition.Version
	v, err := semver.NewVersion(s)
	switch {
	case err != nil:
		return "", invalid(fmt.Sprintf("%q is no spec version: use spec 3.0.0 to 3.5.0", s))
	case v.Major < 3:
		return "", invalid(fmt.Sprintf("spec %s is the old Ignition format, which this install does not read: use spec 3.x (write the config with butane, variant fcos, or translate it to spec 3.5.0)", s))
	case v.Major > 3 || v.Minor > 5 || v.PreRelease != "":
		return "", invalid(fmt.Sprintf("spec %s is not supported: use spec 3.0.0 to 3.5.0", s))
	}
	return s, nil
}

// Target is where Apply writes.
type Target struct {
	// Root is the root of the tree whose /etc is written: a deployment's directory, or "/".
	Root string
	// Var is the directory that is /var on that tree when it runs: the stateroot's var
	// directory for a deployment, "/var" on the running system ("" means Root's var).
	// /home/NAME is written to Var's home/NAME.
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

// Apply writes cfg into t (see the package documentation for the order). Every path is
// resolved and checked, and every owner looked up, before the first write; an error then means
// nothing was written. An error during the writes leaves what was written before it.
func Apply(ctx context.Context, cfg *Config, t Target) (*Report, error) {
	if cfg == nil {
		return nil, errors.New("ignition: no config")
	}
	a := &applier{tree: newTree(t), cfg: &cfg.cfg, rep: &Report{}}
	if err := a.plan(); err != nil {
		return nil, err
	}
	steps := []func() error{a.applyPasswd, a.applyNodes, a.applyUnits}
	for _, step := range steps {
		if err := ctx.Err(); err != nil {
			return a.rep, err
		}
		if err := step(); err != nil {
			return a.rep, err
		}
	}
	return a.rep, nil
}

// WriteFile writes data to the file at path (as the host sees it: under /etc, /var or /home)
// in t, owned by root, atomically, with the rules of Apply: links are followed inside the tree
// only, missing parents are created (0755, root).
func WriteFile(t Target, path string, data []byte, mode fs.FileMode) error {
	if msg := hostPathProblem(path); msg != "" {
		return fmt.Errorf("%w: %s", ErrUnsupported, msg)
	}
	return newTree(t).writeFile(path, data, mode, rootOwner)
}
