package grub

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
)

// These tests run the generated menu in GRUB itself: grub-emu is GRUB's kernel built as a Linux
// program, with GRUB's shell, normal mode (menu, timeout, default), load_env/save_env and its
// ext2 driver. The disk is an ext2 image holding the sysroot's /boot as Setup and the sysroot
// writer lay it out; grub-emu reads and writes it through a device map, as GRUB would a disk.

// emuPrelude replaces the commands grub-emu lacks (it cannot load a kernel): linux and initrd
// print which entry GRUB boots, the arguments it would pass, and whether the kernel file exists
// at the path the menu gives.
const emuPrelude = `function linux {
	echo "bootc-test: chosen [${chosen}]"
	for a in "$@"; do echo "bootc-test: linux [$a]"; done
	if [ -f "$1" ]; then echo "bootc-test: kernel [found]"; fi
}
function initrd {
	for a in "$@"; do echo "bootc-test: initrd [$a]"; done
}
`

// emuBoot is what GRUB did in one run of grub-emu.
type emuBoot struct {
	chosen      string   // the ID of the entry it booted
	linux       []string // the arguments of its linux command (the kernel path first)
	initrd      []string
	kernelFound bool
	env         *Env // the environment block after the run
	output      string
}

var (
	ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	emuLine    = regexp.MustCompile(`bootc-test: (\w+) \[(.*)\]`)
)

// bootInGrubEmu writes cfg as the menu of boot version 1 of a /boot laid out by Setup, with env
// as its grubenv (nil: the empty one Setup writes) and a kernel file at every entry's path, makes
// an ext2 image of it, boots it in grub-emu once (the menu entries halt GRUB at their end) and
// reads the grubenv back.
func bootInGrubEmu(t *testing.T, cfg []byte, env *Env, entries []MenuEntry) emuBoot {
	t.Helper()
	testutil.RequireTool(t, "grub-emu", "mke2fs", "debugfs")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	boot := filepath.Join(root, "boot")
	if err := Setup(boot); err != nil {
		t.Fatal(err)
	}
	if env != nil {
		if err := WriteEnv(filepath.Join(boot, "grub", "grubenv"), env); err != nil {
			t.Fatal(err)
		}
	}
	// Every menuentry ends with halt: grub-emu then exits instead of returning to the menu.
	menu := strings.ReplaceAll(string(cfg), "\n}\n", "\n\thalt\n}\n")
	if n := strings.Count(menu, "\thalt\n}\n"); n != len(entries) {
		t.Fatalf("%d menu entries found in the menu, want %d", n, len(entries))
	}
	menu = emuPrelude + menu
	testutil.WriteFiles(t, boot, map[string]string{"loader.1/grub.cfg": menu})
	if err := os.Symlink("loader.1", filepath.Join(boot, "loader")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(".", filepath.Join(boot, "boot")); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for _, p := range append([]string{e.Linux}, e.Initrd...) {
			testutil.WriteFiles(t, boot, map[string]string{strings.TrimPrefix(p, "/boot/"): "image"})
		}
	}
	disk := filepath.Join(dir, "disk.img")
	testutil.Run(t, "mke2fs", "-q", "-F", "-t", "ext2", "-d", root, disk, "8M")
	deviceMap := filepath.Join(dir, "device.map")
	testutil.WriteFiles(t, dir, map[string]string{"device.map": "(hd0) " + disk + "\n"})

	// grub-emu: -r sets $root, -d the prefix on it (so the config is (hd0)/boot/grub/grub.cfg
	// and load_env's block (hd0)/boot/grub/grubenv). Its terminal is stdout; stdin is /dev/null.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "grub-emu", "-m", deviceMap, "-r", "hd0", "-d", "/boot/grub")
	out, err := cmd.CombinedOutput()
	text := strings.ReplaceAll(ansiEscape.ReplaceAllString(string(out), ""), "\r", "")
	if err != nil {
		t.Fatalf("grub-emu: %v\n%s", err, text)
	}
	b := emuBoot{output: text}
	for _, m := range emuLine.FindAllStringSubmatch(text, -1) {
		switch m[1] {
		case "chosen":
			b.chosen = m[2]
		case "linux":
			b.linux = append(b.linux, m[2])
		case "initrd":
			b.initrd = append(b.initrd, m[2])
		case "kernel":
			b.kernelFound = true
		}
	}
	if b.chosen == "" {
		t.Fatalf("GRUB booted no entry:\n%s", text)
	}
	data := testutil.Run(t, "debugfs", "-R", "cat /boot/grub/grubenv", disk)
	if b.env, err = ParseEnv([]byte(data)); err != nil {
		t.Fatalf("the grubenv after the boot: %v\n%q", err, data)
	}
	return b
}

func envOf(vars ...string) *Env {
	e := NewEnv()
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	return e
}

