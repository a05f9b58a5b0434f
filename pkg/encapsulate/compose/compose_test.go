package compose

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/encapsulate"
	"github.com/bootc-go/bootc/pkg/encapsulate/bootable"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/transport"
)

var fixedTime = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// rootfs writes a small bootable tree: a Debian-style kernel in /boot, os-release, some files.
func rootfs(t *testing.T) string {
	t.Helper()
	r := filepath.Join(t.TempDir(), "rootfs")
	testutil.WriteFiles(t, r, map[string]string{
		"boot/vmlinuz-6.1.0-lib":                "KERNEL",
		"usr/lib/modules/6.1.0-lib/modules.dep": "",
		"usr/lib/os-release":                    "ID=libtest\nVERSION_ID=2\n",
		"usr/bin/tool":                          "#!/bin/sh\n",
		"etc/hostname":                          "lib\n",
	})
	return r
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) option() Option {
	return WithProgress(func(e Event) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events = append(r.events, e)
	})
}

// find returns the first event of type T.
func find[T Event](r *recorder) (T, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if v, ok := e.(T); ok {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func TestCommit(t *testing.T) {
	ctx := t.Context()
	repoPath := filepath.Join(t.TempDir(), "repo")
	var rec recorder
	opts := []Option{WithCommit(bootable.WithBranch("os/x")), WithTimestamp(fixedTime), rec.option()}
	sum, err := Commit(ctx, repoPath, rootfs(t), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := find[RepoCreated](&rec); !ok || e.Path != repoPath || e.Mode != ostree.ModeBareUser {
		t.Errorf("RepoCreated event %+v (%v)", e, ok)
	}
	if _, ok := find[CommitProgress](&rec); !ok {
		t.Error("no CommitProgress event")
	}
	repo, err := ostree.Open(ctx, repoPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.ReadCommit(sum)
	if err != nil {
		t.Fatal(err)
	}
	if c.Timestamp != uint64(fixedTime.Unix()) {
		t.Errorf("timestamp %d, want %d", c.Timestamp, fixedTime.Unix())
	}
	if head, err := repo.ReadRef("os/x"); err != nil || head != sum {
		t.Errorf("os/x = %s, %v; want %s", head, err, sum)
	}

	// An existing repository is used as it is, without a RepoCreated event.
	var again recorder
	if _, err := Commit(ctx, repoPath, rootfs(t), WithCommit(bootable.WithBranch("os/y")), again.option()); err != nil {
		t.Fatal(err)
	}
	if _, ok := find[RepoCreated](&again); ok {
		t.Error("RepoCreated for an existing repository")
	}

	// A missing rootfs is refused before a repository is created.
	other := filepath.Join(t.TempDir(), "other")
	if _, err := Commit(ctx, other, filepath.Join(t.TempDir(), "missing")); !errors.Is(err, ErrRootfs) {
		t.Errorf("missing rootfs: %v, want ErrRootfs", err)
	}
	if _, err := os.Stat(other); err == nil {
		t.Error("a missing rootfs created the repository")
	}
}

// Image builds the same image twice (same digest), the second time keeping the layer assignment
// of the image it finds at the target; Encapsulate of the same commit gives the same image.
func TestImageKeepsPreviousBuild(t *testing.T) {
	ctx := t.Context()
	src := Source{Rootfs: rootfs(t)}
	layout := filepath.Join(t.TempDir(), "out")
	target := imgref.Ref{Transport: imgref.OCI, Name: layout, Tag: "1"}
	repoPath := filepath.Join(t.TempDir(), "repo")
	// No branch: the second commit has no parent either, so it is the first one again.
	opts := []Option{WithTimestamp(fixedTime), WithRepo(repoPath), WithTempDir(t.TempDir())}

	var first recorder
	res1, err := Image(ctx, src, target, append(opts, first.option())...)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := find[PriorBuildKept](&first); ok {
		t.Error("first build kept a previous build")
	}
	if _, ok := find[PriorBuildUnreadable](&first); ok {
		t.Error("a target that does not exist yet was reported unreadable")
	}
	if _, ok := find[LayerProgress](&first); !ok {
		t.Error("no LayerProgress event")
	}
	if res1.Layers < 2 || res1.Commit.IsZero() {
		t.Errorf("result %+v", res1)
	}

	var second recorder
	res2, err := Image(ctx, src, target, append(opts, second.option())...)
	if err != nil {
		t.Fatal(err)
	}
	if e, ok := find[PriorBuildKept](&second); !ok || e.Layers != res1.Layers-1 || e.Ref != target {
		t.Errorf("PriorBuildKept %+v (%v), want %d chunk layers of %s", e, ok, res1.Layers-1, target)
	}
	if res2.Digest != res1.Digest || res2.Commit != res1.Commit {
		t.Errorf("second build %s, first %s", res2.Digest, res1.Digest)
	}

	// Encapsulate the commit Image left in the kept repository.
	enc := imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "enc"), Tag: "1"}
	res3, err := Encapsulate(ctx, repoPath, res1.Commit.String(), enc, WithPreviousBuild(target))
	if err != nil {
		t.Fatal(err)
	}
	if res3.Digest != res1.Digest || res3.Commit != res1.Commit {
		t.Errorf("Encapsulate gave %+v, Image %+v", res3, res1)
	}
}

// A single-layer image at the target is not a chunked build: it is reported, and layers are
// planned afresh; as an explicit previous build it is an error.
func TestPreviousBuildNotChunked(t *testing.T) {
	ctx := t.Context()
	src := Source{Rootfs: rootfs(t)}
	target := imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "out"), Tag: "1"}
	single := imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "single"), Tag: "1"}
	for _, ref := range []imgref.Ref{target, single} {
		if _, err := Image(ctx, src, ref, WithImage(encapsulate.WithMaxLayers(1)), WithTempDir(t.TempDir())); err != nil {
			t.Fatal(err)
		}
	}
	var rec recorder
	if _, err := Image(ctx, src, target, WithTempDir(t.TempDir()), rec.option()); err != nil {
		t.Fatal(err)
	}
	if e, ok := find[PriorBuildNotChunked](&rec); !ok || e.Err == nil {
		t.Errorf("PriorBuildNotChunked %+v (%v)", e, ok)
	}
	other := imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "other"), Tag: "1"}
	if _, err := Image(ctx, src, other, WithPreviousBuild(single), WithTempDir(t.TempDir())); err == nil {
		t.Error("a single-layer previous build was accepted")
	}
}

