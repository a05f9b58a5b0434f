// This file builds the derived operating systems of examples/Containerfiles with the real podman
// on top of our own base image, and deploys each on a host with `bootc switch`, as a user who
// customises the OS with ordinary container builds would:
//
//	CGO_ENABLED=0 go test -tags containers_image_openpgp -run TestDerivedImages -v ./tests
//
// The base is the cached Debian minbase tree (testutil.DebianTree) with a stand-in kernel,
// composed into a registry on loopback. A sysroot installed from it, with local /etc edits and a
// /var file, switches to every example (built with --build-arg BASE=<our base>; the examples that
// need Fedora tools are built from their Debian twins) and checks its effect, then switches back
// to the base. Then the base is rebuilt with one package changed, one derived image is rebuilt on
// it, and `bootc upgrade` must download only the layers that changed (counted by a proxy in front
// of the registry). Last, derived images with gzip, zstd and zstd:chunked layers deploy from a
// registry, an oci-archive and podman's own storage.
//
// add-package.debian.Containerfile installs cron from the host's Debian mirror (the base's
// sources.list names it), so the test needs that mirror. multi-stage.Containerfile gets the
// host's Go toolchain as its builder (there is no golang image here): our base with GOROOT
// bind-mounted at /usr/local/go.
//
// The kernel arguments of the kargs example (usr/lib/bootc/kargs.d) are checked in the boot
// entry, and checked gone again once the host switches away from it.
package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
)

const (
	deriveKver = "6.1.0-derive"
	// deriveExamples is the build context of the examples, relative to this package.
	deriveExamples = "../examples/Containerfiles"
	// deriveVarFile is a file the host keeps in its /var (relative to the stateroot).
	deriveVarFile = "var/lib/derive-test/local-state"
)

// The local /etc edits of the host: every deployment must carry them.
var deriveEtcEdits = map[string]string{
	"etc/hostname":          "derive-host\n",
	"etc/derive-local.conf": "added on the host\n",
}

// deriveExample is one Containerfile of examples/Containerfiles and what its deployment must have.
type deriveExample struct {
	name string
	// file is the Containerfile the test builds (a Debian twin where the example needs Fedora
	// tools).
	file string
	// present are files the deployment must have (relative to its root), with their content
	// when not empty.
	present map[string]string
	// gone are files of the base the deployment must not have.
	gone []string
	// kargs must be in the options of the deployment's boot entry.
	kargs []string
}

func deriveExampleList(t *testing.T) []deriveExample {
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(deriveExamples, p))
		must(t, err)
		return string(b)
	}
	return []deriveExample{
		{
			name: "add-package", file: "add-package.debian.Containerfile",
			present: map[string]string{
				"usr/sbin/cron": "",
				// Enabled by the package's maintainer script; /etc defaults land in usr/etc
				// and are merged into etc.
				"usr/etc/systemd/system/multi-user.target.wants/cron.service": "",
				"etc/systemd/system/multi-user.target.wants/cron.service":     "",
				"usr/etc/cron.d/e2scrub_all":                                  "",
			},
		},
		{
			name: "add-unit", file: "add-unit.Containerfile",
			present: map[string]string{
				"usr/lib/systemd/system/motd-gen.service":                         read("files/add-unit/motd-gen.service"),
				"usr/libexec/motd-gen":                                            read("files/add-unit/motd-gen"),
				"usr/lib/systemd/system/multi-user.target.wants/motd-gen.service": "",
			},
		},
		{
			name: "etc-config", file: "etc-config.Containerfile",
			present: map[string]string{
				"usr/etc/ssh/sshd_config.d/50-hardening.conf":         read("files/etc-config/ssh/50-hardening.conf"),
				"etc/ssh/sshd_config.d/50-hardening.conf":             read("files/etc-config/ssh/50-hardening.conf"),
				"usr/etc/sysctl.d/90-forwarding.conf":                 read("files/etc-config/sysctl/90-forwarding.conf"),
				"etc/sysctl.d/90-forwarding.conf":                     read("files/etc-config/sysctl/90-forwarding.conf"),
				"usr/etc/containers/registries.conf.d/50-mirror.conf": read("files/etc-config/registries/50-mirror.conf"),
				"etc/containers/registries.conf.d/50-mirror.conf":     read("files/etc-config/registries/50-mirror.conf"),
			},
		},
		{
			name: "add-user", file: "add-user.Containerfile",
			present: map[string]string{
				"usr/lib/sysusers.d/backup.conf": read("files/add-user/backup.sysusers.conf"),
				"usr/lib/tmpfiles.d/backup.conf": read("files/add-user/backup.tmpfiles.conf"),
			},
		},
		{
			name: "kargs", file: "kargs.Containerfile",
			present: map[string]string{
				"usr/lib/bootc/kargs.d/10-serial-console.toml":  read("files/kargs/10-serial-console.toml"),
				"usr/lib/bootc/kargs.d/20-x86-mitigations.toml": read("files/kargs/20-x86-mitigations.toml"),
			},
			kargs: []string{"console=ttyS0,115200", "quiet", "tsx=off"},
		},
		{
			name: "remove-file", file: "remove-file.Containerfile",
			gone: []string{"usr/bin/chfn", "usr/bin/chsh", "usr/bin/newgrp"},
		},
		{
			name: "multi-stage", file: "multi-stage.Containerfile",
			present: map[string]string{
				"usr/bin/hello":                        "",
				"usr/lib/systemd/system/hello.service": read("files/multi-stage/hello.service"),
				"usr/lib/systemd/system/multi-user.target.wants/hello.service": "",
			},
		},
	}
}