// TestBootCountingInGrubEmu boots the menu once in each state of the boot counter and checks
// the entry GRUB chose and the block it left.
func TestBootCountingInGrubEmu(t *testing.T) {
	entries := twoEntries()
	def, rollback := entries[0].ID, entries[1].ID
	const unset = "<unset>"
	for _, tc := range []struct {
		name        string
		entries     []MenuEntry
		o           ConfigOptions
		env         *Env // nil: the empty block of Setup
		boots       string
		counter     string
		wantFalback bool
	}{
		{name: "fresh", boots: def, counter: unset},
		{name: "counting 3", env: envOf("boot_counter=3", "boot_success=0"), boots: def, counter: "2"},
		{name: "counting 1", env: envOf("boot_counter=1", "boot_success=0"), boots: def, counter: "0"},
		{name: "exhausted", env: envOf("boot_counter=0", "boot_success=0"), boots: rollback, counter: "-1", wantFalback: true},
		{name: "fallback stays", env: envOf("boot_counter=-1", "boot_success=0"), boots: rollback, counter: "-1", wantFalback: true},
		{name: "success", env: envOf("boot_success=1"), boots: def, counter: unset},
		{name: "success, counter left", env: envOf("boot_counter=3", "boot_success=1"), boots: def, counter: "3"},
		{name: "top of the chain", env: envOf("boot_counter=10", "boot_success=0"), boots: def, counter: "9"},
		{name: "above the chain", env: envOf("boot_counter=25", "boot_success=0"), o: ConfigOptions{BootAttempts: 3}, boots: def, counter: "2"},
		{name: "garbage counter", env: envOf("boot_counter=x", "boot_success=0"), boots: def, counter: "9"},
		{name: "exhausted, one entry", entries: entries[:1], env: envOf("boot_counter=0", "boot_success=0"), boots: def, counter: "-1", wantFalback: true},
		// Other variables are neither loaded (default stays the menu's) nor lost.
		{name: "other variables", env: envOf("default=1", "saved_entry=x", "boot_counter=2", "boot_success=0"), boots: def, counter: "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := tc.entries
			if es == nil {
				es = entries
			}
			if tc.o.Timeout == 0 {
				tc.o.Timeout = -1 // boot at once; TestMenuInGrubEmu waits for the default timeout
			}
			b := bootInGrubEmu(t, mustConfig(t, es, tc.o), tc.env, es)
			if b.chosen != tc.boots {
				t.Errorf("GRUB booted %q, want %q:\n%s", b.chosen, tc.boots, b.output)
			}
			counter, ok := b.env.Get("boot_counter")
			if !ok {
				counter = unset
			}
			if counter != tc.counter {
				t.Errorf("boot_counter %s after the boot, want %s:\n%s", counter, tc.counter, b.output)
			}
			if v, _ := b.env.Get("boot_success"); v != "0" {
				t.Errorf("boot_success %q after the boot, want 0", v)
			}
			if fell := strings.Contains(b.output, "booting the rollback"); fell != tc.wantFalback {
				t.Errorf("fallback message shown: %v, want %v", fell, tc.wantFalback)
			}
			if tc.env != nil {
				for _, n := range tc.env.Names() {
					if _, ok := b.env.Get(n); !ok && n != "boot_counter" {
						t.Errorf("%s was lost", n)
					}
				}
			}
		})
	}
}

// TestMenuInGrubEmu boots a menu of odd titles and options, without the /boot/ prefix, after the
// default timeout: GRUB finds the kernel, and passes the arguments the kernel would parse from
// the options.
func TestMenuInGrubEmu(t *testing.T) {
	entries := oddEntries()
	b := bootInGrubEmu(t, mustConfig(t, entries, ConfigOptions{}), nil, entries)
	if b.chosen != entries[0].ID {
		t.Fatalf("GRUB booted %q, want %q:\n%s", b.chosen, entries[0].ID, b.output)
	}
	if !strings.Contains(b.output, "Booting `"+entries[0].Title+"'") {
		t.Errorf("GRUB did not show the title %q:\n%s", entries[0].Title, b.output)
	}
	if !strings.Contains(b.output, "executed automatically in 1s") {
		t.Errorf("the menu did not wait 1 s:\n%s", b.output)
	}
	want := []string{"/boot/ostree/os-1/vmlinuz", "root=LABEL=r", "rw", "a=b c", "d=$e", "f;g", "h|i", "j&k", "<l>",
		"{m}", "#n", "o'p", `q\r`, `s $t \u`, "v"}
	if strings.Join(b.linux, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("linux arguments:\n%q\nwant\n%q", b.linux, want)
	}
	if !b.kernelFound {
		t.Errorf("GRUB did not find the kernel at %s", b.linux[0])
	}
	if want := []string{"/boot/ostree/os-1/initramfs.img", "/boot/ostree/os-1/extra.img"}; strings.Join(b.initrd, " ") != strings.Join(want, " ") {
		t.Errorf("initrd arguments %q, want %q", b.initrd, want)
	}
}
