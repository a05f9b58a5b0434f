package main

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.podman.io/storage/pkg/reexec"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/urfave/cli/v2"
)

func TestMain(m *testing.M) {
	if reexec.Init() { // containers-storage re-executes the test binary
		return
	}
	// The ostree CLI runs this test binary as its container extension (TestPodmanMachineContract).
	if filepath.Base(os.Args[0]) == ostreeContainerName {
		os.Exit(Main(context.Background(), os.Args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// run runs the CLI in-process and returns stdout, stderr and the exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), append([]string{"bootc"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := run(t, args...)
	if code != 0 {
		t.Fatalf("bootc %s: exit %d\n%s", strings.Join(args, " "), code, errs)
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// The plumbing prints what ostree prints, for the same tree, commit inputs and repo mode.
func TestOstreeCLIMatchesOstree(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	src := t.TempDir()
	testutil.FixtureTree(t, src)
	for _, mode := range []string{"bare-user", "archive"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			ours, theirs := filepath.Join(dir, "ours"), filepath.Join(dir, "theirs")
			commitArgs := []string{"-b", "x/y", "-s", "subject", "--body", "body", "--timestamp", "2021-01-01 00:00:00 UTC",
				"--add-metadata-string", "version=7", "--no-bindings", "--owner-uid", "0", "--owner-gid", "0"}
			mustRun(t, "ostree", "init", "--repo", ours, "--mode", mode)
			sum := lastLine(mustRun(t, append(append([]string{"ostree", "commit", "--repo", ours, "-q"}, commitArgs...), src)...))
			testutil.Run(t, "ostree", "init", "--repo="+theirs, "--mode="+mode)
			want := strings.TrimSpace(testutil.Run(t, "ostree", append(append([]string{"commit", "--repo=" + theirs}, commitArgs...), "--tree=dir="+src)...))
			if sum != want {
				t.Fatalf("commit printed %q, ostree made %s", sum, want)
			}
			for _, args := range [][]string{{"ls", "-R", "-C", "-X", "x/y"}, {"ls", "x/y", "/files"}, {"ls", "-d", "x/y", "/names"}, {"show", "x/y"}, {"refs"}} {
				got := mustRun(t, append([]string{"ostree", args[0], "--repo", ours}, args[1:]...)...)
				exp := testutil.Run(t, "ostree", append([]string{args[0], "--repo=" + theirs}, args[1:]...)...)
				if got != exp {
					t.Errorf("bootc ostree %s differs from ostree:\n%s", strings.Join(args, " "), testutil.FirstDiff("ostree", exp, "bootc", got))
				}
			}
			// Checkout of our own repository, by the CLI, reproduces the source.
			co := filepath.Join(dir, "co")
			mustRun(t, "ostree", "checkout", "--repo", ours, "x/y", co)
			if _, err := os.Stat(filepath.Join(co, "files")); err != nil {
				t.Fatal(err)
			}
			out := mustRun(t, "ostree", "fsck", "--repo", ours)
			if !strings.Contains(out, ": 0 problems") {
				t.Errorf("fsck: %s", out)
			}
		})
	}
}

func TestFsckExitCodeAndNames(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "file"), []byte("some content"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "other"), []byte("other content"), 0o644)
	mustRun(t, "ostree", "init", "--repo", repo, "--mode", "archive")
	mustRun(t, "ostree", "commit", "--repo", repo, "-b", "t", "-q", src)
	lsOut := mustRun(t, "ostree", "ls", "--repo", repo, "-R", "-C", "t")
	var fileSum, subTree string
	for _, line := range strings.Split(lsOut, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 6 && f[5] == "/file":
			fileSum = f[4]
		case len(f) == 7 && f[6] == "/sub":
			subTree = f[4]
		}
	}
	if fileSum == "" || subTree == "" {
		t.Fatalf("could not find objects in:\n%s", lsOut)
	}
	// Truncate one content object and delete one dirtree.
	if err := os.WriteFile(filepath.Join(repo, "objects", fileSum[:2], fileSum[2:]+".filez"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(repo, "objects", subTree[:2], subTree[2:]+".dirtree")); err != nil {
		t.Fatal(err)
	}
	out, errs, code := run(t, "ostree", "fsck", "--repo", repo)
	if code != 1 {
		t.Fatalf("fsck exit %d, want 1; stderr %s", code, errs)
	}
	if !strings.Contains(out, fileSum+".file") || !strings.Contains(out, subTree+".dirtree") || !strings.Contains(out, "object not found") || !strings.Contains(out, "corrupt object") {
		t.Errorf("fsck output does not name both problems:\n%s", out)
	}
	js, _, code := run(t, "ostree", "fsck", "--repo", repo, "--format", "json")
	if code != 1 || !strings.Contains(js, `"object":"`+subTree+`.dirtree"`) {
		t.Errorf("fsck --format json (exit %d): %s", code, js)
	}
}

func TestUsageErrors(t *testing.T) {
	repo := filepath.Join(t.TempDir(), "repo")
	mustRun(t, "ostree", "init", "--repo", repo, "--mode", "archive")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"ostree", "init", "--repo", repo, "--mode", "zip"}, "unknown repository mode"},
		{[]string{"ostree", "commit", "--repo", repo, "/"}, "a branch is required"},
		{[]string{"ostree", "commit", "--repo", repo, "-b", "x"}, "exactly one directory"},
		{[]string{"ostree", "commit", "--repo", repo, "-b", "x", "--timestamp", "yesterday", "/nonexistent"}, "timestamp"},
		{[]string{"ostree", "commit", "--repo", repo, "-b", "x", "--add-metadata-string", "novalue", "/nonexistent"}, "KEY=VALUE"},
		{[]string{"ostree", "checkout", "--repo", repo, "onlyone"}, "REF and DEST"},
		{[]string{"ostree", "show", "--repo", repo, "--format", "yaml", "x"}, "unknown --format"},
	} {
		_, errs, code := run(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--help") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q and --help", tc.args, code, errs, tc.want)
		}
	}
	_, errs, code := run(t, "ostree", "show", "--repo", filepath.Join(t.TempDir(), "none"), "x")
	if code != 1 || !strings.Contains(errs, "bootc ostree init") {
		t.Errorf("missing repo: exit %d, %q", code, errs)
	}
	_, errs, code = run(t, "ostree", "show", "--repo", repo, "no/such/ref")
	if code != 1 || !strings.Contains(errs, "ref not found: no/such/ref") {
		t.Errorf("missing ref: exit %d, %q", code, errs)
	}
}

