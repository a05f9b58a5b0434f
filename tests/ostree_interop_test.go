// Package tests holds end-to-end suites that drive the real tools. This file checks the OSTree
// core against the real `ostree` CLI (Debian's 2022.7): same checksums, same `ostree ls` listing,
// `ostree fsck` accepts what we write, and each side checks out what the other wrote.
package tests

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/treediff"
	"github.com/bootc-go/bootc/pkg/ostree"
)

var interopModes = []struct {
	ostree string // ostree init --mode
	mode   ostree.RepoMode
}{
	{"bare", ostree.ModeBare},
	{"bare-user", ostree.ModeBareUser},
	{"archive", ostree.ModeArchive},
}

func ostreeCLI(t *testing.T, args ...string) string {
	t.Helper()
	return testutil.Run(t, "ostree", args...)
}

func TestOstreeInteropFixture(t *testing.T) {
	testutil.RequireTool(t, "ostree")
	src := t.TempDir()
	testutil.FixtureTree(t, src)
	runInterop(t, src)
}

func TestOstreeInteropDebian(t *testing.T) {
	testutil.RequireTool(t, "ostree", "debootstrap")
	src := testutil.DebianTree(t)
	runInterop(t, src)
}

func runInterop(t *testing.T, src string) {
	ctx := context.Background()
	ts := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range interopModes {
		t.Run(m.ostree, func(t *testing.T) {
			dir := t.TempDir()
			theirs := filepath.Join(dir, "theirs")
			ours := filepath.Join(dir, "ours")

			// The same tree, committed by ostree and by us with the same inputs.
			ostreeCLI(t, "init", "--repo="+theirs, "--mode="+m.ostree)
			out := ostreeCLI(t, "commit", "--repo="+theirs, "-b", "test/ref", "--tree=dir="+src,
				"--no-bindings", "--timestamp=2021-01-01 00:00:00 UTC", "-s", "interop subject",
				"--body", "a body\nof two lines", "--add-metadata-string=version=42.1",
				"--add-metadata-string=k=ünïcødé")
			want := strings.TrimSpace(out)
			repo, err := ostree.Init(ctx, ours, m.mode)
			if err != nil {
				t.Fatal(err)
			}
			got, err := repo.CommitDir(ctx, src, ostree.WithBranch("test/ref"), ostree.WithoutBindings(),
				ostree.WithTimestamp(ts), ostree.WithSubject("interop subject"),
				ostree.WithBody("a body\nof two lines"), ostree.WithMetadataString("version", "42.1"),
				ostree.WithMetadataString("k", "ünïcødé"))
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != want {
				t.Errorf("commit checksum: ours %s, ostree's %s", got, want)
			}

			// ostree lists our commit exactly as its own.
			lsTheirs := ostreeCLI(t, "ls", "--repo="+theirs, "-R", "-C", "-X", "test/ref")
			lsOurs := ostreeCLI(t, "ls", "--repo="+ours, "-R", "-C", "-X", "test/ref")
			if lsTheirs != lsOurs {
				t.Errorf("ostree ls differs:\n%s", testutil.FirstDiff("ostree", lsTheirs, "ours", lsOurs))
			}
			if n := strings.Count(lsOurs, "\n"); n < 50 {
				t.Errorf("ostree ls listed only %d entries", n)
			}

			// ostree accepts our repository and checks our commit out.
			ostreeCLI(t, "fsck", "--repo="+ours)
			coTheirs := filepath.Join(dir, "ostree-checkout-of-ours")
			ostreeCLI(t, "checkout", "--repo="+ours, "test/ref", coTheirs)
			assertSameTree(t, src, coTheirs)

			// We read what ostree wrote: fsck finds nothing, checkout reproduces the source.
			rep, err := mustOpen(t, theirs).Fsck(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) != 0 || rep.Files == 0 {
				t.Errorf("our fsck of ostree's repo: %d files, problems %v", rep.Files, rep.Problems)
			}
			coOurs := filepath.Join(dir, "our-checkout-of-theirs")
			if err := mustOpen(t, theirs).Checkout(ctx, "test/ref", coOurs); err != nil {
				t.Fatal(err)
			}
			assertSameTree(t, src, coOurs)
			// The commit metadata reads back.
			c, err := mustOpen(t, theirs).ReadCommit(got)
			if err != nil {
				t.Fatal(err)
			}
			if v, _ := c.Metadata.String("version"); v != "42.1" || c.Subject != "interop subject" {
				t.Errorf("ostree's commit read back as version %q subject %q", v, c.Subject)
			}
		})
	}
}

func mustOpen(t *testing.T, path string) *ostree.Repo {
	t.Helper()
	r, err := ostree.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func assertSameTree(t *testing.T, want, got string) {
	t.Helper()
	diffs, err := treediff.Diff(want, got, treediff.Options{IgnoreRootMeta: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) > 0 {
		if len(diffs) > 20 {
			diffs = append(diffs[:20], "…")
		}
		t.Errorf("checkout %s differs from %s:\n%s", got, want, strings.Join(diffs, "\n"))
	}
}
