package updateagent

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bootc-go/bootc/internal/tomlfile"
)

// ConfigDirs are the directories of configuration fragments (*.toml), relative to the config
// root, in order: a later directory's file overrides an earlier one of the same name.
var ConfigDirs = []string{"usr/lib/bootc/update.d", "run/bootc/update.d", "etc/bootc/update.d"}

// Strategies say when the agent reboots into a staged update.
const (
	StrategyImmediate = "immediate"
	StrategyPeriodic  = "periodic"
	StrategyFleetLock = "fleet_lock"
)

// Defaults of Config.
const (
	DefaultGroup          = "default"
	DefaultSteadyInterval = 300 * time.Second
	// StreamLabel is the image label naming the booted image's stream.
	StreamLabel = "com.coreos.stream"
)

// ErrInvalidConfig: a fragment does not parse, has an unknown key or a bad value, or the
// merged configuration is inconsistent; the error names the file and line.
var ErrInvalidConfig = errors.New("invalid update agent configuration")

// Config is the update agent's configuration, merged from the fragments of ConfigDirs:
//
//	[updates]
//	enabled = true               # false: the agent does nothing
//	strategy = "immediate"       # "immediate", "periodic" or "fleet_lock"
//	allow_downgrade = false
//	stream = "stable"            # default: the booted image's label com.coreos.stream
//	releases = "REGISTRY/REPO"   # where the releases-<stream> index is (or "oci:DIR"; default: the followed image's repository)
//	[updates.periodic]
//	time_zone = "UTC"            # "UTC", "localtime" or an IANA name
//	[[updates.periodic.window]]  # windows of all fragments add up
//	days = ["Sat", "Sun"]
//	start_time = "23:30"
//	length_minutes = 60
//	[updates.fleet_lock]
//	base_url = "http://fleetlock.example:8080"
//	[identity]
//	group = "default"
//	rollout_wariness = 0.5       # 0 eager .. 1 cautious (default: derived from node_uuid)
//	node_uuid = "..."            # default: the app-specific id of /etc/machine-id
//	[cincinnati]
//	base_url = "https://..."     # ask a Cincinnati server instead of the registry index
//	[agent.timing]
//	steady_interval_secs = 300
type Config struct {
	Enabled        bool
	Strategy       string
	AllowDowngrade bool
	Stream         string
	Releases       string
	// Periodic is the reboot schedule of strategy periodic (nil without windows).
	Periodic       *Schedule
	FleetLockURL   string
	Group          string
	Wariness       *float64
	NodeUUID       string
	CincinnatiURL  string
	SteadyInterval time.Duration
	// Files are the fragments read, in order.
	Files []string
}

// fragment is one file's keys; nil means not set there.
type fragment struct {
	Updates struct {
		Enabled        *bool   `toml:"enabled"`
		Strategy       *string `toml:"strategy"`
		AllowDowngrade *bool   `toml:"allow_downgrade"`
		Stream         *string `toml:"stream"`
		Releases       *string `toml:"releases"`
		Periodic       struct {
			TimeZone *string       `toml:"time_zone"`
			Window   []windowEntry `toml:"window"`
		} `toml:"periodic"`
		FleetLock struct {
			BaseURL *string `toml:"base_url"`
		} `toml:"fleet_lock"`
	} `toml:"updates"`
	Identity struct {
		Group           *string  `toml:"group"`
		RolloutWariness *float64 `toml:"rollout_wariness"`
		NodeUUID        *string  `toml:"node_uuid"`
	} `toml:"identity"`
	Cincinnati struct {
		BaseURL *string `toml:"base_url"`
	} `toml:"cincinnati"`
	Agent struct {
		Timing struct {
			SteadyIntervalSecs *int64 `toml:"steady_interval_secs"`
		} `toml:"timing"`
	} `toml:"agent"`
}

type windowEntry struct {
	Days          []string `toml:"days"`
	StartTime     string   `toml:"start_time"`
	LengthMinutes int64    `toml:"length_minutes"`
}

var groupRe = regexp.MustCompile(`^[a-zA-Z0-9.-]+$`)

// Fragments lists the fragments under root in the order they apply: by file name, each name
// from the last directory of ConfigDirs that has it; a file that is a symlink to /dev/null
// masks that name.
func Fragments(root string) ([]string, error) {
	byName := map[string]string{}
	for _, dir := range ConfigDirs {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading the update agent configuration: %w", err)
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".toml") {
				byName[e.Name()] = filepath.Join(root, dir, e.Name())
			}
		}
	}
	var files []string
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		p := byName[name]
		if target, err := os.Readlink(p); err == nil && target == os.DevNull {
			continue
		}
		files = append(files, p)
	}
	return files, nil
}

