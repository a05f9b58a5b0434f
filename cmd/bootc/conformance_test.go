package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/cliargs"
)

// TestCLIConformance checks that the command line behaves as users of clap and GOption tools
// (upstream bootc, ostree) expect: flags anywhere, global flags after the command, usage errors
// that exit 2 with one line on stderr naming what was wrong and what to do, nothing on stdout,
// help at every level, --version, and completion that runs no command.
func TestCLIConformance(t *testing.T) {
	t.Setenv("OSTREE_REPO", "")
	dir := t.TempDir()
	repo, src, empty := filepath.Join(dir, "repo"), filepath.Join(dir, "rootfs"), filepath.Join(dir, "empty")
	must(t, os.MkdirAll(filepath.Join(src, "usr/bin"), 0o755))
	must(t, os.Mkdir(empty, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "usr/bin/tool"), []byte("x"), 0o755))
	mustRun(t, "ostree", "init", "--repo", repo, "--mode", "bare-user")
	mustRun(t, "ostree", "commit", src, "--repo", repo, "-b", "x", "--timestamp", "@0", "-q") // flags after DIR

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string   // in stdout ("" with a non-zero code: stdout must be empty)
		errs []string // each in stderr: what was wrong, and what to do
	}{
		{"flags after positionals", []string{"ostree", "ls", "--repo", repo, "x", "/usr", "-R"}, 0, "/usr/bin/tool", nil},
		{"flags around positionals", []string{"ostree", "ls", "x", "--repo", repo, "/usr/bin", "-C"}, 0, "/usr/bin/tool", nil},
		{"-- ends the flags", []string{"ostree", "ls", "--repo", repo, "--", "x", "-R"}, 1, "", []string{"-R"}},
		{"global after command", []string{"status", "--sysroot", empty, "--format", "json"}, 0, `"booted": null`, nil},
		{"status on a non-bootc host", []string{"--sysroot", empty, "status", "--format", "yaml"}, 0, "booted: null", nil},
		{"status text on a non-bootc host", []string{"status", "--format", "text", "--sysroot", empty}, 0, "not installed by bootc", nil},
		{"status humanreadable", []string{"status", "--format", "humanreadable", "--sysroot", empty}, 0, "Install one with 'bootc install to-filesystem", nil},
		{"install flags after ROOT", []string{"install", "to-filesystem", empty, "--source-imgref", "nowhere"}, 2, "", []string{"no transport", "write docker://nowhere"}},
		{"global without value", []string{"--sysroot", "status"}, 2, "", []string{"--sysroot needs a value", "write --sysroot VALUE"}},
		{"flag without value at the end", []string{"status", "--format"}, 2, "", []string{"--format needs a value", "see 'bootc status --help'"}},
		{"flag typo", []string{"status", "--fromat", "json"}, 2, "", []string{"unknown flag --fromat", "did you mean --format?", "see 'bootc status --help'"}},
		{"flag typo in a subcommand", []string{"ostree", "ls", "--rpeo", repo, "x"}, 2, "", []string{"unknown flag --rpeo", "did you mean --repo?", "see 'bootc ostree ls --help'"}},
		{"unknown command", []string{"upgarde"}, 2, "", []string{"unknown command 'upgarde'", "did you mean 'upgrade'?", "see 'bootc --help'"}},
		{"unknown subcommand", []string{"ostree", "comit"}, 2, "", []string{"unknown command 'comit'", "did you mean 'commit'?", "see 'bootc ostree --help'"}},
		{"no command", nil, 2, "", []string{"no command given", "see 'bootc --help'"}},
		{"no subcommand", []string{"ostree"}, 2, "", []string{"needs a subcommand: init, commit", "see 'bootc ostree --help'"}},
		{"missing required flag", []string{"ostree", "ls", "x"}, 2, "", []string{"--repo is required", "give --repo VALUE"}},
		{"extra argument", []string{"rollback", "now"}, 2, "", []string{`unexpected argument "now"`, "rollback takes no arguments"}},
		{"bad --format", []string{"ostree", "show", "x", "--repo", repo, "--format", "xml"}, 2, "", []string{`unknown --format "xml"`, "use text, json"}},
		{"bad number", []string{"compose", "encapsulate", "--repo", repo, "--max-layers", "many", "x", "oci:/o"}, 2, "", []string{"max-layers", "see 'bootc compose encapsulate --help'"}},
		{"upper-case repository", []string{"install", "to-filesystem", "--source-imgref", "docker://quay.io/Org/os", empty}, 2, "", []string{`repository "Org/os" must be lower case`, "write quay.io/org/os"}},
		{"short digest", []string{"switch", "--sysroot", empty, "quay.io/org/os@sha256:abc"}, 2, "", []string{`digest "sha256:abc" is not sha256: followed by 64`, "or use a tag"}},
		{"help", []string{"help"}, 0, "bootc - build, ship and deploy", nil},
		{"help command", []string{"help", "status"}, 0, "bootc status - show the deployments", nil},
		{"help command subcommand", []string{"help", "install", "to-disk"}, 0, "bootc install to-disk - partition a disk", nil},
		{"command help subcommand", []string{"ostree", "help", "ls"}, 0, "bootc ostree ls - list the files", nil},
		{"--help anywhere", []string{"ostree", "ls", "x", "--help"}, 0, "bootc ostree ls - list the files", nil},
		{"help unknown command", []string{"help", "upgarde"}, 2, "", []string{"unknown command 'upgarde'", "did you mean 'upgrade'?"}},
		{"--version", []string{"--version"}, 0, "bootc ", nil},
		{"version", []string{"version"}, 0, "go: go1.", nil},
		{"required flags marked", []string{"install", "to-disk", "--help"}, 0, "the image to install (required)", nil},
		{"transports listed", []string{"compose", "image", "--help"}, 0, "oci-archive: or containers-storage:", nil},
		{"completion bash", []string{"completion", "bash"}, 0, "complete -F _bootc bootc", nil},
		{"completion zsh", []string{"completion", "zsh"}, 0, "#compdef bootc", nil},
		{"completion fish", []string{"completion", "fish"}, 0, "complete -c bootc", nil},
		{"completion of another shell", []string{"completion", "tcsh"}, 2, "", []string{`no completion for shell "tcsh"`, "use bash, zsh or fish"}},
		{"complete a command", []string{"sw", cliargs.CompletionFlag}, 0, "switch\n", nil},
		{"complete a subcommand", []string{"ostree", "c", cliargs.CompletionFlag}, 0, "commit\ncheckout\n", nil},
		{"complete a flag", []string{"status", "--sysroot", empty, "--for", cliargs.CompletionFlag}, 0, "--format\n--format-version\n", nil},
		{"keep-deployments", []string{"switch", "--help"}, 0, "--keep-deployments", nil},
		{"quiet switch", []string{"switch", "--help"}, 0, "--quiet, -q", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs, code := run(t, tc.args...)
			if code != tc.code {
				t.Fatalf("bootc %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, out, errs)
			}
			if !strings.Contains(out, tc.out) {
				t.Errorf("stdout lacks %q:\n%s", tc.out, out)
			}
			if code != 0 && out != "" {
				t.Errorf("an error printed on stdout (it must stay clean for | jq): %q", out)
			}
			if code == 2 && strings.Count(errs, "\n") != 1 {
				t.Errorf("a usage error takes one line on stderr, got %q", errs)
			}
			for _, w := range tc.errs {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr lacks %q: %q", w, errs)
				}
			}
		})
	}
}

