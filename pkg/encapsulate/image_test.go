package encapsulate

import (
	"archive/tar"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/treediff"
	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/ostreecontainer"
)

var fixedTime = ostree.WithTimestamp(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC))

// commitFixture commits the interoperability fixture tree (with user.component xattrs on one
// directory) and returns the repo, the commit and the source tree.
func commitFixture(t *testing.T) (*ostree.Repo, ostree.Checksum, string) {
	t.Helper()
	src := t.TempDir()
	testutil.FixtureTree(t, src)
	repo, err := ostree.Init(context.Background(), filepath.Join(t.TempDir(), "repo"), ostree.ModeBareUser)
	if err != nil {
		t.Fatal(err)
	}
	c, err := repo.CommitDir(context.Background(), src, fixedTime, ostree.WithBranch("fixture"), ostree.WithSubject("fixture tree"),
		ostree.WithMetadataString("version", "1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	return repo, c, src
}

// importImage reads every layer of img back into a new repository with the importer, as a host
// would, and returns it.
func importImage(t *testing.T, img v1.Image) *ostree.Repo {
	t.Helper()
	ctx := context.Background()
	dst, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "imported"), ostree.ModeArchive)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		st, err := imagestore.ImportObjects(tx, rc)
		rc.Close()
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if i > 0 && st.MetadataObjects != 0 {
			t.Errorf("chunk layer %d holds %d metadata objects", i, st.MetadataObjects)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return dst
}

func TestRoundTrip(t *testing.T) {
	ctx := context.Background()
	repo, c, src := commitFixture(t)
	img, err := Build(ctx, repo, "fixture", WithMaxLayers(8), WithLabels(map[string]string{"extra": "yes"}))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	if err := validate.Image(img); err != nil {
		t.Fatalf("invalid image: %v", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	labels := cf.Config.Labels
	if labels[ostreecontainer.LabelCommit] != c.String() || labels[ostreecontainer.LabelVersion] != "1.2.3" || labels["extra"] != "yes" {
		t.Errorf("labels = %v", labels)
	}
	if _, ok := labels[ostreecontainer.LabelBootable]; ok {
		t.Error("a commit without ostree.bootable got the bootable label")
	}
	m, _ := img.Manifest()
	if m.Annotations[ostreecontainer.LabelCommit] != c.String() {
		t.Errorf("manifest annotations = %v", m.Annotations)
	}
	if len(m.Layers) < 3 || len(m.Layers) > 8 {
		t.Fatalf("%d layers, want 3..8", len(m.Layers))
	}
	for i, l := range m.Layers[1:] {
		if _, ok := l.Annotations[ostreecontainer.AnnotationComponents]; !ok {
			t.Errorf("layer %d has no %s annotation", i+1, ostreecontainer.AnnotationComponents)
		}
	}
	last, _ := img.Layers()
	finalDiff, _ := last[len(last)-1].DiffID()
	if labels[ostreecontainer.LabelFinalDiffID] != finalDiff.String() {
		t.Errorf("final diffid label %s, last layer %s", labels[ostreecontainer.LabelFinalDiffID], finalDiff)
	}
	if cf.History[0].CreatedBy != "fixture tree" || !cf.Created.Time.Equal(time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("history[0] %q, created %v", cf.History[0].CreatedBy, cf.Created)
	}

	// Every object comes back under its name, the commit fscks clean and checks out as the source.
	dst := importImage(t, img)
	if err := dst.SetRef("imported", c); err != nil {
		t.Fatal(err)
	}
	rep, err := dst.Fsck(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) != 0 {
		t.Fatalf("fsck of the imported image: %v", rep.Problems)
	}
	orig, _ := repo.Fsck(ctx)
	if rep.Files != orig.Files || rep.DirTrees != orig.DirTrees || rep.DirMetas != orig.DirMetas {
		t.Errorf("imported %d files %d dirtrees %d dirmetas; the commit has %d %d %d", rep.Files, rep.DirTrees, rep.DirMetas, orig.Files, orig.DirTrees, orig.DirMetas)
	}
	out := filepath.Join(t.TempDir(), "co")
	if err := dst.Checkout(ctx, "imported", out); err != nil {
		t.Fatal(err)
	}
	diffs, err := treediff.Diff(src, out, treediff.Options{IgnoreRootMeta: true})
	if err != nil || len(diffs) != 0 {
		t.Fatalf("checkout of the imported commit differs: %v %v", diffs, err)
	}
}

func TestReproducible(t *testing.T) {
	ctx := context.Background()
	repo, _, _ := commitFixture(t)
	for _, comp := range []Compression{Gzip, Zstd, ZstdChunked} {
		t.Run(strings.ReplaceAll(string(comp), ":", "-"), func(t *testing.T) {
			var digests []v1.Hash
			for i := 0; i < 2; i++ {
				img, err := Build(ctx, repo, "fixture", WithCompression(comp), WithTempDir(t.TempDir()))
				if err != nil {
					t.Fatal(err)
				}
				d, err := img.Digest()
				if err != nil {
					t.Fatal(err)
				}
				m, _ := img.Manifest()
				if comp == ZstdChunked {
					if len(m.Layers[1].Annotations) < 2 {
						t.Errorf("zstd:chunked layer without its table of contents annotations: %v", m.Layers[1].Annotations)
					}
				} else if got := string(m.Layers[0].MediaType); !strings.Contains(got, string(comp)) {
					t.Errorf("layer media type %s for %s", got, comp)
				}
				digests = append(digests, d)
				img.Close()
			}
			if digests[0] != digests[1] {
				t.Fatalf("two builds gave %s and %s", digests[0], digests[1])
			}
		})
	}
}

// A content layer, read as a plain tar, holds the object store and hardlinks at the checkout paths.
func TestLayerLayout(t *testing.T) {
	repo, _, _ := commitFixture(t)
	img, err := Build(context.Background(), repo, "fixture", WithMaxLayers(4))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	layers, _ := img.Layers()
	names := map[string]bool{}
	for _, l := range layers {
		rc, _ := l.Uncompressed()
		ns, err := tarNames(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			names[n] = true
		}
	}
	for _, want := range []string{"./", "sysroot/ostree/repo/config", "sysroot/ostree/repo/objects/ff", "./files", "files/big", "files/odd-65537", "hardlinks/a"} {
		if !names[want] {
			t.Errorf("no tar entry %q", want)
		}
	}
	if names["usr/etc"] || names["./usr/etc"] {
		t.Error("usr/etc written as such")
	}
}

func tarNames(r io.Reader) ([]string, error) {
	var out []string
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, h.Name)
	}
}

// Files an rpm database lists land in layers named after their packages.
func TestRPMAttribution(t *testing.T) {
	ctx := context.Background()
	src := t.TempDir()
	db, err := os.ReadFile("rpmdb/testdata/rpmdb-small.sqlite")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"usr/lib/sysimage/rpm/rpmdb.sqlite": string(db),
		"usr/bin/alpha":                     "alpha binary",
		"usr/etc/alpha.conf":                "alpha config",
		"usr/share/alpha/data/one.dat":      "alpha data",
		"usr/bin/beta":                      "beta binary",
		"usr/lib/beta/beta.sh":              "#!/bin/sh\n",
		"usr/bin/stray":                     "not in any package",
	}
	for p, content := range files {
		if err := os.MkdirAll(filepath.Join(src, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "repo"), ostree.ModeArchive)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.CommitDir(ctx, src, fixedTime, ostree.WithBranch("rpm")); err != nil {
		t.Fatal(err)
	}
	img, err := Build(ctx, repo, "rpm")
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	where := map[string]string{} // component -> layer's annotation
	for _, l := range img.Plan {
		for _, c := range l.Components {
			where[c] = strings.Join(l.Components, ",")
		}
	}
	for _, c := range []string{"alpha", "beta", "unpackaged"} {
		if _, ok := where[c]; !ok {
			t.Errorf("no layer holds component %q; plan: %+v", c, img.Plan)
		}
	}
	objs := map[string]string{}
	for _, l := range img.Plan {
		for _, o := range l.Objects {
			objs[o] = strings.Join(l.Components, ",")
		}
	}
	alpha := ostree.ContentChecksum(&ostree.FileHeader{Mode: ostree.ModeRegular | 0o644, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}, []byte("alpha binary"))
	if !strings.Contains(objs[alpha.String()], "alpha") {
		t.Errorf("usr/bin/alpha is in layer %q", objs[alpha.String()])
	}
}
