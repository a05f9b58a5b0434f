package host_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"go.podman.io/storage/pkg/reexec"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
)

func TestMain(m *testing.M) {
	if reexec.Init() { // containers-storage re-executes the test binary
		return
	}
	os.Exit(m.Run())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// image parses an image as the CLI's IMAGE arguments are parsed: a containers-transports
// reference, unverified, or verified by the trust policy with enforce.
func image(t *testing.T, s string, enforce bool) imgref.OstreeRef {
	t.Helper()
	ref, err := host.ParseImage(s, imgref.Parse, enforce)
	must(t, err)
	return ref
}

// events records what a host operation reports.
type events struct {
	mu  sync.Mutex
	all []host.Event
}

func (e *events) add(ev host.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// pullProgress counts the PullProgress events.
func (e *events) pullProgress() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if _, ok := ev.(host.PullProgress); ok {
			n++
		}
	}
	return n
}

// open opens and locks the sysroot for one operation; the lock is released when the test ends
// at the latest.
func open(t *testing.T, sys string, opts ...host.Option) *host.Host {
	t.Helper()
	h, err := host.Open(t.Context(), sys, opts...)
	must(t, err)
	t.Cleanup(func() { h.Close() })
	return h
}

// install installs src (containers-transports syntax) into a new sysroot directory.
// installStable composes Tiny OS 1.0 to the tag stable of a new OCI layout and installs it
// into a new sysroot directory; it returns that image reference, the sysroot and the install.
func installStable(t *testing.T) (stable, sys string, in *host.InstallResult) {
	t.Helper()
	stable = "oci:" + filepath.Join(t.TempDir(), "layout") + ":stable"
	testimage.Compose(t, testimage.TinyOS(t, "1.0", nil), stable)
	sys, in = install(t, stable, host.Install{})
	return stable, sys, in
}

func install(t *testing.T, src string, in host.Install, opts ...host.Option) (string, *host.InstallResult) {
	t.Helper()
	sys := testutil.SysrootDir(t)
	in.Source = image(t, src, false)
	res, err := host.InstallToFilesystem(t.Context(), sys, in, opts...)
	must(t, err)
	return sys, res
}

func status(t *testing.T, sys string) *host.BootcHost {
	t.Helper()
	st, err := host.Status(t.Context(), sys)
	must(t, err)
	return st
}

func entryVersion(e *host.BootEntry) string {
	if e == nil || e.Image == nil || e.Image.Version == nil {
		return "<none>"
	}
	return *e.Image.Version
}

var adminDeployRe = regexp.MustCompile(`(?m)^[* ] (\S+) ([0-9a-f]{64})\.(\d+)`)

// adminStatus returns "commit.serial" of each deployment `ostree admin status` lists, in order,
// and its whole output.
func adminStatus(t *testing.T, sys string) ([]string, string) {
	t.Helper()
	out := testutil.Run(t, "ostree", "admin", "status", "--sysroot="+sys)
	var ids []string
	for _, m := range adminDeployRe.FindAllStringSubmatch(out, -1) {
		ids = append(ids, m[2]+"."+m[3])
	}
	return ids, out
}

// statusIDs lists "commit.serial" in boot order: in a sysroot directory the booted entry is the
// default, so booted comes first.
func statusIDs(st *host.BootcHost) []string {
	var ids []string
	for _, e := range st.Entries() {
		ids = append(ids, e.Ostree.Checksum+"."+strconv.Itoa(e.Ostree.DeploySerial))
	}
	return ids
}

// checkAdminStatus checks that `ostree admin status` lists the deployments Status lists, in the
// same order.
func checkAdminStatus(t *testing.T, sys string) []string {
	t.Helper()
	ids, admin := adminStatus(t, sys)
	if ours := statusIDs(status(t, sys)); strings.Join(ids, " ") != strings.Join(ours, " ") {
		t.Fatalf("ostree admin status order %v, ours %v:\n%s", ids, ours, admin)
	}
	return ids
}

// checkBootEntries checks every BLS entry names a kernel and initramfs that exist.
func checkBootEntries(t *testing.T, sys string) {
	t.Helper()
	entries, err := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("no boot entries in %s/boot/loader/entries (%v)", sys, err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(e)
		must(t, err)
		for _, line := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(line, " ")
			if k != "linux" && k != "initrd" {
				continue
			}
			// With sysroot.bootprefix the path is relative to the physical root, else to /boot.
			p := filepath.Join(sys, "boot", v)
			if strings.HasPrefix(v, "/boot/") {
				p = filepath.Join(sys, v)
			}
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s: %s %s does not exist: %v", filepath.Base(e), k, v, err)
			}
		}
	}
}

// bootOptions returns the options line of the default boot entry.
func bootOptions(t *testing.T, sys string) string {
	t.Helper()
	entries, _ := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	for _, e := range entries {
		data, err := os.ReadFile(e)
		must(t, err)
		if !strings.Contains(string(data), "(ostree:0)") {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "options "); ok {
				return v
			}
		}
	}
	t.Fatalf("no default boot entry with options in %s", sys)
	return ""
}

// sysrootState is testutil.SysrootState with the host's status document.
func sysrootState(t *testing.T, sys string) string {
	t.Helper()
	doc, err := json.Marshal(status(t, sys))
	must(t, err)
	return testutil.SysrootState(t, sys, doc)
}

// repoObjects lists the repository's object files.
func repoObjects(t *testing.T, sys string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	files, err := filepath.Glob(filepath.Join(sys, "ostree/repo/objects/*/*"))
	must(t, err)
	for _, f := range files {
		m[filepath.Base(filepath.Dir(f))+filepath.Base(f)] = true
	}
	return m
}

// checkNoNewObjects fails if the repository holds objects it did not hold before.
func checkNoNewObjects(t *testing.T, sys string, before map[string]bool) {
	t.Helper()
	var added []string
	for o := range repoObjects(t, sys) {
		if !before[o] {
			added = append(added, o)
		}
	}
	sort.Strings(added)
	if len(added) > 0 {
		t.Errorf("a refused image left %d objects in the repository, e.g. %s", len(added), added[0])
	}
}

// checkRefused checks that a refused operation left the sysroot as it was.
func checkRefused(t *testing.T, sys, before string, objects map[string]bool) {
	t.Helper()
	if after := sysrootState(t, sys); after != before {
		t.Errorf("a refused image changed the sysroot:\n%s", testutil.FirstDiff("before", before, "after", after))
	}
	checkNoNewObjects(t, sys, objects)
}

func fsck(t *testing.T, sys string) {
	t.Helper()
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
}

// tarLayer makes a layer from tar entries written as given (names unchecked).
func tarLayer(t *testing.T, write func(tw *tar.Writer)) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	write(tw)
	must(t, tw.Close())
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	must(t, err)
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
	must(t, err)
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	must(t, err)
	must(t, p.AppendImage(img))
	return dir
}
