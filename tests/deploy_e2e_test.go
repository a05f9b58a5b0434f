// This file installs a real Debian image with a kernel from a registry into a sysroot directory,
// upgrades it to a build that changes one package, and checks through a counting proxy in front
// of the registry that the upgrade downloads exactly the layers that changed, once each, while
// the real ostree accepts the result.
//
//	CGO_ENABLED=0 go test -tags containers_image_openpgp -run TestUpgradeFromRegistryFetchesOnlyChangedLayers -v ./tests
//
// v1 is the cached Debian bookworm tree with linux-image-amd64 that
// internal/testutil/cmd/debian-kernel-trees builds (debootstrap, a few minutes on first use); v2
// is a hardlink copy of it in which every file of one dpkg package (login, which also owns
// conffiles in /etc) gets new bytes and the package a new version in var/lib/dpkg/status.
package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/treediff"
)

const (
	// e2ePackage is the dpkg package whose files v2 changes.
	e2ePackage = "login"
	// e2eMaxChangedLayers bounds the layers a one-package update may change: layer 0 (commit
	// metadata), the package's chunk, the chunk with var/lib/dpkg/status, and one spare.
	e2eMaxChangedLayers = 4
)

func TestUpgradeFromRegistryFetchesOnlyChangedLayers(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "docker-registry", "debootstrap", "chroot")
	work := t.TempDir()
	bin := buildBootc(t, work)

	v1 := debianKernelV1(t)
	v2 := filepath.Join(work, "v2")
	testutil.Run(t, "cp", "-al", v1, v2)
	oldVersion, newVersion := changePackage(t, v2, e2ePackage)
	t.Logf("v1 %s; v2: package %s %s -> %s", v1, e2ePackage, oldVersion, newVersion)
	kver := onlyKernel(t, v1)

	registry := testutil.Registry(t)
	proxy := newBlobProxy(t, registry)
	const repo = "test/os"
	// Pushes go straight to the registry; the host installs and upgrades through the proxy.
	pushRef := "docker://" + registry + "/" + repo + ":stable"
	hostRef := "docker://" + proxy.addr + "/" + repo + ":stable"

	start := time.Now()
	v1Digest := composeTo(t, bin, v1, pushRef, "1", "2024-05-01T00:00:00Z")
	t.Logf("composed v1 %s in %v", v1Digest, time.Since(start).Round(time.Millisecond))
	v1Man := registryManifest(t, registry, repo, v1Digest)

	// Install.
	sys := testutil.SysrootDir(t)
	proxy.reset()
	start = time.Now()
	out := runBootc(t, bin, "install", "to-filesystem", "--source-imgref", hostRef, sys)
	installTime := time.Since(start)
	got := proxy.reset()
	fetched, fetchedBytes := got.layers(v1Man)
	t.Logf("install: %v, fetched %d of %d layers, %s (image %s)\n%s", installTime.Round(time.Millisecond),
		len(fetched), len(v1Man.Layers), humanSize(fetchedBytes), humanSize(v1Man.layerBytes()), out)
	if want := v1Man.layerSet(); !slices.Equal(keys(fetched), want) {
		t.Errorf("install fetched layers %v, want every layer of v1 %v", keys(fetched), want)
	}
	checkOnce(t, "install", fetched)
	if stray := got.strays(v1Man); len(stray) > 0 {
		t.Errorf("install fetched blobs that are neither layers nor the config of v1: %v", stray)
	}
	deps, err := adminDeployments(sys)
	must(t, err)
	if len(deps) != 1 {
		t.Fatalf("after install, ostree admin status lists %v", deps)
	}
	v1Dep := deps[0]

	// Local /etc edits in the installed deployment.
	etc := filepath.Join(sys, v1Dep.dir(), "etc")
	must(t, os.WriteFile(filepath.Join(etc, "hostname"), []byte("e2e-host\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(etc, "e2e-added.conf"), []byte("added locally\n"), 0o600))
	must(t, os.Remove(filepath.Join(etc, "issue.net")))
	// Also changed by v2: the local version must win.
	must(t, os.WriteFile(filepath.Join(etc, "pam.d/login"), []byte("# local pam.d/login\n"), 0o644))

	start = time.Now()
	v2Digest := composeTo(t, bin, v2, pushRef, "2", "2024-06-01T00:00:00Z")
	t.Logf("composed v2 %s in %v (previous build: the image at the output)", v2Digest, time.Since(start).Round(time.Millisecond))
	v2Man := registryManifest(t, registry, repo, v2Digest)
	changed := v2Man.newLayers(v1Man)
	t.Logf("v2 has %d layers, %d of them not in v1 (%s of %s)", len(v2Man.Layers), len(changed),
		humanSize(v2Man.bytesOf(changed)), humanSize(v2Man.layerBytes()))
	if len(changed) == 0 || len(changed) > e2eMaxChangedLayers {
		t.Errorf("a one-package update changed %d of %d layers, want 1..%d", len(changed), len(v2Man.Layers), e2eMaxChangedLayers)
	}

	// upgrade --check: manifest and config only.
	proxy.reset()
	out = runBootc(t, bin, "--sysroot", sys, "upgrade", "--check")
	got = proxy.reset()
	if fetched, _ := got.layers(v2Man); len(fetched) > 0 {
		t.Errorf("upgrade --check fetched layer blobs %v", keys(fetched))
	}
	t.Logf("upgrade --check:\n%s", out)
	wantLine := fmt.Sprintf("Download: %d of %d layers", len(changed), len(v2Man.Layers))
	if !strings.Contains(out, wantLine) {
		t.Errorf("upgrade --check does not say %q:\n%s", wantLine, out)
	}

	// upgrade: exactly the changed layers, once each.
	start = time.Now()
	out = runBootc(t, bin, "--sysroot", sys, "upgrade")
	upgradeTime := time.Since(start)
	got = proxy.reset()
	fetched, fetchedBytes = got.layers(v2Man)
	t.Logf("upgrade: %v, fetched %d of %d layers, %s (%.1f%% of the image); install took %v\n%s",
		upgradeTime.Round(time.Millisecond), len(fetched), len(v2Man.Layers), humanSize(fetchedBytes),
		100*float64(fetchedBytes)/float64(v2Man.layerBytes()), installTime.Round(time.Millisecond), out)
	if !slices.Equal(keys(fetched), changed) {
		t.Errorf("upgrade fetched layers %v, want the layers that differ %v", keys(fetched), changed)
	}
	checkOnce(t, "upgrade", fetched)
	if stray := got.strays(v2Man); len(stray) > 0 {
		t.Errorf("upgrade fetched blobs that are neither layers nor the config of v2: %v", stray)
	}
	if !strings.Contains(out, "Carried over local /etc changes") {
		t.Errorf("upgrade does not report the carried-over /etc changes:\n%s", out)
	}

	// A second upgrade has nothing to do and downloads nothing.
	out = runBootc(t, bin, "--sysroot", sys, "upgrade")
	if fetched, _ := proxy.reset().layers(v2Man); len(fetched) > 0 || !strings.Contains(out, "No update available") {
		t.Errorf("a repeated upgrade fetched %v and said:\n%s", keys(fetched), out)
	}

	// The sysroot: two deployments, the new one first, as ostree sees them.
	deps, err = adminDeployments(sys)
	must(t, err)
	if len(deps) != 2 || deps[1] != v1Dep || deps[0].stateroot != v1Dep.stateroot {
		t.Fatalf("ostree admin status lists %v, want the new deployment, then %v", deps, v1Dep)
	}
	v2Dep := deps[0]
	must(t, checkBootcStatus(sys, deps))
	for _, d := range deps {
		origin, err := os.ReadFile(filepath.Join(sys, d.dir()+".origin"))
		must(t, err)
		want := "container-image-reference=ostree-unverified-registry:" + strings.TrimPrefix(hostRef, "docker://") + "\n"
		if !strings.Contains(string(origin), want) {
			t.Errorf("origin of %v lacks %q:\n%s", d, want, origin)
		}
	}
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
	checkKernelEntries(t, sys, deps, kver)
	checkImageDigests(t, bin, sys, v2Digest, v1Digest)

	// The new deployment is v2, /etc aside.
	dir := filepath.Join(sys, v2Dep.dir())
	checkDeployedTree(t, v2, dir, kver)
	// /etc: v2's defaults (usr/etc) with exactly the local edits on top.
	diffs, err := treediff.Diff(filepath.Join(v2, "etc"), filepath.Join(dir, "etc"), treediff.Options{})
	must(t, err)
	wantEtc := []string{
		"/e2e-added.conf: only in " + filepath.Join(dir, "etc"),
		"/hostname: content differs",
		"/issue.net: only in " + filepath.Join(v2, "etc"),
		"/pam.d/login: content differs",
	}
	if !matchDiffs(diffs, wantEtc) {
		t.Errorf("/etc of the new deployment vs v2's /etc: got\n%s\nwant\n%s", strings.Join(diffs, "\n"), strings.Join(wantEtc, "\n"))
	}
	// login.defs changed in v2 and was not edited locally: it follows v2.
	if b, err := os.ReadFile(filepath.Join(dir, "etc/login.defs")); err != nil || !strings.Contains(string(b), e2eMarker) {
		t.Errorf("etc/login.defs of the new deployment is not v2's (err %v)", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/pam.d/login")); string(b) != "# local pam.d/login\n" {
		t.Errorf("etc/pam.d/login of the new deployment lost the local edit: %q", b)
	}
}

// e2eMarker is appended to every file of the changed package in v2.
const e2eMarker = "\n# changed by the bootc e2e upgrade test\n"

// debianKernelV1 returns the cached Debian tree with a kernel (building it on first use).
func debianKernelV1(t *testing.T) string {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(t.Context(), "go", "run", "github.com/bootc-go/bootc/internal/testutil/cmd/debian-kernel-trees", "-only", "v1")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("debian-kernel-trees -only v1: %v", err)
	}
	v1 := strings.TrimSpace(string(out))
	if st, err := os.Stat(v1); err != nil || !st.IsDir() {
		t.Fatalf("debian-kernel-trees printed %q, not a directory", v1)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Logf("Debian tree with a kernel ready in %v", d.Round(time.Second))
	}
	return v1
}

// changePackage rewrites every regular file of package pkg in root (a hardlink copy of a shared
// tree, so each file is replaced, never written in place) with e2eMarker appended, and bumps its
// Version in var/lib/dpkg/status. It returns the old and the new version.
func changePackage(t *testing.T, root, pkg string) (string, string) {
	t.Helper()
	list, err := os.ReadFile(filepath.Join(root, "var/lib/dpkg/info", pkg+".list"))
	must(t, err)
	n := 0
	for _, p := range strings.Split(strings.TrimSpace(string(list)), "\n") {
		full := filepath.Join(root, p)
		st, err := os.Lstat(full)
		if err != nil || !st.Mode().IsRegular() {
			continue
		}
		b, err := os.ReadFile(full)
		must(t, err)
		replaceFile(t, full, append(b, e2eMarker...))
		n++
	}
	if n < 5 {
		t.Fatalf("package %s has only %d regular files", pkg, n)
	}
	status := filepath.Join(root, "var/lib/dpkg/status")
	b, err := os.ReadFile(status)
	must(t, err)
	var oldV, newV string
	stanzas := strings.Split(string(b), "\n\n")
	for i, s := range stanzas {
		if !strings.HasPrefix(s, "Package: "+pkg+"\n") {
			continue
		}
		m := regexp.MustCompile(`(?m)^Version: (.*)$`).FindStringSubmatch(s)
		if m == nil {
			t.Fatalf("dpkg status of %s has no Version", pkg)
		}
		oldV, newV = m[1], m[1]+"+e2e1"
		stanzas[i] = strings.Replace(s, "Version: "+oldV, "Version: "+newV, 1)
	}
	if oldV == "" {
		t.Fatalf("package %s is not in %s", pkg, status)
	}
	replaceFile(t, status, []byte(strings.Join(stanzas, "\n\n")))
	return oldV, newV
}

// replaceFile writes data to a new file with path's mode and owner, then renames it over path.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	st, err := os.Lstat(path)
	must(t, err)
	tmp := path + ".e2e-tmp"
	must(t, os.WriteFile(tmp, data, 0o600))
	sys := st.Sys().(*syscall.Stat_t)
	must(t, os.Chown(tmp, int(sys.Uid), int(sys.Gid)))
	must(t, os.Chmod(tmp, st.Mode().Perm()|st.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)))
	must(t, os.Rename(tmp, path))
}

