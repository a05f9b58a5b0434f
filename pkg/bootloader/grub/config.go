package grub

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ConfigFormat is the version of the grub.cfg Config writes, stated in its first line.
const ConfigFormat = 1

// DefaultTimeout is how long the menu waits by default, as on Fedora CoreOS.
const DefaultTimeout = time.Second

// MaxBootAttempts is the highest boot_counter the menu counts down from: GRUB 2.06 has no
// arithmetic, so every step is a line of the menu.
const MaxBootAttempts = 10

// modules are the GRUB modules the menu uses (partition maps and filesystems GRUB reads /boot
// from included). Modules returns them.
var modules = []string{"part_gpt", "ext2", "xfs", "fat", "linux", "loadenv", "test", "regexp", "echo", "serial", "terminal"}

// Modules lists the GRUB modules the generated menu loads with insmod. A core image should embed
// them: GRUB otherwise looks for them as files in its prefix directory.
func Modules() []string { return slices.Clone(modules) }

// MenuEntry is a boot entry of the menu, as its Boot Loader Specification entry says it.
type MenuEntry struct {
	// ID names the entry for GRUB (menuentry --id; ${chosen} while it boots). Required, unique;
	// it should stay the same for the same deployment when the menu is written again.
	ID string
	// Title is the menu's text.
	Title string
	// Linux and Initrd are the paths of the kernel and initramfs images, relative to the
	// filesystem that holds /boot, as in a BLS entry (see Config for how GRUB gets them).
	// Initrd may be empty.
	Linux  string
	Initrd []string
	// Options is the kernel command line, as in a BLS entry.
	Options string
}

// ConfigOptions configures Config.
type ConfigOptions struct {
	// Timeout is how long the menu waits before booting the default, in whole seconds (rounded
	// up). 0 means DefaultTimeout; a negative value boots at once.
	Timeout time.Duration
	// BootAttempts is the highest boot_counter the menu counts down from: 0 means
	// MaxBootAttempts, which is also the limit. A counter above it counts as BootAttempts.
	BootAttempts int
}

// Config returns a grub.cfg that boots entries, the default first and the rollback second, with
// the boot counting of the package documentation. In order it: loads Modules; shows the menu on
// the first serial port (115200 baud) and the console, so a machine with only a serial console
// sees it; sets the timeout; runs the boot counter; and lists one menuentry per entry with
// `linux <path> <options>` and, when the entry has an initramfs, `initrd <paths>`.
//
// GRUB's $root is the root filesystem, set by the early config of the core image, and /boot is
// a directory of it. BLS paths are relative to the filesystem holding /boot, so a path is
// prefixed with /boot unless it starts with /boot/ already (entries written with
// sysroot.bootprefix=true: /boot/boot -> . makes such a path valid from a separate /boot too).
//
// Everything taken from the entries is quoted for GRUB's shell: titles and IDs in single quotes
// (a single quote closes them, comes escaped and reopens them); paths and options with a
// backslash before each character GRUB's shell treats specially ($ ; | & < > { } ' # \ and,
// inside double quotes, $ and \). Double quotes in options stay: GRUB groups a quoted argument
// as the kernel does, and passes it on quoted. An option string with an unbalanced double quote,
// or any text with a line break, is refused: GRUB could not parse the menu.
func Config(entries []MenuEntry, o ConfigOptions) ([]byte, error) {
	if len(entries) == 0 {
		return nil, errors.New("GRUB menu: no entries; a sysroot needs at least one deployment to boot")
	}
	attempts := o.BootAttempts
	if attempts == 0 {
		attempts = MaxBootAttempts
	}
	if attempts < 1 || attempts > MaxBootAttempts {
		return nil, fmt.Errorf("GRUB menu: %d boot attempts: the menu counts from 1 to %d", o.BootAttempts, MaxBootAttempts)
	}
	timeout := o.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	seconds := max(0, int((timeout+time.Second-1)/time.Second))

	var b strings.Builder
	fmt.Fprintf(&b, "# bootc grub.cfg format %d, generated from the BLS entries of this boot version.\n", ConfigFormat)
	b.WriteString("# Rewritten on every deployment change: edits here are lost.\n")
	for _, m := range modules {
		b.WriteString("insmod " + m + "\n")
	}
	b.WriteString("serial --unit=0 --speed=115200\n")
	b.WriteString("terminal_input serial console\n")
	b.WriteString("terminal_output serial console\n")
	fmt.Fprintf(&b, "set timeout=%d\n", seconds)
	writeCounter(&b, attempts)

	ids := map[string]bool{}
	for i, e := range entries {
		if err := writeEntry(&b, e, ids); err != nil {
			return nil, fmt.Errorf("GRUB menu entry %d (%q): %w", i, e.Title, err)
		}
	}
	return []byte(b.String()), nil
}

