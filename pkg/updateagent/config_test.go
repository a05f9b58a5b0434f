package updateagent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFragments(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled || c.Strategy != StrategyImmediate || c.AllowDowngrade || c.Group != DefaultGroup || c.SteadyInterval != 300*time.Second || c.Wariness != nil || c.Periodic != nil {
		t.Errorf("defaults: %+v", c)
	}
}

// TestLoadConfigMerge: later directories override earlier ones for the same name (only the
// last one's file is read), a symlink to /dev/null masks, files apply in name order key by key,
// windows add up.
func TestLoadConfigMerge(t *testing.T) {
	root := t.TempDir()
	writeFragments(t, root, map[string]string{
		"usr/lib/bootc/update.d/10-base.toml": "[updates]\nstrategy = \"periodic\"\nstream = \"stable\"\n[[updates.periodic.window]]\ndays = [\"Sat\"]\nstart_time = \"23:30\"\nlength_minutes = 60\n",
		"usr/lib/bootc/update.d/20-lib.toml":  "[identity]\ngroup = \"from-lib\"\n",
		"usr/lib/bootc/update.d/30-mask.toml": "[updates]\nenabled = false\n",
		"run/bootc/update.d/20-lib.toml":      "[identity]\ngroup = \"from-run\"\nrollout_wariness = 0.25\n",
		"etc/bootc/update.d/20-lib.toml":      "[identity]\ngroup = \"from-etc\"\n",
		"etc/bootc/update.d/40-more.toml":     "[updates.periodic]\ntime_zone = \"Asia/Kolkata\"\n[[updates.periodic.window]]\ndays = [\"Sun\", \"Mon\"]\nstart_time = \"01:00\"\nlength_minutes = 30\n[agent.timing]\nsteady_interval_secs = 60\n",
	})
	if err := os.Symlink("/dev/null", filepath.Join(root, "etc/bootc/update.d/30-mask.toml")); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(root)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Enabled {
		t.Error("the masked fragment was read")
	}
	if c.Group != "from-etc" || c.Wariness != nil {
		t.Errorf("group %q wariness %v: want only etc's 20-lib.toml read", c.Group, c.Wariness)
	}
	if c.Strategy != StrategyPeriodic || c.Stream != "stable" || c.SteadyInterval != time.Minute {
		t.Errorf("merged: %+v", c)
	}
	if c.Periodic == nil || len(c.Periodic.Windows) != 2 || c.Periodic.Location.String() != "Asia/Kolkata" {
		t.Fatalf("periodic: %+v", c.Periodic)
	}
	if len(c.Files) != 3 {
		t.Errorf("files read: %v", c.Files)
	}
}

func TestLoadConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct{ content, want string }{
		"unknown key":   {"[updates]\nenabled = true\nstratgy = \"x\"\n", "a.toml line 3: unknown key updates.stratgy"},
		"unknown table": {"[update]\nenabled = true\n", "a.toml line 1: unknown key update"},
		"syntax":        {"[updates]\nenabled = \n", "a.toml line 2"},
		"type":          {"[updates]\n\nenabled = \"yes\"\n", "a.toml line 3: updates.enabled: incompatible types"},
		"strategy":      {"[updates]\n\nstrategy = \"sometimes\"\n", "a.toml line 3: strategy: \"sometimes\""},
		"group":         {"[identity]\ngroup = \"a b\"\n", "a.toml line 2: group"},
		"wariness":      {"[identity]\nrollout_wariness = 1.5\n", "a.toml line 2: rollout_wariness"},
		"time zone":     {"[updates.periodic]\ntime_zone = \"Mars/Olympus\"\n", "a.toml line 2: time_zone"},
		"fleet_lock":    {"[updates]\nstrategy = \"fleet_lock\"\n", "a.toml line 2: strategy \"fleet_lock\" needs [updates.fleet_lock] base_url"},
		"periodic":      {"[updates]\n\nstrategy = \"periodic\"\n", "a.toml line 3: strategy \"periodic\" needs at least one"},
		"window day":    {"[[updates.periodic.window]]\ndays = [\"Mon\"]\nstart_time = \"01:00\"\nlength_minutes = 5\n[[updates.periodic.window]]\ndays = [\"Funday\"]\nstart_time = \"01:00\"\nlength_minutes = 5\n", "a.toml line 5: [[updates.periodic.window]] 2: day \"Funday\""},
		"window start":  {"[[updates.periodic.window]]\ndays = [\"Mon\"]\nstart_time = \"25:00\"\nlength_minutes = 5\n", "start_time \"25:00\""},
		"window length": {"[[updates.periodic.window]]\ndays = [\"Mon\"]\nstart_time = \"01:00\"\nlength_minutes = 0\n", "length_minutes 0"},
		"interval":      {"[agent.timing]\nsteady_interval_secs = 0\n", "a.toml line 2: steady_interval_secs"},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			writeFragments(t, root, map[string]string{"etc/bootc/update.d/a.toml": tc.content})
			_, err := LoadConfig(root)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