// LoadConfig reads the configuration under root ("/" on the running system, the booted
// deployment's directory in a sysroot directory): the defaults, then each fragment (Fragments)
// key by key. Errors wrap ErrInvalidConfig and name the file and line.
func LoadConfig(root string) (*Config, error) {
	files, err := Fragments(root)
	if err != nil {
		return nil, err
	}
	c := &Config{Enabled: true, Strategy: StrategyImmediate, Group: DefaultGroup, SteadyInterval: DefaultSteadyInterval, Files: files}
	tz := "UTC"
	var windows []Window
	strategyAt := ""
	for _, p := range files {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading the update agent configuration: %w", err)
		}
		f, err := decodeFragment(p, data)
		if err != nil {
			return nil, err
		}
		bad := func(key string, format string, a ...any) error {
			return fmt.Errorf("%w: %s line %d: %s: %s", ErrInvalidConfig, p, tomlfile.KeyLine(data, key), key, fmt.Sprintf(format, a...))
		}
		u := &f.Updates
		set(&c.Enabled, u.Enabled)
		set(&c.AllowDowngrade, u.AllowDowngrade)
		set(&c.Stream, u.Stream)
		set(&c.Releases, u.Releases)
		set(&c.FleetLockURL, u.FleetLock.BaseURL)
		set(&c.CincinnatiURL, f.Cincinnati.BaseURL)
		set(&c.NodeUUID, f.Identity.NodeUUID)
		if s := u.Strategy; s != nil {
			if *s != StrategyImmediate && *s != StrategyPeriodic && *s != StrategyFleetLock {
				return nil, bad("strategy", "%q: use \"immediate\", \"periodic\" or \"fleet_lock\"", *s)
			}
			c.Strategy, strategyAt = *s, fmt.Sprintf("%s line %d", p, tomlfile.KeyLine(data, "strategy"))
		}
		if g := f.Identity.Group; g != nil {
			if !groupRe.MatchString(*g) {
				return nil, bad("group", "%q: use letters, digits, '.' and '-'", *g)
			}
			c.Group = *g
		}
		if w := f.Identity.RolloutWariness; w != nil {
			if !(*w >= 0 && *w <= 1) {
				return nil, bad("rollout_wariness", "%v: use a number from 0.0 (eager) to 1.0 (cautious)", *w)
			}
			v := *w
			c.Wariness = &v
		}
		if s := f.Agent.Timing.SteadyIntervalSecs; s != nil {
			if *s < 1 || *s > 7*24*3600 {
				return nil, bad("steady_interval_secs", "%d: use a number of seconds from 1 to 604800", *s)
			}
			c.SteadyInterval = time.Duration(*s) * time.Second
		}
		if z := u.Periodic.TimeZone; z != nil {
			if _, err := loadLocation(*z); err != nil {
				return nil, bad("time_zone", "%q: %v; use \"UTC\", \"localtime\" or an IANA name such as \"Europe/Berlin\"", *z, err)
			}
			tz = *z
		}
		for i, e := range u.Periodic.Window {
			w, err := parseWindow(e)
			if err != nil {
				return nil, fmt.Errorf("%w: %s line %d: [[updates.periodic.window]] %d: %v", ErrInvalidConfig, p, nthLine(data, "[[updates.periodic.window]]", i), i+1, err)
			}
			windows = append(windows, w)
		}
	}
	if len(windows) > 0 {
		loc, _ := loadLocation(tz)
		c.Periodic = &Schedule{Location: loc, Windows: windows}
	}
	switch {
	case c.Strategy == StrategyFleetLock && c.FleetLockURL == "":
		return nil, fmt.Errorf("%w: %s: strategy \"fleet_lock\" needs [updates.fleet_lock] base_url", ErrInvalidConfig, strategyAt)
	case c.Strategy == StrategyPeriodic && c.Periodic == nil:
		return nil, fmt.Errorf("%w: %s: strategy \"periodic\" needs at least one [[updates.periodic.window]]", ErrInvalidConfig, strategyAt)
	}
	return c, nil
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// decodeFragment parses one fragment strictly (tomlfile.Decode).
func decodeFragment(path string, data []byte) (*fragment, error) {
	var f fragment
	if err := tomlfile.Decode(path, data, &f, ErrInvalidConfig, ""); err != nil {
		return nil, err
	}
	return &f, nil
}

// nthLine is the line of the n-th (from 0) line that is s, trimmed; 0 if there is none.
func nthLine(data []byte, s string, n int) int {
	for i, l := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(l) == s {
			if n == 0 {
				return i + 1
			}
			n--
		}
	}
	return 0
}

func loadLocation(name string) (*time.Location, error) {
	switch name {
	case "localtime", "Local":
		return time.Local, nil
	case "":
		return nil, errors.New("empty")
	}
	return time.LoadLocation(name)
}
