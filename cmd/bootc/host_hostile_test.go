package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/bootc-go/bootc/internal/testutil"
)

// tarLayer makes a layer from tar entries written as given (names unchecked).
func tarLayer(t *testing.T, write func(tw *tar.Writer)) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write(tw)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func tarFile(tw *tar.Writer, name, content string) {
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
}

// writeImage writes a plain image of the layers to an OCI layout and returns the layout path.
func writeImage(t *testing.T, layers ...v1.Layer) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sysrootState is what a refused command must leave unchanged: the status document, the
// deployment directories, the boot entries and the refs.
func sysrootState(t *testing.T, sys string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(mustRun(t, "--sysroot", sys, "status", "--format", "json"))
	for _, pattern := range []string{"ostree/deploy/*/deploy/*", "boot/loader/entries/*", "boot/ostree/*"} {
		m, _ := filepath.Glob(filepath.Join(sys, pattern))
		b.WriteString(strings.Join(m, "\n") + "\n")
	}
	// Nothing of a refused image stays, not even its layers that were fine.
	refs := strings.Split(testutil.Run(t, "ostree", "refs", "--repo="+filepath.Join(sys, "ostree/repo")), "\n")
	sort.Strings(refs) // ostree lists refs in directory order
	b.WriteString(strings.Join(refs, "\n"))
	return b.String()
}

// TestHostRefusesHostileImages: switching to a broken or hostile image fails with a message
// naming the problem; the sysroot (deployments, boot entries, refs) is as it was, the
// repository is consistent, and nothing is written outside it.
func TestHostRefusesHostileImages(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	good := filepath.Join(t.TempDir(), "layout")
	mustRun(t, "compose", "image", "--rootfs", tinyOS(t, "1.0", nil), "--output", "oci:"+good, "-q")
	sys := testutil.SysrootDir(t)
	mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+good, sys)
	outside := filepath.Join(filepath.Dir(sys), "escaped")

	kernel := func(tw *tar.Writer) { tarFile(tw, "usr/lib/modules/6.1.0/vmlinuz", "KERNEL") }
	kernelLayer := tarLayer(t, kernel)
	tampered := writeImage(t, kernelLayer)
	digest, err := kernelLayer.Digest()
	must(t, err)
	blob := filepath.Join(tampered, "blobs", digest.Algorithm, digest.Hex)
	data, err := os.ReadFile(blob)
	must(t, err)
	data[len(data)/2] ^= 0xff
	must(t, os.WriteFile(blob, data, 0o644))
	for _, tc := range []struct {
		name, layout, want string
	}{
		{"no kernel", writeImage(t, tarLayer(t, func(tw *tar.Writer) { tarFile(tw, "usr/bin/tool", "x") })), "not bootable"},
		{"dot-dot path", writeImage(t, tarLayer(t, func(tw *tar.Writer) {
			kernel(tw)
			tarFile(tw, "../../escaped", "x")
		})), ".."},
		{"hardlink out", writeImage(t, tarLayer(t, func(tw *tar.Writer) {
			kernel(tw)
			tw.WriteHeader(&tar.Header{Name: "usr/passwd", Linkname: "../../../etc/passwd", Typeflag: tar.TypeLink})
		})), "etc/passwd"},
		{"device node", writeImage(t, tarLayer(t, func(tw *tar.Writer) {
			kernel(tw)
			tw.WriteHeader(&tar.Header{Name: "usr/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o600})
		})), "device"},
		{"tampered blob", tampered, "digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, objects := sysrootState(t, sys), repoObjects(t, sys)
			_, errs, code := run(t, "--sysroot", sys, "switch", "--transport", "oci", tc.layout)
			t.Logf("refused: %s", strings.TrimSpace(errs))
			if code != 1 || !strings.Contains(errs, tc.want) {
				t.Errorf("switch: exit %d, stderr %q; want exit 1 naming %q", code, errs, tc.want)
			}
			if after := sysrootState(t, sys); after != before {
				t.Errorf("a refused switch changed the sysroot:\n%s", testutil.FirstDiff("before", before, "after", after))
			}
			checkNoNewObjects(t, sys, objects)
			if _, err := os.Lstat(outside); !os.IsNotExist(err) {
				t.Errorf("the image wrote %s", outside)
			}
			testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
		})
	}
	// The host still upgrades normally afterwards.
	mustRun(t, "--sysroot", sys, "upgrade")
}