// writeCounter writes the boot counting of the package documentation.
func writeCounter(b *strings.Builder, attempts int) {
	b.WriteString(`
# Boot counting: boot_counter counts the default's boot attempts down; at 0 the rollback
# (entry 1) boots and the counter stays -1. Userspace marks a good boot with boot_success=1 and
# unsets boot_counter.
set default=0
load_env boot_counter boot_success
if [ -n "${boot_counter}" -a "${boot_success}" = "0" ]; then
	if [ "${boot_counter}" = "0" -o "${boot_counter}" = "-1" ]; then
		set default=1
		set boot_counter=-1
		echo "The default deployment failed to boot: booting the rollback."
`)
	for n := 1; n <= attempts; n++ {
		fmt.Fprintf(b, "\telif [ \"${boot_counter}\" = \"%d\" ]; then\n\t\tset boot_counter=%d\n", n, n-1)
	}
	fmt.Fprintf(b, "\telse\n\t\tset boot_counter=%d\n", attempts-1)
	b.WriteString(`	fi
	save_env boot_counter
fi
set boot_success=0
save_env boot_success
`)
}

// writeEntry writes one menuentry.
func writeEntry(b *strings.Builder, e MenuEntry, ids map[string]bool) error {
	if e.ID == "" {
		return errors.New("no ID")
	}
	if ids[e.ID] {
		return fmt.Errorf("ID %q is used twice", e.ID)
	}
	ids[e.ID] = true
	for _, s := range append([]string{e.ID, e.Title, e.Linux, e.Options}, e.Initrd...) {
		if strings.ContainsAny(s, "\n\r\x00") {
			return fmt.Errorf("%q holds a line break or NUL", s)
		}
	}
	linux, err := bootPath(e.Linux)
	if err != nil {
		return fmt.Errorf("linux: %w", err)
	}
	opts, err := quoteOptions(e.Options)
	if err != nil {
		return err
	}
	fmt.Fprintf(b, "\nmenuentry %s --id %s {\n\tlinux %s", singleQuote(e.Title), singleQuote(e.ID), linux)
	if opts != "" {
		b.WriteString(" " + opts)
	}
	b.WriteString("\n")
	if len(e.Initrd) > 0 {
		b.WriteString("\tinitrd")
		for _, p := range e.Initrd {
			q, err := bootPath(p)
			if err != nil {
				return fmt.Errorf("initrd: %w", err)
			}
			b.WriteString(" " + q)
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return nil
}

// bootPath returns the path GRUB reads a BLS path from, quoted: see Config.
func bootPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	if !strings.HasPrefix(p, "/boot/") {
		p = "/boot" + p
	}
	return quoteWord(p), nil
}

// singleQuote quotes s for GRUB's shell: in single quotes; a single quote closes them, comes
// escaped with a backslash, and reopens them.
func singleQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// grubSpecial are the characters that end or change a word in GRUB's shell outside quotes
// (grub-core/script/yylex.l); '#' starts a comment at the beginning of a word.
const grubSpecial = "{}|&$;<>'\"\\# \t"

// quoteWord escapes the special characters of s with backslashes, so GRUB reads it as one word.
func quoteWord(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(grubSpecial, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// quoteOptions escapes a kernel command line for GRUB's shell, so that GRUB's linux command
// receives the arguments the kernel would parse from it: blanks still separate arguments,
// double quotes still group, and every other special character is literal.
func quoteOptions(s string) (string, error) {
	var b strings.Builder
	inQuote := false
	for _, c := range s {
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == ' ' || c == '\t':
			// A separator outside double quotes, literal inside.
		case inQuote && (c == '$' || c == '\\'):
			b.WriteByte('\\')
		case !inQuote && strings.ContainsRune(grubSpecial, c):
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	if inQuote {
		return "", fmt.Errorf("options %q: a double quote is not closed", s)
	}
	return strings.TrimSpace(b.String()), nil
}