func TestDerivedImages(t *testing.T) {
	testutil.Root(t)
	testutil.RequireTool(t, "ostree", "docker-registry", "podman", "runc", "go")
	testStart := time.Now()
	work := t.TempDir()
	bin := buildBootc(t, work)

	// The base: the cached Debian tree (never modified: a hardlink copy gets new files only)
	// with a stand-in kernel.
	base := deriveRootfs(t, testutil.DebianTree(t), filepath.Join(work, "base"))
	registry := testutil.Registry(t)
	proxy := newBlobProxy(t, registry)
	// Builds and pushes go straight to the registry; the host pulls through the proxy.
	push := func(name string) string { return registry + "/derive/" + name }
	host := func(name string) string { return proxy.addr + "/derive/" + name }

	start := time.Now()
	baseV1 := composeTo(t, bin, base, "docker://"+push("base:stable"), "1", "2024-05-01T00:00:00Z")
	t.Logf("composed the base %s in %v", baseV1, time.Since(start).Round(time.Millisecond))

	sys := testutil.SysrootDir(t)
	start = time.Now()
	runBootc(t, bin, "install", "to-filesystem", "--source-imgref", "docker://"+host("base:stable"), sys)
	t.Logf("installed the base in %v", time.Since(start).Round(time.Millisecond))
	proxy.reset()
	deps, err := adminDeployments(sys)
	must(t, err)
	baseDep := deps[0]
	for p, content := range deriveEtcEdits {
		must(t, os.WriteFile(filepath.Join(sys, baseDep.dir(), p), []byte(content), 0o644))
	}
	stateroot := filepath.Join(sys, "ostree/deploy", baseDep.stateroot)
	must(t, os.MkdirAll(filepath.Dir(filepath.Join(stateroot, deriveVarFile)), 0o755))
	must(t, os.WriteFile(filepath.Join(stateroot, deriveVarFile), []byte("host state\n"), 0o600))
	varBefore := deriveVarSums(t, stateroot)

	pm := testutil.NewPodman(t)
	goroot := strings.TrimSpace(testutil.Run(t, "go", "env", "GOROOT"))
	gocache := strings.TrimSpace(testutil.Run(t, "go", "env", "GOCACHE"))
	build := func(file, tag string, extra ...string) time.Duration {
		t.Helper()
		start := time.Now()
		args := []string{"build", "--isolation", "chroot", "--tls-verify=false",
			"--build-arg", "BASE=" + push("base:stable"),
			// multi-stage.Containerfile: our base with the host's Go toolchain where the golang
			// image has it (no Docker Hub here), and the host's build cache.
			"--build-arg", "BUILDER=" + push("base:stable"), "-v", goroot + ":/usr/local/go:ro",
			"-v", gocache + ":/root/.cache/go-build",
			"-f", filepath.Join(deriveExamples, file), "-t", tag}
		args = append(append(args, extra...), deriveExamples)
		pm.MustRun(args...)
		return time.Since(start)
	}

	var prev *deriveExample
	for _, ex := range deriveExampleList(t) {
		tag := push(ex.name + ":1")
		buildTime := build(ex.file, tag)
		// Every example passes `bootc container lint` on the image's own filesystem.
		mnt := strings.TrimSpace(pm.MustRun("image", "mount", tag))
		lint := runBootc(t, bin, "container", "lint", "--rootfs", mnt)
		pm.MustRun("image", "unmount", tag)
		if !strings.Contains(lint, "Checks passed:") {
			t.Errorf("%s: container lint printed %q", ex.name, lint)
		}
		start := time.Now()
		pm.MustRun("push", "--tls-verify=false", tag)
		pushTime := time.Since(start)
		man := registryManifest(t, registry, "derive/"+ex.name, "1")

		start = time.Now()
		out := runBootc(t, bin, "--sysroot", sys, "switch", host(ex.name+":1"))
		switchTime := time.Since(start)
		fetched, fetchedBytes := proxy.reset().layers(man)
		t.Logf("%s: built in %v, pushed in %v, switched in %v fetching %d of %d layers (%s)",
			ex.name, buildTime.Round(time.Millisecond), pushTime.Round(time.Millisecond), switchTime.Round(time.Millisecond),
			len(fetched), len(man.Layers), humanSize(fetchedBytes))
		if !strings.Contains(out, "Deployed") {
			t.Errorf("%s: switch printed %q", ex.name, out)
		}
		dep := deriveBooted(t, sys, 2)
		dir := filepath.Join(sys, dep.dir())
		for p, want := range ex.present {
			// Lstat: the wants symlinks may be absolute, pointing into the deployment.
			if _, err := os.Lstat(filepath.Join(dir, p)); err != nil {
				t.Errorf("%s: %v", ex.name, err)
			} else if b, err := os.ReadFile(filepath.Join(dir, p)); want != "" && (err != nil || string(b) != want) {
				t.Errorf("%s: /%s = %q, %v; want %q", ex.name, p, b, err, want)
			}
		}
		for _, p := range ex.gone {
			if _, err := os.Lstat(filepath.Join(base, p)); err != nil {
				t.Errorf("%s: the base lacks %s, which the example removes: %v", ex.name, p, err)
			}
			if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
				t.Errorf("%s: /%s is still in the deployment (%v)", ex.name, p, err)
			}
		}
		if len(ex.kargs) > 0 {
			opts := strings.Fields(deriveEntryOptions(t, sys, dep))
			for _, k := range ex.kargs {
				if !slices.Contains(opts, k) {
					t.Errorf("%s: the boot entry lacks %q from usr/lib/bootc/kargs.d: options %q", ex.name, k, opts)
				}
			}
		}
		// The previous example's /etc defaults, never edited here, do not follow to this one.
		if prev != nil {
			for p := range prev.present {
				if strings.HasPrefix(p, "etc/") && ex.present[p] == "" {
					if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
						t.Errorf("%s: /%s of %s is still in /etc (%v)", ex.name, p, prev.name, err)
					}
				}
			}
		}
		deriveCheckHost(t, ex.name, sys, dep, stateroot, varBefore)
		prev = &ex
	}

	// Back to the base: the examples' changes are gone, the host's are not.
	runBootc(t, bin, "--sysroot", sys, "switch", host("base:stable"))
	dep := deriveBooted(t, sys, 2)
	dir := filepath.Join(sys, dep.dir())
	for _, p := range []string{"usr/bin/hello", "etc/systemd/system/multi-user.target.wants/cron.service", "usr/lib/bootc/kargs.d"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("back on the base: /%s is there (%v)", p, err)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "usr/bin/newgrp")); err != nil {
		t.Errorf("back on the base: %v", err)
	}
	if opts := strings.Fields(deriveEntryOptions(t, sys, dep)); slices.Contains(opts, "tsx=off") {
		// An image's kargs.d arguments go away with the image.
		t.Errorf("back on the base: the boot entry still has the kargs.d arguments of the kargs example: %q", opts)
	}
	deriveCheckHost(t, "base", sys, dep, stateroot, varBefore)
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
	t.Logf("examples done at %v", time.Since(testStart).Round(time.Second))

	deriveUpgrade(t, bin, pm, build, proxy, registry, sys, base, baseV1, stateroot, varBefore)
	t.Logf("upgrade done at %v", time.Since(testStart).Round(time.Second))

	deriveCompressions(t, bin, pm, build, registry, sys, base, stateroot, varBefore)
	testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(sys, "ostree/repo"))
	t.Logf("total %v", time.Since(testStart).Round(time.Second))
}

