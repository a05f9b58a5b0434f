package host_test

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/ignition"
)

// provisioningImage is a TinyOS with a user database, /root -> var/roothome and a vendor unit.
func provisioningImage(t *testing.T) string {
	t.Helper()
	tree := testimage.TinyOS(t, "1.0", testimage.ProvisioningFiles)
	testimage.AddHomeLinks(t, tree)
	layout := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, tree, "oci:"+layout)
	return "oci:" + layout
}

const installConfig = `{"ignition":{"version":"3.4.0"},
"storage":{
	"directories":[{"path":"/var/lib/app","mode":488,"user":{"name":"core"}}],
	"files":[
		{"path":"/etc/app.conf","mode":384,"user":{"name":"core"},"group":{"name":"sudo"},"contents":{"source":"data:;base64,a2V5PTEK"}},
		{"path":"/etc/motd","append":[{"source":"data:,from%20ignition%0A"}]}
	],
	"links":[{"path":"/etc/app-link","target":"/etc/app.conf"},{"path":"/var/lib/app/hard.conf","target":"/etc/app.conf","hard":true}]},
"passwd":{
	"groups":[{"name":"ops","gid":2000}],
	"users":[
		{"name":"core","passwordHash":"$6$s$h","groups":["sudo","ops"],"sshAuthorizedKeys":["ssh-ed25519 AAAAcore core@test"]},
		{"name":"root","sshAuthorizedKeys":["ssh-ed25519 AAAAroot root@test"]}
	]},
"systemd":{"units":[
	{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/usr/bin/tool\n[Install]\nWantedBy=multi-user.target\n"},
	{"name":"vendor.service","enabled":true,"dropins":[{"name":"10-env.conf","contents":"[Service]\nEnvironment=A=1\n"}]},
	{"name":"unwanted.service","mask":true}
]}}`

// TestInstallIgnition installs with an Ignition config and root's SSH keys and checks every
// kind of entry in the new deployment (its /etc) and its stateroot's /var.
func TestInstallIgnition(t *testing.T) {
	testutil.Root(t)
	cfg, err := ignition.Parse([]byte(installConfig))
	must(t, err)
	keys := []byte("ssh-ed25519 AAAAinstall admin@test\n")
	sys, res := install(t, provisioningImage(t), host.Install{Ignition: cfg, RootSSHAuthorizedKeys: keys})
	d := res.Deployed.Deployment
	etc := func(p string) string { return filepath.Join(sys, d.Dir(), "etc", p) }
	vr := func(p string) string { return filepath.Join(sys, "ostree/deploy", d.Stateroot, "var", p) }
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		must(t, err)
		return string(b)
	}
	attrs := func(p string) (int, int, fs.FileMode) {
		fi, err := os.Lstat(p)
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid), fi.Mode().Perm()
	}
	t.Run("file", func(t *testing.T) {
		if got := read(etc("app.conf")); got != "key=1\n" {
			t.Errorf("content %q", got)
		}
		if u, g, m := attrs(etc("app.conf")); u != 1000 || g != 27 || m != 0o600 {
			t.Errorf("app.conf %d:%d %v, want core (1000):sudo (27) 0600", u, g, m)
		}
	})
	t.Run("append", func(t *testing.T) {
		if got := read(etc("motd")); got != "welcome\nfrom ignition\n" {
			t.Errorf("motd %q", got)
		}
	})
	t.Run("directory", func(t *testing.T) {
		if u, _, m := attrs(vr("lib/app")); u != 1000 || m != 0o750 {
			t.Errorf("/var/lib/app: uid %d %v", u, m)
		}
	})
	t.Run("links", func(t *testing.T) {
		if l, err := os.Readlink(etc("app-link")); err != nil || l != "/etc/app.conf" {
			t.Errorf("symlink %q %v", l, err)
		}
		a, _ := os.Stat(etc("app.conf"))
		if b, err := os.Stat(vr("lib/app/hard.conf")); err != nil || !os.SameFile(a, b) {
			t.Errorf("hard link: %v", err)
		}
	})
	t.Run("users and groups", func(t *testing.T) {
		for file, want := range map[string]string{
			"passwd": "core:x:1000:1000::/home/core:/bin/sh\n", "group": "sudo:x:27:core\n",
			"shadow": "core:$6$s$h:", "gshadow": "ops:!::core\n",
		} {
			if !strings.Contains(read(etc(file)), want) {
				t.Errorf("/etc/%s lacks %q:\n%s", file, want, read(etc(file)))
			}
		}
		if !strings.Contains(read(etc("group")), "ops:x:2000:core\n") {
			t.Errorf("/etc/group:\n%s", read(etc("group")))
		}
		if got := read(vr("home/core/.ssh/authorized_keys")); got != "ssh-ed25519 AAAAcore core@test\n" {
			t.Errorf("core's keys %q", got)
		}
		if u, g, m := attrs(vr("home/core")); u != 1000 || g != 1000 || m != 0o700 {
			t.Errorf("home %d:%d %v", u, g, m)
		}
		if u, _, _ := attrs(vr("home/core/.bashrc")); u != 1000 {
			t.Errorf("skel copy owned by %d", u)
		}
		if got := read(vr("roothome/.ssh/authorized_keys")); got != "ssh-ed25519 AAAAroot root@test\n" {
			t.Errorf("root's keys (through /root -> var/roothome) %q", got)
		}
	})
	t.Run("units", func(t *testing.T) {
		sysd := etc("systemd/system")
		if !strings.Contains(read(filepath.Join(sysd, "hello.service")), "ExecStart=/usr/bin/tool") {
			t.Error("unit contents")
		}
		if read(filepath.Join(sysd, "vendor.service.d/10-env.conf")) != "[Service]\nEnvironment=A=1\n" {
			t.Error("dropin")
		}
		for link, target := range map[string]string{
			"multi-user.target.wants/hello.service":  "/etc/systemd/system/hello.service",
			"multi-user.target.wants/vendor.service": "/usr/lib/systemd/system/vendor.service",
			"unwanted.service":                       "/dev/null",
		} {
			if l, err := os.Readlink(filepath.Join(sysd, link)); err != nil || l != target {
				t.Errorf("%s -> %q %v", link, l, err)
			}
		}
	})
	t.Run("root keys", func(t *testing.T) {
		want := "f~ /root/.ssh/authorized_keys 0600 root root - " + base64.StdEncoding.EncodeToString(keys) + "\n"
		if got := read(etc("tmpfiles.d/bootc-root-ssh.conf")); !strings.Contains(got, want) || !strings.Contains(got, "d /root/.ssh 0700 root root -\n") {
			t.Errorf("tmpfiles snippet:\n%s", got)
		}
	})
	if r := res.Ignition; r == nil || len(r.Enabled) != 2 || len(r.Masked) != 1 || len(r.Users) != 2 || res.RootSSHKeys != host.RootSSHTmpfilesPath {
		t.Errorf("result: %+v %q", r, res.RootSSHKeys)
	}
	// The image's /usr is untouched (the deployment's files are hard links into the repository).
	if _, err := os.Stat(filepath.Join(sys, d.Dir(), "etc/passwd.tmp")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("temporary file left")
	}
}