// TestEveryCommandHasHelp walks the whole command tree: each command's --help shows its long
// help (help/NAME.txt) with examples that run that command, and every help file belongs to a
// command.
func TestEveryCommandHasHelp(t *testing.T) {
	used := map[string]bool{}
	var walk func(path []string, cmds []*cli.Command)
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden {
				continue
			}
			p := append(slices.Clone(path), c.Name)
			used[strings.Join(p, "-")] = true
			out := mustRun(t, append(p, "--help")...)
			if !strings.Contains(out, "Examples:") || !strings.Contains(out, "bootc "+strings.Join(p, " ")) {
				t.Errorf("bootc %s --help lacks examples of itself:\n%s", strings.Join(p, " "), out)
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, newApp(io.Discard, io.Discard).Commands)
	if out := mustRun(t, "--help"); !strings.Contains(out, "Examples:") {
		t.Errorf("bootc --help lacks examples:\n%s", out)
	}
	used["bootc"] = true
	files, err := fs.Glob(helpFiles, "help/*.txt")
	must(t, err)
	for _, f := range files {
		if name := strings.TrimSuffix(path.Base(f), ".txt"); !used[name] {
			t.Errorf("%s belongs to no command", f)
		}
	}
	if out := mustRun(t, "status", "--help"); strings.Contains(out, "--json ") {
		t.Errorf("status --help shows the hidden --json:\n%s", out)
	}
}