// An image source is flattened; its creation time is the commit time unless WithTimestamp gives
// one; the scratch data is gone afterwards.
func TestImageFromSource(t *testing.T) {
	ctx := t.Context()
	created := time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)
	base := imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "base"), Tag: "1"}
	if _, err := Image(ctx, Source{Rootfs: rootfs(t)}, base, WithTimestamp(created)); err != nil {
		t.Fatal(err)
	}
	unpack := Source{From: &base}
	tmp := t.TempDir()
	for _, tc := range []struct {
		name string
		opts []Option
		want time.Time
	}{
		{"creation time", nil, created},
		{"timestamp option", []Option{WithTimestamp(fixedTime)}, fixedTime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			target := imgref.Ref{Transport: imgref.OCI, Name: filepath.Join(t.TempDir(), "out"), Tag: "1"}
			if _, err := Image(ctx, unpack, target, append(tc.opts, WithTempDir(tmp))...); err != nil {
				t.Fatal(err)
			}
			img, err := transport.Read(ctx, target, transport.DefaultPlatform())
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if !cf.Created.Time.Equal(tc.want) {
				t.Errorf("image created %s, want %s", cf.Created.Time, tc.want)
			}
		})
	}
	if entries, err := os.ReadDir(tmp); err != nil || len(entries) != 0 {
		t.Errorf("scratch left behind: %v, %v", entries, err)
	}
	if _, err := Image(ctx, Source{}, imgref.Ref{Transport: imgref.OCI, Name: tmp}); err == nil {
		t.Error("an empty source was accepted")
	}
}
