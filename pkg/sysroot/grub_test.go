package sysroot

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/bootloader/grub"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// newGrubSysroot makes a sysroot whose /boot is set up for GRUB.
func newGrubSysroot(t *testing.T) *Sysroot {
	t.Helper()
	s := newSysroot(t)
	if err := grub.Setup(s.abs("boot")); err != nil {
		t.Fatal(err)
	}
	return s
}

// writeList deploys c, places it with the default rules and writes the list with o.
func writeList(t *testing.T, s *Sysroot, c ostree.Checksum, o WriteOptions) error {
	t.Helper()
	d, _, err := s.Deploy(t.Context(), c, DeployOptions{Stateroot: "myos"})
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	return s.WriteDeployments(t.Context(), s.Place(d, PlaceOptions{}), o)
}

// menuEntryRE matches a menuentry as grub.Config writes it for our entries (no quoting needed
// in their paths and options).
var menuEntryRE = regexp.MustCompile(`(?m)^menuentry '([^']*)' --id '([^']*)' \{\n\tlinux (\S+) (.*)\n(?:\tinitrd (\S+)\n)?\}$`)

// checkMenu checks that the menu GRUB reads, boot/grub/grub.cfg, lists the current BLS entries
// in their order (default first), with their title, kernel, initramfs and options, that its
// kernel and initramfs paths exist as GRUB reads them (from the root filesystem), and that
// grub-script-check accepts it. It returns the menu.
func checkMenu(t *testing.T, s *Sysroot) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.Path(), "boot/grub/grub.cfg"))
	if err != nil {
		t.Fatalf("the GRUB menu: %v", err)
	}
	menu := string(data)
	testutil.RequireTool(t, "grub-script-check")
	run(t, "grub-script-check", filepath.Join(s.Path(), "boot/grub/grub.cfg"))

	files, _ := filepath.Glob(filepath.Join(s.Path(), "boot/loader/entries/*.conf"))
	var entries []*blsEntry
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, parseBLS(data))
	}
	version := func(e *blsEntry) int { n, _ := strconv.Atoi(e.get("version")); return n }
	sort.Slice(entries, func(i, j int) bool { return version(entries[i]) > version(entries[j]) })

	got := menuEntryRE.FindAllStringSubmatch(menu, -1)
	if len(got) != len(entries) || len(entries) != len(s.Deployments()) {
		t.Fatalf("%d menu entries, %d BLS entries, %d deployments:\n%s", len(got), len(entries), len(s.Deployments()), menu)
	}
	// GRUB reads the paths from the root filesystem, where /boot is a directory.
	grubPath := func(p string) string {
		if p == "" || strings.HasPrefix(p, "/boot/") {
			return p
		}
		return "/boot" + p
	}
	for i, e := range entries {
		m := got[i]
		d := s.Deployments()[i]
		wantID := fmt.Sprintf("ostree-%s-%s-%d", d.Stateroot, d.BootCsum, d.BootSerial)
		if m[1] != e.get("title") || m[2] != wantID || m[3] != grubPath(e.get("linux")) || m[4] != e.get("options") || m[5] != grubPath(e.get("initrd")) {
			t.Errorf("menu entry %d: %q\nBLS entry:\n%s(ID want %s)", i, m[1:], e.marshal(), wantID)
		}
		for _, p := range []string{m[3], m[5]} {
			if st, err := os.Stat(filepath.Join(s.Path(), p)); err != nil || !st.Mode().IsRegular() {
				t.Errorf("menu entry %d: %s is not a file on the root filesystem: %v", i, p, err)
			}
		}
	}
	return menu
}

func readBootLink(t *testing.T, s *Sysroot) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(s.Path(), "boot/loader"))
	if err != nil {
		t.Fatal(err)
	}
	return target
}

// TestGrubMenuFollowsEntries writes two lists: each boot version gets its menu, and the old one
// goes with its loader directory; with and without sysroot.bootprefix (BLS paths that start
// with /boot/ or not).
func TestGrubMenuFollowsEntries(t *testing.T) {
	for _, bootprefix := range []string{"true", "false"} {
		t.Run("bootprefix="+bootprefix, func(t *testing.T) { testGrubMenuFollowsEntries(t, bootprefix) })
	}
}