// onlyKernel returns the version of the one kernel under usr/lib/modules of root.
func onlyKernel(t *testing.T, root string) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "usr/lib/modules"))
	must(t, err)
	if len(ents) != 1 {
		t.Fatalf("%s has %d kernels, want 1", root, len(ents))
	}
	return ents[0].Name()
}

// composeTo runs bootc compose image and returns the manifest digest it prints last.
func composeTo(t *testing.T, bin, rootfs, output, version, timestamp string) string {
	t.Helper()
	out := runBootc(t, bin, "compose", "image", "-q", "--rootfs", rootfs, "--output", output, "--version", version, "--timestamp", timestamp)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	digest := lines[len(lines)-1]
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(digest) {
		t.Fatalf("compose image printed no manifest digest:\n%s", out)
	}
	return digest
}

// runBootc runs the bootc binary and returns its stdout; it fails the test on error.
func runBootc(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bootc %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

// e2eManifest is the part of an image manifest the test reads.
type e2eManifest struct {
	Config struct {
		Digest string `json:"digest"`
	} `json:"config"`
	Layers []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations"`
	} `json:"layers"`
}

// registryManifest fetches the manifest of repo at digest (or a tag) from the registry.
func registryManifest(t *testing.T, registry, repo, digest string) *e2eManifest {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+registry+"/v2/"+repo+"/manifests/"+digest, nil)
	must(t, err)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(t, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("manifest %s: %s\n%s", digest, resp.Status, b)
	}
	var m e2eManifest
	must(t, json.Unmarshal(b, &m))
	if len(m.Layers) == 0 || m.Config.Digest == "" {
		t.Fatalf("manifest %s has no layers or config:\n%s", digest, b)
	}
	return &m
}

