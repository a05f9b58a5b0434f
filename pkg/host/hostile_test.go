package host_test

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imagestore"
)

// TestRefusesHostileImages: switching to a broken or hostile image fails with the pull's
// error, naming the problem; the sysroot (deployments, boot entries, refs) is as it was, the
// repository is consistent (what the refused image added was dropped), and nothing is written
// outside it.
func TestRefusesHostileImages(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree")
	good := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), "oci:"+good)
	sys, _ := install(t, "oci:"+good, host.Install{})
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
		is                 error
	}{
		{"no kernel", writeImage(t, tarLayer(t, func(tw *tar.Writer) { tarFile(tw, "usr/bin/tool", "x") })), "not bootable", imagestore.ErrNotBootable},
		{"dot-dot path", writeImage(t, tarLayer(t, func(tw *tar.Writer) {
			kernel(tw)
			tarFile(tw, "../../escaped", "x")
		})), "..", imagestore.ErrBadLayer},
		{"hardlink out", writeImage(t, tarLayer(t, func(tw *tar.Writer) {
			kernel(tw)
			tw.WriteHeader(&tar.Header{Name: "usr/passwd", Linkname: "../../../etc/passwd", Typeflag: tar.TypeLink})
		})), "etc/passwd", imagestore.ErrBadLayer},
		{"device node", writeImage(t, tarLayer(t, func(tw *tar.Writer) {
			kernel(tw)
			tw.WriteHeader(&tar.Header{Name: "usr/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Mode: 0o600})
		})), "device", imagestore.ErrBadLayer},
		{"tampered blob", tampered, "digest", imagestore.ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, objects := sysrootState(t, sys), repoObjects(t, sys)
			var ev events
			h := open(t, sys, host.WithProgress(ev.add))
			_, err := h.Switch(t.Context(), image(t, "oci:"+tc.layout, false))
			h.Close()
			t.Logf("refused: %v", err)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("switch: %v; want %v naming %q", err, tc.is, tc.want)
			}
			for _, e := range ev.all {
				if w, ok := e.(host.Warning); ok {
					t.Errorf("warning: %s: %v", w.What, w.Err)
				}
			}
			checkRefused(t, sys, before, objects)
			if _, err := os.Lstat(outside); !os.IsNotExist(err) {
				t.Errorf("the image wrote %s", outside)
			}
			fsck(t, sys)
		})
	}
	// The host still upgrades normally afterwards.
	h := open(t, sys)
	if res, err := h.Upgrade(t.Context(), host.UpgradeDeploy); err != nil || !res.NoUpdate {
		t.Errorf("upgrade after the refusals: %+v, %v", res, err)
	}
}