func testGrubMenuFollowsEntries(t *testing.T, bootprefix string) {
	s := newGrubSysroot(t)
	if err := s.Repo().SetConfig("sysroot", "bootprefix", bootprefix); err != nil {
		t.Fatal(err)
	}
	c1 := commitTree(t, s, "1", baseTree())
	c2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL2"}))

	if err := writeList(t, s, c1, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	first := readBootLink(t, s)
	menu := checkMenu(t, s)
	if !strings.Contains(menu, "--id 'ostree-myos-") || !strings.Contains(menu, "load_env boot_counter boot_success") {
		t.Errorf("menu:\n%s", menu)
	}

	if err := writeList(t, s, c2, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if second := readBootLink(t, s); second == first {
		t.Fatalf("boot/loader -> %s both times", second)
	}
	checkMenu(t, s)
	if s.Deployments()[0].Commit != c2 {
		t.Fatalf("the default is %s, want %s", s.Deployments()[0].Commit, c2)
	}
	if _, err := os.Lstat(filepath.Join(s.Path(), "boot", first)); !os.IsNotExist(err) {
		t.Errorf("the old boot/%s (and its grub.cfg) is still there: %v", first, err)
	}
}

// TestGrubMenuKeptWithSameEntries: when only the subboot version is swapped, loader.B and its
// menu stay, and stay right: they describe the same entries.
func TestGrubMenuKeptWithSameEntries(t *testing.T) {
	s := newGrubSysroot(t)
	c := commitTree(t, s, "1", baseTree())
	for range 2 { // [c.0], then [c.1, c.0]
		if err := writeList(t, s, c, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	link, menu := readBootLink(t, s), checkMenu(t, s)
	// [c.2, c.1]: the same entries position by position.
	if err := writeList(t, s, c, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readBootLink(t, s); got != link {
		t.Fatalf("boot/loader -> %s, want %s kept", got, link)
	}
	if got := checkMenu(t, s); got != menu {
		t.Errorf("the menu changed:\n%s", testutil.FirstDiff("before", menu, "after", got))
	}
	if s.Deployments()[0].Serial != 2 {
		t.Errorf("the default is %s.%d, want serial 2", s.Deployments()[0].Commit, s.Deployments()[0].Serial)
	}
}

// TestGrubSetUpLater: a sysroot written before GRUB was set up gets a menu with the next write,
// even when the entries would be the same.
func TestGrubSetUpLater(t *testing.T) {
	s := newSysroot(t)
	c := commitTree(t, s, "1", baseTree())
	for range 2 {
		if err := writeList(t, s, c, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := grub.Setup(s.abs("boot")); err != nil {
		t.Fatal(err)
	}
	link := readBootLink(t, s)
	if err := writeList(t, s, c, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readBootLink(t, s); got == link {
		t.Errorf("boot/loader -> %s kept, but it has no menu", got)
	}
	checkMenu(t, s)
}

func TestGrubBootAttempts(t *testing.T) {
	testutil.RequireTool(t, "grub-editenv")
	s := newGrubSysroot(t)
	env := filepath.Join(s.Path(), "boot/grub/grubenv")
	run(t, "grub-editenv", env, "set", "saved_entry=keep-me", "boot_success=1")
	c1 := commitTree(t, s, "1", baseTree())
	c2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL2"}))

	if err := writeList(t, s, c1, WriteOptions{BootAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	if got, want := run(t, "grub-editenv", env, "list"), "saved_entry=keep-me\nboot_success=0\nboot_counter=3\n"; got != want {
		t.Errorf("grub-editenv list:\n%s\nwant\n%s", got, want)
	}
	// Userspace marks the boot good; the next write without BootAttempts leaves the block alone.
	run(t, "grub-editenv", env, "unset", "boot_counter")
	run(t, "grub-editenv", env, "set", "boot_success=1")
	if err := writeList(t, s, c2, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, want := run(t, "grub-editenv", env, "list"), "saved_entry=keep-me\nboot_success=1\n"; got != want {
		t.Errorf("grub-editenv list after a write without BootAttempts:\n%s\nwant\n%s", got, want)
	}

	// More attempts than the menu counts is refused before anything is written.
	link := readBootLink(t, s)
	if err := writeList(t, s, c1, WriteOptions{BootAttempts: grub.MaxBootAttempts + 1}); err == nil {
		t.Error("BootAttempts above grub.MaxBootAttempts was accepted")
	}
	if got := readBootLink(t, s); got != link {
		t.Errorf("a refused write switched boot/loader to %s", got)
	}
}

// TestNoGrub: a sysroot without GRUB gets no menu and no environment block, BootAttempts or not.
func TestNoGrub(t *testing.T) {
	s := newSysroot(t)
	c := commitTree(t, s, "1", baseTree())
	if err := writeList(t, s, c, WriteOptions{BootAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"boot/loader/grub.cfg", "boot/grub"} {
		if _, err := os.Lstat(filepath.Join(s.Path(), p)); !os.IsNotExist(err) {
			t.Errorf("%s exists: %v", p, err)
		}
	}
}
