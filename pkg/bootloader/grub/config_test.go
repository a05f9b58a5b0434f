package grub

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// twoEntries is a default deployment and its rollback as the sysroot writes them
// (sysroot.bootprefix=true: the paths start with /boot/).
func twoEntries() []MenuEntry {
	return []MenuEntry{
		{
			ID:      "ostree-default-2f7e2c8d-0",
			Title:   "Debian GNU/Linux 12 (bookworm) 42.2 (ostree:0)",
			Linux:   "/boot/ostree/default-2f7e2c8d/vmlinuz-6.1.0-28-amd64",
			Initrd:  []string{"/boot/ostree/default-2f7e2c8d/initramfs-6.1.0-28-amd64.img"},
			Options: "root=UUID=6c2b9b05-4d3b-4a5e-9b43-3f1f36a3e2a1 rw console=ttyS0,115200 ostree=/ostree/boot.1/default/2f7e2c8d/0",
		},
		{
			ID:      "ostree-default-9a1b0c3e-0",
			Title:   "Debian GNU/Linux 12 (bookworm) 42.1 (ostree:1)",
			Linux:   "/boot/ostree/default-9a1b0c3e/vmlinuz-6.1.0-27-amd64",
			Initrd:  []string{"/boot/ostree/default-9a1b0c3e/initramfs-6.1.0-27-amd64.img"},
			Options: "root=UUID=6c2b9b05-4d3b-4a5e-9b43-3f1f36a3e2a1 rw console=ttyS0,115200 ostree=/ostree/boot.1/default/9a1b0c3e/0",
		},
	}
}

// oddEntries hold what GRUB's shell would misread unquoted, and paths without the /boot/ prefix.
func oddEntries() []MenuEntry {
	return []MenuEntry{
		{
			ID:      "it's-0",
			Title:   `Bob's "OS" $HOME; {x} #1 \o/`,
			Linux:   "/ostree/os-1/vmlinuz",
			Initrd:  []string{"/ostree/os-1/initramfs.img", "/ostree/os-1/extra.img"},
			Options: `root=LABEL=r rw a="b c" d=$e f;g h|i j&k <l> {m} #n o'p q\r "s $t \u" v`,
		},
		{ID: "plain-1", Title: "Plain", Linux: "/ostree/os-1/vmlinuz"},
	}
}

