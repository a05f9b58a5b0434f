package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bootc-go/bootc/internal/tomlfile"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/health"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// The configuration files, relative to a deployment's root: the image's, then the admin's,
// which overrides it key by key.
const (
	ConfigFile    = "usr/lib/bootc/config.toml"
	EtcConfigFile = "etc/bootc/config.toml"
)

// The defaults and bounds of Config.
const (
	DefaultBootAttempts = 3
	// MaxBootAttempts is the longest count-down the GRUB menu has.
	MaxBootAttempts  = grub.MaxBootAttempts
	MaxHealthTimeout = time.Hour
)

// ErrInvalidConfig: a configuration file does not parse, has an unknown key or a value out of
// range; the error names the file and line.
var ErrInvalidConfig = errors.New("invalid bootc configuration")

// Config is a deployment's bootc configuration, from ConfigFile overridden by EtcConfigFile:
//
//	[boot]
//	attempts = 3      # boots a new deployment gets to reach boot-complete.target (1 to 10)
//
//	[health]
//	timeout = "2m"    # how long one health check may run ("90s", "5m"; 1s to 1h)
//
// Both files are optional; unknown keys are errors.
type Config struct {
	// BootAttempts: how many times GRUB boots a new deployment before it falls back to the
	// previous one (DefaultBootAttempts).
	BootAttempts int
	// HealthTimeout: how long one health check may run (health.DefaultTimeout).
	HealthTimeout time.Duration
}

// configFile is one file's keys; nil means not set there.
type configFile struct {
	Boot struct {
		Attempts *attempts `toml:"attempts"`
	} `toml:"boot"`
	Health struct {
		Timeout *checkTimeout `toml:"timeout"`
	} `toml:"health"`
}

type attempts int

// UnmarshalTOML checks the range (the decoder adds the line to the error).
func (a *attempts) UnmarshalTOML(v any) error {
	n, ok := v.(int64)
	if !ok || n < 1 || n > MaxBootAttempts {
		return fmt.Errorf("[boot] attempts = %v: use a whole number from 1 to %d", tomlValue(v), MaxBootAttempts)
	}
	*a = attempts(n)
	return nil
}

type checkTimeout time.Duration

func (c *checkTimeout) UnmarshalTOML(v any) error {
	s, _ := v.(string)
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second || d > MaxHealthTimeout {
		return fmt.Errorf("[health] timeout = %v: use a duration from \"1s\" to \"1h\", such as \"90s\" or \"5m\"", tomlValue(v))
	}
	*c = checkTimeout(d)
	return nil
}

func tomlValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// LoadConfig reads the configuration of the root filesystem at root (a deployment's directory,
// or "/" on the running system): the defaults, then ConfigFile, then EtcConfigFile, each key
// set in a file replacing the value before it. Errors wrap ErrInvalidConfig and name the file
// and, for a bad value, the line.
func LoadConfig(root string) (*Config, error) {
	return loadConfig(filepath.Join(root, ConfigFile), filepath.Join(root, EtcConfigFile))
}

// loadConfig reads the configuration files at paths over the defaults, in order.
func loadConfig(paths ...string) (*Config, error) {
	c := &Config{BootAttempts: DefaultBootAttempts, HealthTimeout: health.DefaultTimeout}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the bootc configuration: %w", err)
		}
		var f configFile
		if err := tomlfile.Decode(p, data, &f, ErrInvalidConfig, "the keys are boot.attempts and health.timeout"); err != nil {
			return nil, err
		}
		if f.Boot.Attempts != nil {
			c.BootAttempts = int(*f.Boot.Attempts)
		}
		if f.Health.Timeout != nil {
			c.HealthTimeout = time.Duration(*f.Health.Timeout)
		}
	}
	return c, nil
}

// BootAttempts returns how many boots the deployment d gets to reach boot-complete.target
// before GRUB falls back to the previous deployment: [boot] attempts of its configuration
// (LoadConfig of its directory: its image's /usr/lib/bootc/config.toml and its /etc). Pass the
// new deployment, after sysroot.Deploy merged its /etc, and give the result to
// sysroot.WriteOptions.BootAttempts.
func (h *Host) BootAttempts(d *sysroot.Deployment) (int, error) {
	c, err := LoadConfig(h.deploymentRoot(d))
	if err != nil {
		return 0, err
	}
	return c.BootAttempts, nil
}

// finalizeAttempts is the boot attempts FinalizeStaged gives the staged deployment: those of
// WithBootAttempts, else [boot] attempts of the staged image's /usr/lib/bootc/config.toml and of
// the /etc its /etc is merged from (the booted system's, edits until shutdown included). A bad
// configuration does not stop the shutdown: it is a warning, and the default applies.
func (h *Host) finalizeAttempts() int {
	if h.cfg.bootAttempts >= 0 {
		return h.cfg.bootAttempts
	}
	staged, merge := h.sys.Staged(), h.sys.Booted()
	if staged == nil {
		return DefaultBootAttempts
	}
	paths := []string{filepath.Join(h.deploymentRoot(staged), ConfigFile)}
	if merge != nil {
		paths = append(paths, filepath.Join(h.deploymentRoot(merge), EtcConfigFile))
	}
	c, err := loadConfig(paths...)
	if err != nil {
		h.cfg.warn("the boot attempts of the staged deployment", err)
		return DefaultBootAttempts
	}
	return c.BootAttempts
}

// deploymentRoot is the directory of d's root filesystem: "/" for the booted deployment of the
// running system (its /etc is the live one), else its directory in the sysroot.
func (h *Host) deploymentRoot(d *sysroot.Deployment) string {
	return deploymentRoot(h.sys, d)
}

func deploymentRoot(sys *sysroot.Sysroot, d *sysroot.Deployment) string {
	if sys.IsLive() && d.Equal(sys.Booted()) {
		return "/"
	}
	return filepath.Join(sys.Path(), d.Dir())
}