// Completing never runs a command: after '--' (where urfave's stock script ran the command) the
// completion of 'switch' pulls nothing, prints nothing and fails nothing, even for an image that
// does not exist on a host that is no sysroot.
func TestCompletionRunsNothing(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{
		{"switch", "--sysroot", empty, "--", "", cliargs.CompletionFlag},
		{"switch", "--sysroot", empty, "--", "docker://127.0.0.1:1/nothing", cliargs.CompletionFlag},
		{cliargs.CompletionFlag, "upgrade", "--sysroot", empty},
		{"install", "to-filesystem", "--source-imgref", "docker://127.0.0.1:1/x", empty, "", cliargs.CompletionFlag},
		{"status", "--sysroot", "", cliargs.CompletionFlag},
	} {
		out, errs, code := run(t, args...)
		if code != 0 || errs != "" || strings.Contains(out, "error") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("completion wrote into the sysroot: %v", entries)
	}
	out, _, _ := run(t, "switch", "--", "", cliargs.CompletionFlag)
	if out != "" {
		t.Errorf("completion after -- offered %q; it must leave file names to the shell", out)
	}
}

// upstream bootc's switch --retain means something else: ours is --keep-deployments, and the old
// spelling still works with a note on stderr.
func TestSwitchRetainIsDeprecated(t *testing.T) {
	_, errs, code := run(t, "switch", "--retain", "--sysroot", t.TempDir(), "docker://quay.io/org/os")
	if code == 0 || !strings.Contains(errs, "--retain is deprecated") || !strings.Contains(errs, "use --keep-deployments") {
		t.Errorf("exit %d, stderr %q", code, errs)
	}
}