// A config that fails while applying (an owner the image does not have, a file of the image
// with other content and no overwrite) fails the install, and the plan's checks come before
// any write: the deployment's /etc is the image's.
func TestInstallIgnitionApplyFails(t *testing.T) {
	src := image(t, provisioningImage(t), false)
	for _, tc := range []struct{ name, storage, want string }{
		{"unknown owner", `{"path":"/etc/new","contents":{"source":"data:,x"}},{"path":"/etc/x","user":{"name":"ghost"}}`, "user ghost is neither in the target's /etc/passwd"},
		{"overwrite", `{"path":"/etc/new","contents":{"source":"data:,x"}},{"path":"/etc/motd","contents":{"source":"data:,other"}}`, "storage.files[1] (/etc/motd): exists with other content: set overwrite: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ignition.Parse([]byte(`{"ignition":{"version":"3.4.0"},"storage":{"files":[` + tc.storage + `]}}`))
			must(t, err)
			sys := testutil.SysrootDir(t)
			_, err = host.InstallToFilesystem(t.Context(), sys, host.Install{Source: src, Ignition: cfg})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("install: %v", err)
			}
			found, _ := filepath.Glob(filepath.Join(sys, "ostree/deploy/default/deploy/*/etc/new"))
			if len(found) != 0 {
				t.Errorf("written before the refusal: %v", found)
			}
			// The install is undone: no deployment, no boot entry.
			if deps, _ := filepath.Glob(filepath.Join(sys, "ostree/deploy/default/deploy/*")); len(deps) != 0 {
				t.Errorf("the unprovisioned deployment is still there: %v", deps)
			}
			if entries, _ := filepath.Glob(filepath.Join(sys, "boot/loader/entries/*.conf")); len(entries) != 0 {
				t.Errorf("boot entries are left: %v", entries)
			}
		})
	}
}
