package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/ostree"
)

// kernelRootfs makes a small rootfs with a Debian-style kernel in /boot.
func kernelRootfs(t *testing.T) string {
	t.Helper()
	r := filepath.Join(t.TempDir(), "rootfs")
	testutil.WriteFiles(t, r, map[string]string{
		"boot/vmlinuz-6.1.0-cli":                "KERNEL",
		"boot/initrd.img-6.1.0-cli":             "INITRD",
		"usr/lib/modules/6.1.0-cli/modules.dep": "",
		"usr/lib/os-release":                    "ID=clitest\nVERSION_ID=3\n",
		"etc/hostname":                          "cli\n",
		"var/lib/state":                         "x\n",
	})
	return r
}

var checksumLine = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestComposeCommit(t *testing.T) {
	rootfs := kernelRootfs(t)
	repoPath := filepath.Join(t.TempDir(), "repo")
	out, errs, code := run(t, "compose", "commit", "--rootfs", rootfs, "--repo", repoPath, "-b", "cli/test",
		"-s", "subject", "--timestamp", "2024-05-01T00:00:00Z", "--add-metadata-string", "build=7", "--no-bindings")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	sum := lastLine(out)
	if !checksumLine.MatchString(sum) {
		t.Fatalf("last stdout line %q is not a checksum; stdout:\n%s", sum, out)
	}
	if !strings.Contains(errs, "created repository "+repoPath+" in mode bare-user") || !strings.Contains(errs, "6.1.0-cli") {
		t.Errorf("stderr does not report the new repository and the kernel:\n%s", errs)
	}
	repo, err := ostree.Open(t.Context(), repoPath)
	if err != nil {
		t.Fatal(err)
	}
	if repo.Mode() != ostree.ModeBareUser {
		t.Errorf("repository mode %s", repo.Mode())
	}
	if head, err := repo.ReadRef("cli/test"); err != nil || head.String() != sum {
		t.Errorf("cli/test = %v, %v; printed %s", head, err, sum)
	}
	c, err := repo.ReadCommit(parseChecksum(t, sum))
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, e := range c.Metadata {
		keys = append(keys, e.Key)
	}
	if got := strings.Join(keys, ","); got != "build,version,ostree.bootable,ostree.linux" {
		t.Errorf("metadata keys %s", got)
	}
	if v, _ := c.Metadata.String("ostree.linux"); v != "6.1.0-cli" {
		t.Errorf("ostree.linux %q", v)
	}
	if v, _ := c.Metadata.String("version"); v != "3" {
		t.Errorf("version %q", v)
	}
	if c.Subject != "subject" || c.Timestamp != 1714521600 {
		t.Errorf("subject %q, timestamp %d", c.Subject, c.Timestamp)
	}

	// Again into the now existing repository, quietly and with --version: nothing on stderr, and
	// the same inputs give the same tree.
	out, errs, code = run(t, "compose", "commit", "-q", "--rootfs", rootfs, "--repo", repoPath, "-b", "cli/other",
		"--version", "3.1", "--timestamp", "@1714521600")
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	c2, err := repo.ReadCommit(parseChecksum(t, lastLine(out)))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := c2.Metadata.String("version"); v != "3.1" || c2.RootTree != c.RootTree {
		t.Errorf("second commit: version %q, root tree %s (first %s)", v, c2.RootTree, c.RootTree)
	}
}

func TestComposeCommitErrors(t *testing.T) {
	rootfs := kernelRootfs(t)
	repo := filepath.Join(t.TempDir(), "repo")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--repo", repo, "-b", "x"}, "--rootfs is required"},
		{[]string{"--rootfs", rootfs, "-b", "x"}, "--repo is required"},
		{[]string{"--rootfs", rootfs, "--repo", repo}, "--branch is required"},
		{[]string{"--rootfs", rootfs, "--repo", repo, "-b", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"--rootfs", rootfs, "--repo", repo, "-b", "x", "--timestamp", "soon"}, "timestamp"},
		{[]string{"--rootfs", rootfs, "--repo", repo, "-b", "x", "--add-metadata-string", "k"}, "KEY=VALUE"},
		{[]string{"--rootfs", rootfs, "--repo", repo, "-b", "x", "--no-such-flag"}, "no-such-flag"},
	} {
		t.Setenv("OSTREE_REPO", "")
		_, errs, code := run(t, append([]string{"compose", "commit"}, tc.args...)...)
		if code != 2 || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--help") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 mentioning %q and --help", tc.args, code, errs, tc.want)
		}
	}
	if _, err := os.Stat(repo); err == nil {
		t.Error("a usage error created the repository")
	}

	// Failures of the commit itself exit 1 and say what is wrong.
	if err := os.Remove(filepath.Join(rootfs, "boot/vmlinuz-6.1.0-cli")); err != nil {
		t.Fatal(err)
	}
	_, errs, code := run(t, "compose", "commit", "-q", "--rootfs", rootfs, "--repo", repo, "-b", "x")
	if code != 1 || !strings.Contains(errs, "no kernel found") || !strings.Contains(errs, "linux-image-amd64") {
		t.Errorf("no kernel: exit %d, stderr %q", code, errs)
	}
	_, errs, code = run(t, "compose", "commit", "-q", "--rootfs", filepath.Join(rootfs, "missing"), "--repo", repo+"2", "-b", "x")
	if code != 1 || !strings.Contains(errs, "--rootfs") {
		t.Errorf("missing rootfs: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat(repo + "2"); err == nil {
		t.Error("a missing rootfs created the repository")
	}
}

func parseChecksum(t *testing.T, s string) ostree.Checksum {
	t.Helper()
	c, err := ostree.ParseChecksum(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// SOURCE_DATE_EPOCH, read by the CLI and passed down as the commit time, gives the commit
// --timestamp gives; --timestamp wins over it; a bad value is an error.
func TestSourceDateEpoch(t *testing.T) {
	rootfs := kernelRootfs(t)
	for _, cmd := range []string{"compose", "ostree"} {
		t.Run(cmd, func(t *testing.T) {
			// Each commit goes to a new repository, so that none has a parent.
			commit := func(extra ...string) []string {
				repo := filepath.Join(t.TempDir(), "repo")
				if cmd == "ostree" {
					mustRun(t, "ostree", "init", "--repo", repo, "--mode", "bare-user")
					return append(append([]string{"ostree", "commit", "-q", "--repo", repo, "-b", "x"}, extra...), rootfs)
				}
				return append([]string{"compose", "commit", "-q", "--rootfs", rootfs, "--repo", repo, "-b", "x"}, extra...)
			}
			t.Setenv("SOURCE_DATE_EPOCH", "")
			want := lastLine(mustRun(t, commit("--timestamp", "@1700000000")...))
			t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
			if got := lastLine(mustRun(t, commit()...)); got != want {
				t.Errorf("with SOURCE_DATE_EPOCH: %s, want %s (as --timestamp)", got, want)
			}
			if got := lastLine(mustRun(t, commit("--timestamp", "@1700000001")...)); got == want {
				t.Error("--timestamp did not win over SOURCE_DATE_EPOCH")
			}
			t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
			if _, errs, code := run(t, commit()...); code != 1 || !strings.Contains(errs, `SOURCE_DATE_EPOCH="yesterday"`) {
				t.Errorf("bad SOURCE_DATE_EPOCH: exit %d, %q", code, errs)
			}
		})
	}
}
