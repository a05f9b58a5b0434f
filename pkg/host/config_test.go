package host_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/pkg/host"
)

// TestLoadConfig: defaults; the image's file; /etc overriding it key by key; bad values, unknown
// keys and bad syntax refused with the file and line.
func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		lib, etc string // file contents; "" for none
		attempts int
		timeout  time.Duration
		err      string // in the error, after the file's path
	}{
		{name: "defaults", attempts: 3, timeout: 2 * time.Minute},
		{name: "image", lib: "[boot]\nattempts = 5\n", attempts: 5, timeout: 2 * time.Minute},
		{name: "etc overrides per key", lib: "[boot]\nattempts = 5\n[health]\ntimeout = \"30s\"\n", etc: "# mine\n[boot]\nattempts = 1\n", attempts: 1, timeout: 30 * time.Second},
		{name: "dotted keys", etc: "boot.attempts = 10\nhealth.timeout = \"1h\"\n", attempts: 10, timeout: time.Hour},
		{name: "too many attempts", etc: "[boot]\n\nattempts = 11\n", err: "etc/bootc/config.toml line 3: [boot] attempts = 11: use a whole number from 1 to 10"},
		{name: "zero attempts", lib: "[boot]\nattempts = 0\n", err: "usr/lib/bootc/config.toml line 2: [boot] attempts = 0: use a whole number"},
		{name: "attempts as a string", lib: "[boot]\nattempts = \"3\"\n", err: "line 2: [boot] attempts = \"3\": use a whole number"},
		{name: "timeout as a number", etc: "[health]\ntimeout = 90\n", err: "line 2: [health] timeout = 90: use a duration from \"1s\" to \"1h\""},
		{name: "timeout too long", etc: "[health]\ntimeout = \"2h\"\n", err: "line 2: [health] timeout = \"2h\""},
		{name: "unknown key", etc: "[boot]\nattempt = 3\n", err: "etc/bootc/config.toml line 2: unknown key boot.attempt (the keys are boot.attempts and health.timeout)"},
		{name: "syntax", lib: "[boot\n", err: "usr/lib/bootc/config.toml line 2: expected '.' or ']'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for rel, content := range map[string]string{host.ConfigFile: tc.lib, host.EtcConfigFile: tc.etc} {
				if content != "" {
					must(t, os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755))
					must(t, os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644))
				}
			}
			c, err := host.LoadConfig(root)
			if tc.err != "" {
				if !errors.Is(err, host.ErrInvalidConfig) || !strings.Contains(err.Error(), root+"/") || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("LoadConfig: %v; want %q", err, tc.err)
				}
				return
			}
			if err != nil || c.BootAttempts != tc.attempts || c.HealthTimeout != tc.timeout {
				t.Fatalf("LoadConfig: %+v, %v; want %d attempts, timeout %s", c, err, tc.attempts, tc.timeout)
			}
		})
	}
}