// layerSet returns the distinct layer digests, sorted.
func (m *e2eManifest) layerSet() []string {
	var out []string
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// newLayers returns the distinct layer digests of m that old lacks, sorted.
func (m *e2eManifest) newLayers(old *e2eManifest) []string {
	have := old.layerSet()
	var out []string
	for _, d := range m.layerSet() {
		if !slices.Contains(have, d) {
			out = append(out, d)
		}
	}
	return out
}

func (m *e2eManifest) bytesOf(digests []string) int64 {
	var n int64
	for _, d := range digests {
		for _, l := range m.Layers {
			if l.Digest == d {
				n += l.Size
				break
			}
		}
	}
	return n
}

func (m *e2eManifest) layerBytes() int64 { return m.bytesOf(m.layerSet()) }

// blobProxy is a reverse proxy on 127.0.0.1 in front of a registry that counts the GET requests
// of blobs, and the bytes it sends of each, by digest.
type blobProxy struct {
	addr string
	mu   sync.Mutex
	got  blobGets
}

type blobGets struct {
	count map[string]int
	bytes map[string]int64
}

var blobGetPath = regexp.MustCompile(`^/v2/.+/blobs/(sha256:[0-9a-f]{64})$`)

func newBlobProxy(t *testing.T, registry string) *blobProxy {
	u, err := url.Parse("http://" + registry)
	must(t, err)
	p := &blobProxy{}
	p.reset()
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := blobGetPath.FindStringSubmatch(r.URL.Path)
		if m == nil || r.Method != http.MethodGet {
			rp.ServeHTTP(w, r)
			return
		}
		cw := &countingWriter{ResponseWriter: w}
		rp.ServeHTTP(cw, r)
		p.mu.Lock()
		p.got.count[m[1]]++
		p.got.bytes[m[1]] += cw.n
		p.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	// Stop by itself even if the test hangs past its deadline.
	stop := time.AfterFunc(30*time.Minute, srv.Close)
	t.Cleanup(func() { stop.Stop() })
	p.addr = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// reset returns the counts since the last reset.
func (p *blobProxy) reset() blobGets {
	p.mu.Lock()
	defer p.mu.Unlock()
	got := p.got
	p.got = blobGets{count: map[string]int{}, bytes: map[string]int64{}}
	return got
}

// layers returns how often each layer of m was fetched, and the bytes sent of them.
func (g blobGets) layers(m *e2eManifest) (map[string]int, int64) {
	out := map[string]int{}
	var n int64
	for _, d := range m.layerSet() {
		if c := g.count[d]; c > 0 {
			out[d] = c
			n += g.bytes[d]
		}
	}
	return out, n
}

// strays returns the blobs fetched that are neither a layer nor the config of m.
func (g blobGets) strays(m *e2eManifest) []string {
	var out []string
	for d := range g.count {
		if d != m.Config.Digest && !slices.Contains(m.layerSet(), d) {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

type countingWriter struct {
	http.ResponseWriter
	n int64
}

func (w *countingWriter) Write(b []byte) (int, error) {
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func checkOnce(t *testing.T, what string, fetched map[string]int) {
	t.Helper()
	for d, n := range fetched {
		if n != 1 {
			t.Errorf("%s fetched layer %s %d times", what, d, n)
		}
	}
}

// checkKernelEntries checks that every boot entry's kernel and initramfs exist under the sysroot
// and are those of the deployment its ostree= names.
func checkKernelEntries(t *testing.T, sys string, deps []deployment, kver string) {
	t.Helper()
	ents, err := bootEntries(sys)
	must(t, err)
	if len(ents) != len(deps) {
		t.Errorf("%d boot entries for %d deployments", len(ents), len(deps))
	}
	for _, e := range ents {
		if e.linux == "" || e.initrd == "" || e.ostree == "" {
			t.Errorf("boot entry %s lacks linux, initrd or ostree=: %+v", e.name, e)
			continue
		}
		target, err := filepath.EvalSymlinks(filepath.Join(sys, e.ostree))
		if err != nil {
			t.Errorf("boot entry %s: %v", e.name, err)
			continue
		}
		for _, f := range [][2]string{{e.linux, "vmlinuz"}, {e.initrd, "initramfs.img"}} {
			got, err := os.ReadFile(filepath.Join(sys, f[0]))
			if err != nil {
				t.Errorf("boot entry %s: %v", e.name, err)
				continue
			}
			want, err := os.ReadFile(filepath.Join(target, "usr/lib/modules", kver, f[1]))
			if err != nil || string(got) != string(want) {
				t.Errorf("boot entry %s: /%s is not the %s of %s (%v)", e.name, f[0], f[1], target, err)
			}
		}
	}
}

// checkImageDigests checks what bootc status says the booted and rollback deployments run.
func checkImageDigests(t *testing.T, bin, sys, booted, rollback string) {
	t.Helper()
	var st struct {
		Status struct {
			Booted, Rollback *struct {
				Image *struct {
					ImageDigest string `json:"imageDigest"`
				} `json:"image"`
			}
		} `json:"status"`
	}
	out := runBootc(t, bin, "--sysroot", sys, "status", "--format", "json")
	must(t, json.Unmarshal([]byte(out), &st))
	b, r := st.Status.Booted, st.Status.Rollback
	if b == nil || r == nil || b.Image == nil || r.Image == nil || b.Image.ImageDigest != booted || r.Image.ImageDigest != rollback {
		t.Errorf("bootc status: want booted %s, rollback %s:\n%s", booted, rollback, out)
	}
}

// linkTarget is p's symlink target, or "".
func linkTarget(p string) string {
	target, _ := os.Readlink(p)
	return target
}

// checkDeployedTree compares a deployment with the rootfs it was composed from, leaving out what
// composing and deploying move on purpose: /etc (merged; its defaults are usr/etc), /var (the
// stateroot's), /boot and the root's boot symlinks (the kernel moves to usr/lib/modules/KVER), and
// the content of the API directories (/run, /tmp, /dev, /proc, /sys), which are stored empty,
// and the /ostree symlink composing adds.
func checkDeployedTree(t *testing.T, src, dep, kver string) {
	t.Helper()
	diffs, err := treediff.Diff(src, dep, treediff.Options{IgnoreRootMeta: true})
	must(t, err)
	kdir := "/usr/lib/modules/" + kver + "/"
	moved := map[string]string{
		kdir + "vmlinuz":       "boot/vmlinuz-" + kver,
		kdir + "initramfs.img": "boot/initrd.img-" + kver,
		kdir + "System.map":    "boot/System.map-" + kver,
		kdir + "config":        "boot/config-" + kver,
	}
	var left []string
	for _, d := range diffs {
		p, _, _ := strings.Cut(d, ": ")
		switch {
		case underAny(p, "/etc", "/var", "/boot", "/usr/etc"),
			slices.Contains([]string{"/vmlinuz", "/vmlinuz.old", "/initrd.img", "/initrd.img.old", "/sysroot"}, p):
		case p == "/ostree" && linkTarget(filepath.Join(dep, "ostree")) == "sysroot/ostree":
			// Bootable commits add it, as bootc base images have it.
		case strings.HasSuffix(d, "only in "+src) && underAny(path.Dir(p), "/run", "/tmp", "/dev", "/proc", "/sys"):
			// Stored as empty directories.
		case moved[p] != "" && strings.HasSuffix(d, "only in "+dep):
			if fileSHA(t, filepath.Join(src, moved[p])) != fileSHA(t, filepath.Join(dep, p)) {
				left = append(left, p+": not the content of /"+moved[p])
			}
		default:
			left = append(left, d)
		}
	}
	if len(left) > 0 {
		if len(left) > 30 {
			left = append(left[:30], "…")
		}
		t.Errorf("deployment %s differs from %s:\n%s", dep, src, strings.Join(left, "\n"))
	}
	// usr/etc holds the image's /etc as it was.
	diffs, err = treediff.Diff(filepath.Join(src, "etc"), filepath.Join(dep, "usr/etc"), treediff.Options{IgnoreRootMeta: true})
	must(t, err)
	if len(diffs) > 0 {
		t.Errorf("usr/etc of %s differs from the source's /etc:\n%s", dep, strings.Join(diffs, "\n"))
	}
}

func underAny(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}

// matchDiffs reports whether diffs are exactly want, each want line a prefix of its diff line.
func matchDiffs(diffs, want []string) bool {
	if len(diffs) != len(want) {
		return false
	}
	for i := range want {
		if !strings.HasPrefix(diffs[i], want[i]) {
			return false
		}
	}
	return true
}