func grubScriptCheck(t *testing.T, cfg []byte) {
	t.Helper()
	testutil.RequireTool(t, "grub-script-check")
	path := filepath.Join(t.TempDir(), "grub.cfg")
	if err := os.WriteFile(path, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("grub-script-check", path).CombinedOutput(); err != nil {
		t.Fatalf("grub-script-check refused the menu: %v\n%s\n%s", err, out, cfg)
	}
}

func mustConfig(t *testing.T, entries []MenuEntry, o ConfigOptions) []byte {
	t.Helper()
	cfg, err := Config(entries, o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestConfigGolden compares the menu of twoEntries with testdata/two-entries.cfg (go test -update
// rewrites it).
func TestConfigGolden(t *testing.T) {
	cfg := mustConfig(t, twoEntries(), ConfigOptions{})
	golden := filepath.Join("testdata", "two-entries.cfg")
	if *update {
		if err := os.WriteFile(golden, cfg, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(cfg) {
		t.Errorf("the menu differs from %s (go test -update rewrites it): %s", golden,
			testutil.FirstDiff("golden", string(want), "Config", string(cfg)))
	}
	// Two runs give the same bytes.
	if again := mustConfig(t, twoEntries(), ConfigOptions{}); string(again) != string(cfg) {
		t.Error("Config is not deterministic")
	}
}

func TestConfigAcceptedByGrubScriptCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []MenuEntry
		o       ConfigOptions
	}{
		{"two entries", twoEntries(), ConfigOptions{}},
		{"one entry", twoEntries()[:1], ConfigOptions{}},
		{"odd titles and options", oddEntries(), ConfigOptions{}},
		{"one attempt, no timeout", twoEntries(), ConfigOptions{BootAttempts: 1, Timeout: -1}},
		{"all attempts, long timeout", twoEntries(), ConfigOptions{BootAttempts: MaxBootAttempts, Timeout: 90 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			grubScriptCheck(t, mustConfig(t, tc.entries, tc.o))
		})
	}
}

func TestConfigText(t *testing.T) {
	cfg := string(mustConfig(t, oddEntries(), ConfigOptions{Timeout: 1500 * time.Millisecond}))
	for _, want := range []string{
		"\nset timeout=2\n",
		"\nserial --unit=0 --speed=115200\nterminal_input serial console\nterminal_output serial console\n",
		`menuentry 'Bob'\''s "OS" $HOME; {x} #1 \o/' --id 'it'\''s-0' {`,
		// No /boot/ prefix in the entry: /boot is a directory of GRUB's root filesystem.
		"\tlinux /boot/ostree/os-1/vmlinuz root=LABEL=r rw ",
		"\tinitrd /boot/ostree/os-1/initramfs.img /boot/ostree/os-1/extra.img\n",
		"menuentry 'Plain' --id 'plain-1' {\n\tlinux /boot/ostree/os-1/vmlinuz\n}\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("the menu lacks %q:\n%s", want, cfg)
		}
	}
	for _, m := range Modules() {
		if !strings.Contains(cfg, "\ninsmod "+m+"\n") {
			t.Errorf("no insmod %s", m)
		}
	}
	for _, tc := range []struct {
		timeout time.Duration
		want    string
	}{{0, "set timeout=1\n"}, {-1, "set timeout=0\n"}, {time.Minute, "set timeout=60\n"}} {
		if cfg := string(mustConfig(t, twoEntries(), ConfigOptions{Timeout: tc.timeout})); !strings.Contains(cfg, tc.want) {
			t.Errorf("Timeout %v: no %q", tc.timeout, tc.want)
		}
	}
}

// TestCounterChain reads the count-down chain of the text: each value 1..BootAttempts steps to
// the one below, 0 and -1 fall back, anything else counts as BootAttempts.
func TestCounterChain(t *testing.T) {
	step := regexp.MustCompile(`(?m)^\t(?:el)?if \[ "\$\{boot_counter\}" = "(-?\d+)" (?:-o "\$\{boot_counter\}" = "(-?\d+)" )?\]; then\n((?:\t\tset \w+=-?\d+\n|\t\techo .*\n)+)`)
	for _, attempts := range []int{1, 3, MaxBootAttempts} {
		cfg := string(mustConfig(t, twoEntries(), ConfigOptions{BootAttempts: attempts}))
		got := map[string]string{}
		for _, m := range step.FindAllStringSubmatch(cfg, -1) {
			body := strings.Join(strings.Fields(m[3]), " ")
			got[m[1]] = body
			if m[2] != "" {
				got[m[2]] = body
			}
		}
		want := map[string]string{}
		for n := 1; n <= attempts; n++ {
			want[fmt.Sprint(n)] = fmt.Sprintf("set boot_counter=%d", n-1)
		}
		if len(got) != attempts+2 {
			t.Fatalf("%d attempts: %d steps, want %d:\n%v\n%s", attempts, len(got), attempts+2, got, cfg)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%d attempts: counter %s: %q, want %q", attempts, k, got[k], v)
			}
		}
		for _, k := range []string{"0", "-1"} {
			if !strings.HasPrefix(got[k], "set default=1 set boot_counter=-1") {
				t.Errorf("%d attempts: counter %s: %q, want the fallback", attempts, k, got[k])
			}
		}
		if want := fmt.Sprintf("\telse\n\t\tset boot_counter=%d\n\tfi\n\tsave_env boot_counter\nfi\nset boot_success=0\nsave_env boot_success\n", attempts-1); !strings.Contains(cfg, want) {
			t.Errorf("%d attempts: the chain does not end with %q", attempts, want)
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	e := twoEntries()
	dup := twoEntries()
	dup[1].ID = dup[0].ID
	for _, tc := range []struct {
		name    string
		entries []MenuEntry
		o       ConfigOptions
	}{
		{"no entries", nil, ConfigOptions{}},
		{"too many attempts", e, ConfigOptions{BootAttempts: MaxBootAttempts + 1}},
		{"negative attempts", e, ConfigOptions{BootAttempts: -1}},
		{"no ID", []MenuEntry{{Title: "x", Linux: "/vmlinuz"}}, ConfigOptions{}},
		{"duplicate ID", dup, ConfigOptions{}},
		{"relative kernel", []MenuEntry{{ID: "a", Title: "x", Linux: "vmlinuz"}}, ConfigOptions{}},
		{"relative initrd", []MenuEntry{{ID: "a", Title: "x", Linux: "/vmlinuz", Initrd: []string{"i"}}}, ConfigOptions{}},
		{"unclosed quote", []MenuEntry{{ID: "a", Title: "x", Linux: "/vmlinuz", Options: `a="b`}}, ConfigOptions{}},
		{"newline in title", []MenuEntry{{ID: "a", Title: "x\ny", Linux: "/vmlinuz"}}, ConfigOptions{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if cfg, err := Config(tc.entries, tc.o); err == nil {
				t.Errorf("accepted:\n%s", cfg)
			}
		})
	}
}

// FuzzConfig: every menu Config writes from any title, ID, path and options parses (GRUB's
// shell would read it) and keeps one menuentry per entry.
func FuzzConfig(f *testing.F) {
	for _, e := range append(twoEntries(), oddEntries()...) {
		f.Add(e.ID, e.Title, e.Linux, e.Options)
	}
	f.Fuzz(func(t *testing.T, id, title, linux, options string) {
		cfg, err := Config([]MenuEntry{{ID: id, Title: title, Linux: "/" + linux, Options: options}}, ConfigOptions{})
		if err != nil {
			return
		}
		if n := strings.Count(string(cfg), "\nmenuentry "); n != 1 {
			t.Fatalf("%d menuentry lines:\n%s", n, cfg)
		}
		if _, err := exec.LookPath("grub-script-check"); err == nil {
			grubScriptCheck(t, cfg)
		}
	})
}
