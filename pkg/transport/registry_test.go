package transport

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"go.podman.io/image/v5/types"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/imgref"
)

func registryRef(t *testing.T, name string) imgref.Ref {
	t.Helper()
	r, err := imgref.Parse("docker://" + name)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSystemContext checks how the configuration becomes containers/image's: the files it
// names, plain HTTP for loopback registries only (not RFC 1918 ones, as go-containerregistry
// allows), per-endpoint `insecure` left to containers/image, and blocked registries refused.
func TestSystemContext(t *testing.T) {
	conf := testutil.RegistriesConf(t, `
[[registry]]
prefix = "registry.invalid/os"
location = "registry.invalid/os"
[[registry.mirror]]
location = "127.0.0.1:5000/os"
insecure = true

[[registry]]
prefix = "loop.invalid/os"
location = "127.0.0.1:5001/os"

[[registry]]
location = "10.1.2.3:5000"
insecure = true

[[registry]]
location = "blocked.invalid"
blocked = true

[[registry]]
prefix = "quay.io/mirrored"
location = "quay.io/mirrored"
blocked = true
[[registry.mirror]]
location = "127.0.0.1:5002/mirrored"
`)
	reg := Registries{ConfPath: conf, AuthFile: "/a/auth.json", CertDir: "/c/certs.d", TmpDir: "/t", RegistriesDir: t.TempDir()}
	for _, tc := range []struct {
		name     string
		insecure types.OptionalBool
		blocked  bool
	}{
		{"127.0.0.1:5000/os:1", types.OptionalBoolTrue, false},
		{"localhost/os", types.OptionalBoolTrue, false},
		// A loopback location rewriting a name: every endpoint is on loopback.
		{"loop.invalid/os:1", types.OptionalBoolTrue, false},
		// A loopback mirror of a remote name: per endpoint (the mirror's insecure = true).
		{"registry.invalid/os:1", types.OptionalBoolUndefined, false},
		{"10.1.2.3:5000/os", types.OptionalBoolUndefined, false},
		{"10.0.0.1:5000/os", types.OptionalBoolUndefined, false},
		{"192.168.1.1/os", types.OptionalBoolUndefined, false},
		{"quay.io/fedora/fedora:40", types.OptionalBoolUndefined, false},
		{"localhost.example.com/os", types.OptionalBoolUndefined, false},
		{"blocked.invalid/os:1", 0, true},
		// Blocked, even though its mirror is not: no request at all.
		{"quay.io/mirrored/os", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys, cleanup, err := reg.SystemContext(tc.name, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"})
			if tc.blocked {
				if !errors.Is(err, ErrBlocked) || !strings.Contains(err.Error(), conf) {
					t.Fatalf("err = %v; want ErrBlocked naming %s", err, conf)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer cleanup()
			if sys.DockerInsecureSkipTLSVerify != tc.insecure {
				t.Errorf("DockerInsecureSkipTLSVerify = %v; want %v", sys.DockerInsecureSkipTLSVerify, tc.insecure)
			}
			if sys.SystemRegistriesConfPath != conf || sys.SystemRegistriesConfDirPath != conf+".d" || sys.AuthFilePath != "/a/auth.json" ||
				sys.DockerPerHostCertDirPath != "/c/certs.d" || sys.BigFilesTemporaryDir != "/t" ||
				sys.ArchitectureChoice != "arm64" || sys.VariantChoice != "v8" || sys.OSChoice != "linux" {
				t.Errorf("system context %+v", sys)
			}
			data, err := os.ReadFile(filepath.Join(sys.RegistriesDirPath, "0000-bootc-sigstore.yaml"))
			if err != nil || !bytes.Equal(data, RegistriesDConfig) {
				t.Errorf("registries.d copy: %q, %v", data, err)
			}
		})
	}
	// A drop-in (ConfPath + ".d") blocks what the main file allows.
	withDropIn := testutil.RegistriesConf(t, "[[registry]]\nlocation = \"10.1.2.3:5000\"\ninsecure = true\n")
	if err := os.WriteFile(filepath.Join(withDropIn+".d", "50-block.conf"), []byte("[[registry]]\nlocation = \"10.1.2.3:5000\"\nblocked = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg.ConfPath = withDropIn
	if _, _, err := reg.SystemContext("10.1.2.3:5000/os", DefaultPlatform()); !errors.Is(err, ErrBlocked) {
		t.Errorf("blocked by a drop-in: %v; want ErrBlocked", err)
	}
	// A missing registries.conf named explicitly is an error, not the system's silently.
	reg.ConfPath = filepath.Join(t.TempDir(), "none.conf")
	if _, _, err := reg.SystemContext("quay.io/x", DefaultPlatform()); err == nil {
		t.Error("a missing --registries-conf file was accepted")
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost": true, "localhost:5000": true, "127.1.2.3": true, "[::1]:5000": true,
		"quay.io": false, "10.0.0.1:5000": false, "192.168.0.1": false, "localhost.example.com": false, "docker.io": false,
	} {
		if got := loopbackHost(host); got != want {
			t.Errorf("loopbackHost(%q) = %v; want %v", host, got, want)
		}
	}
}

// TestRegistriesDir checks the private registries.d copy: the sigstore attachments default is
// added unless a file defines default-docker, the files are kept, bad YAML is an error.
func TestRegistriesDir(t *testing.T) {
	list := func(dir string) []string {
		t.Helper()
		defer os.RemoveAll(dir)
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return names
	}
	// The system's (none on a test host, or whatever it has): always a usable directory.
	dir, err := registriesDir("")
	if err != nil {
		t.Fatalf("system registries.d: %v", err)
	}
	list(dir)
	custom := t.TempDir()
	if err := os.WriteFile(filepath.Join(custom, "quay.yaml"), []byte("docker:\n  quay.io:\n    lookaside: https://example.com/sigs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err = registriesDir(custom)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(list(dir), " "); got != "0000-quay.yaml 0001-bootc-sigstore.yaml" {
		t.Errorf("files %q", got)
	}
	if err := os.WriteFile(filepath.Join(custom, "default.yaml"), []byte("default-docker:\n  use-sigstore-attachments: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err = registriesDir(custom)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(list(dir), " "); got != "0000-default.yaml 0001-quay.yaml" {
		t.Errorf("with default-docker defined: files %q", got)
	}
	if err := os.WriteFile(filepath.Join(custom, "bad.yaml"), []byte("docker: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := registriesDir(custom); err == nil || !strings.Contains(err.Error(), "bad.yaml") {
		t.Errorf("bad YAML: %v; want an error naming the file", err)
	}
}

// TestRegistryMirror reads an image under a name that resolves nowhere through a registries.conf
// mirror on loopback (declared insecure), by tag and by digest, and streams every layer
// (validate.Image): the mirror serves it all.
func TestRegistryMirror(t *testing.T) {
	ctx := t.Context()
	r := testutil.NewCountingRegistry(t)
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Write(ctx, img, registryRef(t, r.Addr+"/os:1"))
	if err != nil {
		t.Fatal(err)
	}
	conf := testutil.RegistriesConf(t, fmt.Sprintf(`
[[registry]]
prefix = "registry.invalid/os"
location = "registry.invalid/os"
[[registry.mirror]]
location = "%s/os"
insecure = true
`, r.Addr))
	reg := Registries{ConfPath: conf, RegistriesDir: t.TempDir()}
	ref := registryRef(t, "registry.invalid/os:1")
	pinned, err := PinDigest(ref, want)
	if err != nil {
		t.Fatal(err)
	}
	if pinned.Name != "registry.invalid/os@"+want.String() {
		t.Errorf("PinDigest = %s", pinned.Name)
	}
	for _, ref := range []imgref.Ref{ref, pinned} {
		r.Reset()
		got, err := Read(ctx, ref, DefaultPlatform(), WithRegistries(reg))
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		if d, _ := got.Digest(); d != want {
			t.Errorf("%s: digest %s; want %s", ref, d, want)
		}
		if err := validate.Image(got); err != nil {
			t.Errorf("%s: %v", ref, err)
		}
		got.Close()
		if len(r.Requests()) == 0 {
			t.Errorf("%s: the mirror served no request", ref)
		}
	}
	// Without insecure = true the plain-HTTP mirror is not used (TLS fails), and the name itself
	// resolves nowhere.
	plain := testutil.RegistriesConf(t, fmt.Sprintf("[[registry]]\nprefix = \"registry.invalid/os\"\nlocation = \"registry.invalid/os\"\n[[registry.mirror]]\nlocation = \"%s/os\"\n", r.Addr))
	r.Reset()
	if _, err := Read(ctx, ref, DefaultPlatform(), WithRegistries(Registries{ConfPath: plain})); err == nil {
		t.Error("a plain-HTTP mirror was read without insecure = true")
	}
	if got := r.Requests(); len(got) != 0 {
		t.Errorf("plain HTTP requests without insecure = true: %q", got)
	}
	// A missing image is ErrNotFound.
	if _, err := Read(ctx, registryRef(t, r.Addr+"/os:none"), DefaultPlatform(), WithRegistries(reg)); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tag: %v; want ErrNotFound", err)
	}
}

// TestRegistryBlocked: a blocked registry is refused by Read and Write before any request.
func TestRegistryBlocked(t *testing.T) {
	ctx := t.Context()
	r := testutil.NewCountingRegistry(t)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := registryRef(t, r.Addr+"/os:1")
	if _, err := Write(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	r.Reset()
	reg := Registries{ConfPath: testutil.RegistriesConf(t, fmt.Sprintf("[[registry]]\nlocation = %q\nblocked = true\n", r.Addr))}
	if _, err := Read(ctx, ref, DefaultPlatform(), WithRegistries(reg)); !errors.Is(err, ErrBlocked) {
		t.Errorf("Read: %v; want ErrBlocked", err)
	}
	if _, err := Write(ctx, img, registryRef(t, r.Addr+"/os:2"), WithRegistries(reg)); !errors.Is(err, ErrBlocked) {
		t.Errorf("Write: %v; want ErrBlocked", err)
	}
	if got := r.Requests(); len(got) != 0 || r.Connects() != 0 {
		t.Errorf("a blocked registry got requests: %q (and %d CONNECT)", got, r.Connects())
	}
}

// TestRegistryInsecure: a registry under a name that is not loopback, reached over plain HTTP
// (through a proxy that refuses HTTPS), is written and read only when registries.conf says
// insecure = true; otherwise no plain-HTTP request is made.
func TestRegistryInsecure(t *testing.T) {
	ctx := t.Context()
	r := testutil.NewCountingRegistry(t)
	img, err := random.Image(2048, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := registryRef(t, "registry.invalid/os:1")
	secure := Registries{ConfPath: testutil.RegistriesConf(t, ""), Proxy: r.Proxy}
	if _, err := Write(ctx, img, ref, WithRegistries(secure)); err == nil {
		t.Fatal("pushed over plain HTTP without insecure = true")
	}
	if got := r.Requests(); len(got) != 0 || r.Connects() == 0 {
		t.Fatalf("without insecure = true: plain requests %q, %d HTTPS attempts; want none and some", got, r.Connects())
	}
	insecure := Registries{ConfPath: testutil.RegistriesConf(t, "[[registry]]\nlocation = \"registry.invalid\"\ninsecure = true\n"), Proxy: r.Proxy}
	want, err := Write(ctx, img, ref, WithRegistries(insecure))
	if err != nil {
		t.Fatal(err)
	}
	got, err := Read(ctx, ref, DefaultPlatform(), WithRegistries(insecure))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if d, _ := got.Digest(); d != want {
		t.Errorf("read %s; want %s", d, want)
	}
	if err := validate.Image(got); err != nil {
		t.Error(err)
	}
	r.Reset()
	if _, err := Read(ctx, ref, DefaultPlatform(), WithRegistries(secure)); err == nil {
		t.Error("read over plain HTTP without insecure = true")
	}
	if got := r.Requests(); len(got) != 0 {
		t.Errorf("plain requests without insecure = true: %q", got)
	}
}

// TestVerifiedReader: a blob is checked against its descriptor while it streams.
func TestVerifiedReader(t *testing.T) {
	data := []byte("some blob content")
	sum := sha256.Sum256(data)
	desc := v1.Descriptor{Digest: v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}, Size: int64(len(data))}
	for _, tc := range []struct {
		name    string
		content []byte
		desc    v1.Descriptor
		wantErr error
	}{
		{"exact", data, desc, nil},
		{"truncated", data[:5], desc, io.ErrUnexpectedEOF},
		{"longer", append(append([]byte{}, data...), 'x'), desc, ErrDigestMismatch},
		{"other bytes", bytes.ToUpper(data), desc, ErrDigestMismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &verifiedReader{rc: io.NopCloser(bytes.NewReader(tc.content)), h: sha256.New(), desc: tc.desc}
			got, err := io.ReadAll(r)
			if tc.wantErr == nil {
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("got %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("err = %v; want %v", err, tc.wantErr)
			}
		})
	}
}

// TestArchiveTmpDir: an oci-archive is unpacked under Registries.TmpDir, and removed on Close.
func TestArchiveTmpDir(t *testing.T) {
	ctx := t.Context()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref := imgref.Ref{Transport: imgref.OCIArchive, Name: filepath.Join(t.TempDir(), "img.tar")}
	if _, err := Write(ctx, img, ref); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	got, err := Read(ctx, ref, DefaultPlatform(), WithRegistries(Registries{TmpDir: tmp}))
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := filepath.Glob(filepath.Join(tmp, "bootc-oci-archive-*"))
	if len(ents) != 1 {
		t.Errorf("unpacked under %s: %q; want one directory", tmp, ents)
	}
	got.Close()
	if ents, _ := filepath.Glob(filepath.Join(tmp, "*")); len(ents) != 0 {
		t.Errorf("left after Close: %q", ents)
	}
}