// deriveUpgrade rebuilds the base with one package changed and the add-unit example on it, and
// checks that a host following add-unit downloads only the layers that changed: the base's
// changed chunks and layer 0, and the rebuilt derived layers.
func deriveUpgrade(t *testing.T, bin string, pm *testutil.Podman, build func(string, string, ...string) time.Duration,
	proxy *blobProxy, registry, sys, base, baseV1, stateroot string, varBefore map[string]string) {
	const name = "add-unit"
	hostRef := proxy.addr + "/derive/" + name + ":1"
	runBootc(t, bin, "--sysroot", sys, "switch", hostRef)
	proxy.reset()
	baseMan1 := registryManifest(t, registry, "derive/base", baseV1)
	derived1 := registryManifest(t, registry, "derive/"+name, "1")
	localEdit := filepath.Join(sys, deriveBooted(t, sys, 2).dir(), "etc/derive-upgrade.conf")
	must(t, os.WriteFile(localEdit, []byte("edited before the upgrade\n"), 0o644))

	v2 := filepath.Join(filepath.Dir(base), "base-v2")
	testutil.Run(t, "cp", "-al", base, v2)
	oldV, newV := changePackage(t, v2, e2ePackage)
	start := time.Now()
	baseV2 := composeTo(t, bin, v2, "docker://"+registry+"/derive/base:stable", "2", "2024-06-01T00:00:00Z")
	baseMan2 := registryManifest(t, registry, "derive/base", baseV2)
	baseChanged := baseMan2.newLayers(baseMan1)
	t.Logf("base v2 (%s %s -> %s) composed in %v: %d of %d layers changed", e2ePackage, oldV, newV,
		time.Since(start).Round(time.Millisecond), len(baseChanged), len(baseMan2.Layers))
	if len(baseChanged) == 0 || len(baseChanged) > e2eMaxChangedLayers {
		t.Errorf("a one-package update of the base changed %d layers, want 1..%d", len(baseChanged), e2eMaxChangedLayers)
	}

	tag := registry + "/derive/" + name + ":1"
	buildTime := build(name+".Containerfile", tag, "--pull=always")
	pm.MustRun("push", "--tls-verify=false", tag)
	derived2 := registryManifest(t, registry, "derive/"+name, "1")
	if len(derived2.Layers) <= len(baseMan2.Layers) {
		t.Fatalf("the rebuilt %s has %d layers, the base %d", name, len(derived2.Layers), len(baseMan2.Layers))
	}
	for i, l := range baseMan2.Layers {
		if derived2.Layers[i].Digest != l.Digest {
			t.Fatalf("layer %d of the rebuilt %s is %s, not the base's %s: podman did not build on base v2", i, name, derived2.Layers[i].Digest, l.Digest)
		}
	}
	var derivedOwn []string
	for _, l := range derived2.Layers[len(baseMan2.Layers):] {
		derivedOwn = append(derivedOwn, l.Digest)
	}
	want := derived2.newLayers(derived1)
	for _, d := range want {
		if !slices.Contains(baseChanged, d) && !slices.Contains(derivedOwn, d) {
			t.Errorf("layer %s of the rebuilt %s is new but neither a changed base layer nor its own", d, name)
		}
	}

	start = time.Now()
	out := runBootc(t, bin, "--sysroot", sys, "upgrade")
	upgradeTime := time.Since(start)
	got := proxy.reset()
	fetched, fetchedBytes := got.layers(derived2)
	t.Logf("%s rebuilt on base v2 in %v; upgrade in %v fetched %d of %d layers, %s of %s (base: %d changed; own: %d)\n%s",
		name, buildTime.Round(time.Millisecond), upgradeTime.Round(time.Millisecond), len(fetched), len(derived2.Layers),
		humanSize(fetchedBytes), humanSize(derived2.layerBytes()), len(baseChanged), len(derivedOwn), out)
	for _, d := range want {
		kind := "own"
		if slices.Contains(baseChanged, d) {
			kind = "base"
		}
		t.Logf("  new layer %s (%s): %s", d[:19], kind, humanSize(derived2.bytesOf([]string{d})))
	}
	if !slices.Equal(keys(fetched), want) {
		t.Errorf("upgrade fetched layers %v, want the layers that differ %v", keys(fetched), want)
	}
	checkOnce(t, "upgrade", fetched)
	if stray := got.strays(derived2); len(stray) > 0 {
		t.Errorf("upgrade fetched blobs that are neither layers nor the config: %v", stray)
	}
	dep := deriveBooted(t, sys, 2)
	dir := filepath.Join(sys, dep.dir())
	if b, err := os.ReadFile(filepath.Join(dir, "usr/etc/login.defs")); err != nil || !strings.Contains(string(b), e2eMarker) {
		t.Errorf("the upgraded deployment does not have base v2's login.defs (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr/lib/systemd/system/motd-gen.service")); err != nil {
		t.Errorf("the upgraded deployment lost the derived layer: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "etc/derive-upgrade.conf")); err != nil || string(b) != "edited before the upgrade\n" {
		t.Errorf("the upgrade lost a local /etc edit: %q, %v", b, err)
	}
	deriveCheckHost(t, "upgrade", sys, dep, stateroot, varBefore)
}

// deriveCompressions deploys derived images whose layers are gzip, zstd and zstd:chunked from a
// registry: for gzip the add-unit image of the upgrade; for the others a base composed with
// --compression into a registry of its own, add-unit built on it and pushed with
// --compression-format. The zstd image also deploys from an oci-archive (podman save), the
// zstd:chunked one from podman's storage.
//
// Each compression has its own registry because podman 4.3 reuses a blob it knows at the
// destination registry whatever --compression-format says: pushed next to the gzip base, a zstd
// image gets gzip layers for every diff ID the registry already holds.
func deriveCompressions(t *testing.T, bin string, pm *testutil.Podman, build func(string, string, ...string) time.Duration,
	registry, sys, base, stateroot string, varBefore map[string]string) {
	archive := filepath.Join(t.TempDir(), "unit-zstd.ociarchive")
	for _, c := range []string{"gzip", "zstd", "zstd:chunked"} {
		reg, repo, name := registry, "derive/add-unit", "1"
		var composeTime, buildTime time.Duration
		if c != "gzip" {
			reg, repo = testutil.Registry(t), "derive/unit-"+strings.ReplaceAll(c, ":", "-")
			start := time.Now()
			runBootc(t, bin, "compose", "image", "-q", "--rootfs", base, "--output", "docker://"+reg+"/derive/base:stable",
				"--version", "1", "--timestamp", "2024-05-01T00:00:00Z", "--compression", c)
			composeTime = time.Since(start)
			buildTime = build("add-unit.Containerfile", reg+"/"+repo+":"+name, "--pull=always", "--build-arg", "BASE="+reg+"/derive/base:stable")
			pm.MustRun("push", "--tls-verify=false", "--compression-format", c, reg+"/"+repo+":"+name)
		}
		tag := reg + "/" + repo + ":" + name
		wantType := "application/vnd.oci.image.layer.v1.tar+zstd"
		if c == "gzip" {
			wantType = "application/vnd.oci.image.layer.v1.tar+gzip"
		}
		man := registryManifest(t, reg, repo, name)
		baseMan := registryManifest(t, reg, "derive/base", "stable")
		same := 0
		for i, l := range man.Layers {
			if l.MediaType != wantType {
				t.Errorf("%s: layer %d of the pushed image is %s, want %s", c, i, l.MediaType, wantType)
			}
			if i < len(baseMan.Layers) && l.Digest == baseMan.Layers[i].Digest {
				same++
			}
		}
		t.Logf("%s: %d of the %d base layers of the derived image are the composed base's blobs", c, same, len(baseMan.Layers))
		if c == "zstd:chunked" {
			// Ours carry the table of contents under the current key; podman 4.3 writes the
			// old one (io.containers.zstd-chunked.*) for the layers it compresses.
			for i, l := range baseMan.Layers {
				if l.Annotations["io.github.containers.zstd-chunked.manifest-checksum"] == "" {
					t.Errorf("%s: layer %d of the composed base has no zstd:chunked manifest: %v", c, i, l.Annotations)
				}
			}
			for i, l := range man.Layers[len(baseMan.Layers):] {
				if l.Annotations["io.github.containers.zstd-chunked.manifest-checksum"] == "" && l.Annotations["io.containers.zstd-chunked.manifest-checksum"] == "" {
					t.Errorf("%s: derived layer %d has no zstd:chunked manifest: %v", c, i, l.Annotations)
				}
			}
		}
		sources := []struct{ transport, ref string }{{"registry", tag}}
		switch c {
		case "zstd":
			pm.MustRun("save", "--format", "oci-archive", "-o", archive, tag)
			sources = append(sources, struct{ transport, ref string }{"oci-archive", archive})
		case "zstd:chunked":
			sources = append(sources, struct{ transport, ref string }{"containers-storage", pm.StorageRef(tag)})
		}
		if c == "zstd:chunked" {
			// The host has every layer by now; a new host fetches them all, zstd:chunked.
			fresh := testutil.SysrootDir(t)
			start := time.Now()
			out := runBootc(t, bin, "install", "to-filesystem", "--source-imgref", "docker://"+tag, fresh)
			t.Logf("%s: installed on a new host in %v: %s", c, time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
			want := fmt.Sprintf("fetched %d layers", len(registryManifest(t, reg, repo, name).Layers))
			if !strings.Contains(out, want) {
				t.Errorf("%s: install did not say %q", c, want)
			}
			dep := deriveBooted(t, fresh, 1)
			if _, err := os.Stat(filepath.Join(fresh, dep.dir(), "usr/lib/systemd/system/motd-gen.service")); err != nil {
				t.Errorf("%s: new host: %v", c, err)
			}
			// The first deployment of a derived image seeds the empty /var from the image.
			if _, err := os.Stat(filepath.Join(fresh, "ostree/deploy", dep.stateroot, "var/lib/dpkg/status")); err != nil {
				t.Errorf("%s: new host: /var was not seeded from the derived image: %v", c, err)
			}
			testutil.Run(t, "ostree", "fsck", "--repo="+filepath.Join(fresh, "ostree/repo"))
		}
		for _, src := range sources {
			start := time.Now()
			out := runBootc(t, bin, "--sysroot", sys, "switch", "--transport", src.transport, src.ref)
			t.Logf("%s from %s: switched in %v (base composed in %v, add-unit built in %v): %s", c, src.transport,
				time.Since(start).Round(time.Millisecond), composeTime.Round(time.Millisecond), buildTime.Round(time.Millisecond),
				strings.TrimSpace(out))
			dep := deriveBooted(t, sys, 2)
			if _, err := os.Stat(filepath.Join(sys, dep.dir(), "usr/lib/systemd/system/motd-gen.service")); err != nil {
				t.Errorf("%s from %s: %v", c, src.transport, err)
			}
			var st struct {
				Spec struct {
					Image *struct{ Image, Transport string } `json:"image"`
				} `json:"spec"`
			}
			must(t, json.Unmarshal([]byte(runBootc(t, bin, "--sysroot", sys, "status", "--format", "json")), &st))
			if st.Spec.Image == nil || st.Spec.Image.Transport != src.transport {
				t.Errorf("%s from %s: status spec %+v", c, src.transport, st.Spec.Image)
			}
			deriveCheckHost(t, c+" from "+src.transport, sys, dep, stateroot, varBefore)
		}
	}
}

// deriveRootfs makes a hardlink copy of tree at dst with a stand-in kernel and initramfs, and
// without what debootstrap leaves behind and an image build removes (apt-get clean; rm -rf
// /var/lib/apt/lists/*): about 80 MB of .debs and package lists.
func deriveRootfs(t *testing.T, tree, dst string) string {
	t.Helper()
	testutil.Run(t, "cp", "-al", tree, dst)
	for _, dir := range []string{"var/cache/apt/archives", "var/lib/apt/lists"} {
		ents, err := os.ReadDir(filepath.Join(dst, dir))
		must(t, err)
		for _, e := range ents {
			if e.Type().IsRegular() {
				must(t, os.Remove(filepath.Join(dst, dir, e.Name())))
			}
		}
	}
	kdir := filepath.Join(dst, "usr/lib/modules", deriveKver)
	must(t, os.MkdirAll(kdir, 0o755))
	must(t, os.WriteFile(filepath.Join(kdir, "vmlinuz"), []byte("not really a kernel\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(kdir, "initramfs.img"), []byte("not really an initramfs\n"), 0o644))
	return dst
}

// deriveBooted checks that ostree lists n deployments and returns the first (the one that boots).
func deriveBooted(t *testing.T, sys string, n int) deployment {
	t.Helper()
	deps, err := adminDeployments(sys)
	must(t, err)
	if len(deps) != n {
		t.Fatalf("ostree admin status lists %d deployments, want %d: %v", len(deps), n, deps)
	}
	return deps[0]
}

// deriveCheckHost checks what the host owns in a new deployment: its /etc edits are there (and
// not in usr/etc, the image's defaults), and the stateroot's /var is exactly as before.
func deriveCheckHost(t *testing.T, what, sys string, dep deployment, stateroot string, varBefore map[string]string) {
	t.Helper()
	dir := filepath.Join(sys, dep.dir())
	for p, want := range deriveEtcEdits {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s: local edit /%s = %q, %v; want %q", what, p, b, err, want)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, "usr/etc/derive-local.conf")); !os.IsNotExist(err) {
		t.Errorf("%s: the host's /etc/derive-local.conf is in usr/etc (%v)", what, err)
	}
	if got := deriveVarSums(t, stateroot); !mapsEqual(got, varBefore) {
		t.Errorf("%s: the stateroot's /var changed", what)
	}
	deps, err := adminDeployments(sys)
	must(t, err)
	checkKernelEntries(t, sys, deps, deriveKver)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// deriveVarSums returns the SHA-256 of the files the test watches in the stateroot's /var: the
// host's own file and the dpkg database (which add-package's image changes in its /var).
func deriveVarSums(t *testing.T, stateroot string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, p := range []string{deriveVarFile, "var/lib/dpkg/status"} {
		b, err := os.ReadFile(filepath.Join(stateroot, p))
		must(t, err)
		sum := sha256.Sum256(b)
		out[p] = hex.EncodeToString(sum[:])
	}
	return out
}

// deriveEntryOptions returns the options line of the boot entry of deployment d.
func deriveEntryOptions(t *testing.T, sys string, d deployment) string {
	t.Helper()
	want, err := filepath.EvalSymlinks(filepath.Join(sys, d.dir()))
	must(t, err)
	files, err := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf"))
	must(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			opts, ok := strings.CutPrefix(line, "options ")
			if !ok {
				continue
			}
			for _, o := range strings.Fields(opts) {
				p, ok := strings.CutPrefix(o, "ostree=")
				if !ok {
					continue
				}
				if got, err := filepath.EvalSymlinks(filepath.Join(sys, p)); err == nil && got == want {
					return opts
				}
			}
		}
	}
	t.Fatalf("no boot entry for %v", d)
	return ""
}
