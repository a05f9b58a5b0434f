package ignition_test

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/pkg/ignition"
)

// baseTree is a small Debian-like tree: the user database, login.defs, /etc/skel, /root as a
// link to var/roothome (as on bootc images) and a vendor unit.
var baseTree = map[string]string{
	"etc/passwd":  "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nold:x:1000:1000::/home/old:/bin/sh\n",
	"etc/shadow":  "root:*:19000:0:99999:7:::\nold:!:19000:0:99999:7:::\n",
	"etc/group":   "root:x:0:\ndaemon:x:1:\nsudo:x:27:\nusers:x:100:\nold:x:1000:\n",
	"etc/gshadow": "root:*::\nsudo:*::\nusers:*::\nold:!::\n",
	"etc/login.defs": "# test\nUID_MIN 1000\nUID_MAX 60000\nGID_MIN 1000\nGID_MAX 60000\n" +
		"SYS_UID_MIN 100\nSYS_UID_MAX 999\nHOME_MODE 0700\n",
	"etc/skel/.profile":                           "# profile\n",
	"etc/motd":                                    "welcome\n",
	"usr/lib/systemd/system/vendor.service":       "[Unit]\nDescription=v\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\nAlias=vend.service\n",
	"usr/lib/systemd/system/getty@.service":       "[Service]\nExecStart=/sbin/agetty %I\n[Install]\nWantedBy=getty.target\nDefaultInstance=tty1\n",
	"usr/lib/systemd/system/noinstall.service":    "[Service]\nExecStart=/bin/true\n",
	"etc/systemd/system/multi-user.target.wants/": "",
}

// newTarget writes baseTree into a new root and var directory.
func newTarget(t *testing.T) ignition.Target {
	t.Helper()
	dir := t.TempDir()
	tg := ignition.Target{Root: filepath.Join(dir, "deploy"), Var: filepath.Join(dir, "var")}
	for p, c := range baseTree {
		full := filepath.Join(tg.Root, p)
		if strings.HasSuffix(p, "/") {
			must(t, os.MkdirAll(full, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		must(t, os.WriteFile(full, []byte(c), 0o644))
	}
	must(t, os.Symlink("var/roothome", filepath.Join(tg.Root, "root")))
	must(t, os.MkdirAll(filepath.Join(tg.Var, "roothome"), 0o700))
	return tg
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func apply(t *testing.T, tg ignition.Target, config string) (*ignition.Report, error) {
	t.Helper()
	c, err := ignition.Parse([]byte(config))
	must(t, err)
	return ignition.Apply(t.Context(), c, tg)
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	must(t, err)
	return string(b)
}

// owned checks path's owner and mode (permission bits and setuid/setgid/sticky).
func owned(t *testing.T, path string, uid, gid int, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode()&(fs.ModePerm|fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != mode {
		t.Errorf("%s: %d:%d %v, want %d:%d %v", path, st.Uid, st.Gid, fi.Mode(), uid, gid, mode)
	}
}

func dataURL(s string) string { return "data:;base64," + base64.StdEncoding.EncodeToString([]byte(s)) }

func TestApplyFilesDirectoriesLinks(t *testing.T) {
	testutil.Root(t)
	tg := newTarget(t)
	rep, err := apply(t, tg, cfg(`"storage":{
		"directories":[{"path":"/var/lib/app","mode":488,"user":{"name":"old"},"group":{"id":27}}],
		"files":[
			{"path":"/etc/app/app.conf","mode":384,"user":{"id":1000},"group":{"name":"sudo"},"contents":{"source":"`+dataURL("key=1\n")+`"}},
			{"path":"/etc/motd","append":[{"source":"data:,more%0A"}]},
			{"path":"/home/old/notes","contents":{"source":"data:,hi"}},
			{"path":"/var/lib/app/suid","mode":2541,"contents":{"source":"data:,x"}},
			{"path":"/etc/app/gz","contents":{"compression":"gzip","source":"data:;base64,H4sIAAAAAAAAA8tIzcnJBwCGphA2BQAAAA=="}}
		],
		"links":[
			{"path":"/etc/app/current","target":"/var/lib/app"},
			{"path":"/var/lib/app/hard.conf","target":"/etc/app/app.conf","hard":true}
		]}`))
	must(t, err)
	owned(t, filepath.Join(tg.Var, "lib/app"), 1000, 27, 0o750)
	conf := filepath.Join(tg.Root, "etc/app/app.conf")
	if got := read(t, conf); got != "key=1\n" {
		t.Errorf("app.conf = %q", got)
	}
	owned(t, conf, 1000, 27, 0o600)
	owned(t, filepath.Join(tg.Root, "etc/app"), 0, 0, 0o755)
	if got := read(t, filepath.Join(tg.Root, "etc/motd")); got != "welcome\nmore\n" {
		t.Errorf("motd = %q, want the appended line after the image's", got)
	}
	owned(t, filepath.Join(tg.Root, "etc/motd"), 0, 0, 0o644)
	if got := read(t, filepath.Join(tg.Var, "home/old/notes")); got != "hi" {
		t.Errorf("/home/old/notes in var/home: %q", got)
	}
	owned(t, filepath.Join(tg.Var, "lib/app/suid"), 0, 0, 0o755|fs.ModeSetuid)
	if got := read(t, filepath.Join(tg.Root, "etc/app/gz")); got != "hello" {
		t.Errorf("gunzipped = %q", got)
	}
	if l, err := os.Readlink(filepath.Join(tg.Root, "etc/app/current")); err != nil || l != "/var/lib/app" {
		t.Errorf("symlink: %q, %v", l, err)
	}
	a, _ := os.Stat(conf)
	b, err := os.Stat(filepath.Join(tg.Var, "lib/app/hard.conf"))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("hard link is not app.conf: %v", err)
	}
	want := []string{"/var/lib/app", "/etc/motd", "/etc/app/gz", "/etc/app/current", "/etc/app/app.conf", "/home/old/notes", "/var/lib/app/suid", "/var/lib/app/hard.conf"}
	slices.Sort(want)
	got := slices.Sorted(slices.Values(rep.Written))
	if !slices.Equal(got, want) {
		t.Errorf("Written %v, want %v", got, want)
	}
}

// A file that exists with other content is refused without overwrite, before anything is
// written; with overwrite it is replaced.
func TestApplyOverwrite(t *testing.T) {
	tg := newTarget(t)
	_, err := apply(t, tg, cfg(`"storage":{"files":[{"path":"/etc/new","contents":{"source":"data:,n"}},{"path":"/etc/motd","contents":{"source":"data:,other"}}]}`))
	if err == nil || !strings.Contains(err.Error(), "storage.files[1] (/etc/motd): exists with other content: set overwrite: true") {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := os.Stat(filepath.Join(tg.Root, "etc/new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("/etc/new was written before the refusal: %v", err)
	}
	// The same content is no conflict.
	_, err = apply(t, tg, cfg(`"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,welcome%0A"}}]}`))
	must(t, err)
	_, err = apply(t, tg, cfg(`"storage":{"files":[{"path":"/etc/motd","overwrite":true,"contents":{"source":"data:,other"}}]}`))
	must(t, err)
	if got := read(t, filepath.Join(tg.Root, "etc/motd")); got != "other" {
		t.Errorf("motd = %q", got)
	}
}

// A path that leads out of /etc, /var and /home through a link of the tree is refused; an
// absolute link is followed inside the tree, never on the host.
func TestApplySymlinksStayInside(t *testing.T) {
	tg := newTarget(t)
	must(t, os.Symlink("/usr/lib", filepath.Join(tg.Root, "etc/tousr")))
	must(t, os.Symlink("../../../../../../../../tmp", filepath.Join(tg.Var, "escape")))
	for _, c := range []string{
		cfg(`"storage":{"files":[{"path":"/etc/tousr/x","contents":{"source":"data:,x"}}]}`),
		cfg(`"storage":{"files":[{"path":"/var/escape/x","contents":{"source":"data:,x"}}]}`),
	} {
		_, err := apply(t, tg, c)
		if err == nil || !strings.Contains(err.Error(), "outside /etc, /var and /home") {
			t.Errorf("Apply: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(tg.Root, "usr/lib/x")); err == nil {
		t.Error("wrote through the link into /usr")
	}
	// /root -> var/roothome leads to Var's roothome.
	_, err := apply(t, tg, cfg(`"storage":{"files":[{"path":"/var/roothome/f","contents":{"source":"data:,r"}}]}`))
	must(t, err)
}

func TestApplyUsersAndGroups(t *testing.T) {
	testutil.Root(t)
	tg := newTarget(t)
	rep, err := apply(t, tg, cfg(`"passwd":{
		"groups":[{"name":"ops"},{"name":"svc","gid":850,"system":true}],
		"users":[
			{"name":"core","passwordHash":"$6$salt$hash","sshAuthorizedKeys":["ssh-ed25519 AAAAC3 core@x","ssh-rsa AAAAB3 other"],"groups":["sudo","ops"],"gecos":"Core User","shell":"/bin/bash"},
			{"name":"svcuser","system":true,"noCreateHome":true,"primaryGroup":"svc","homeDir":"/var/lib/svc"},
			{"name":"nogrp","noUserGroup":true,"uid":4242},
			{"name":"root","sshAuthorizedKeys":["ssh-ed25519 AAAAroot root@x"]},
			{"name":"old","groups":["sudo"],"passwordHash":"$y$new"}
		]}`))
	must(t, err)
	etc := func(f string) string { return read(t, filepath.Join(tg.Root, "etc", f)) }
	for _, line := range []string{"core:x:1002:1002:Core User:/home/core:/bin/bash", "svcuser:x:999:850::/var/lib/svc:/bin/sh", "nogrp:x:4242:100::/home/nogrp:/bin/sh", "old:x:1000:1000::/home/old:/bin/sh"} {
		if !strings.Contains(etc("passwd"), line+"\n") {
			t.Errorf("passwd has no %q:\n%s", line, etc("passwd"))
		}
	}
	for _, line := range []string{"ops:x:1001:core", "svc:x:850:", "core:x:1002:", "sudo:x:27:core,old"} {
		if !strings.Contains(etc("group"), line+"\n") {
			t.Errorf("group has no %q:\n%s", line, etc("group"))
		}
	}
	if !strings.Contains(etc("gshadow"), "sudo:*::core,old\n") || !strings.Contains(etc("gshadow"), "ops:!::core\n") {
		t.Errorf("gshadow:\n%s", etc("gshadow"))
	}
	if !strings.Contains(etc("shadow"), "core:$6$salt$hash:") || !strings.Contains(etc("shadow"), "old:$y$new:19000:") || !strings.Contains(etc("shadow"), "nogrp:!:") {
		t.Errorf("shadow:\n%s", etc("shadow"))
	}
	home := filepath.Join(tg.Var, "home/core")
	// uid 1001 is free but gid 1001 is ops': core gets 1002 for both, as useradd does.
	owned(t, home, 1002, 1002, 0o700)
	owned(t, filepath.Join(home, ".profile"), 1002, 1002, 0o644)
	owned(t, filepath.Join(home, ".ssh"), 1002, 1002, 0o700)
	keys := filepath.Join(home, ".ssh/authorized_keys")
	owned(t, keys, 1002, 1002, 0o600)
	if got := read(t, keys); got != "ssh-ed25519 AAAAC3 core@x\nssh-rsa AAAAB3 other\n" {
		t.Errorf("authorized_keys = %q", got)
	}
	if got := read(t, filepath.Join(tg.Var, "roothome/.ssh/authorized_keys")); got != "ssh-ed25519 AAAAroot root@x\n" {
		t.Errorf("root's keys (in var/roothome) = %q", got)
	}
	if _, err := os.Stat(filepath.Join(tg.Var, "lib/svc")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("noCreateHome: %v", err)
	}
	if !slices.Equal(rep.Users, []string{"core", "svcuser", "nogrp", "root", "old"}) || !slices.Equal(rep.Groups, []string{"ops", "svc"}) {
		t.Errorf("report: users %v groups %v", rep.Users, rep.Groups)
	}
}

func TestApplyUserErrors(t *testing.T) {
	tg := newTarget(t)
	for _, tc := range []struct{ config, want string }{
		{`"passwd":{"users":[{"name":"a","groups":["nosuch"]}]}`, "passwd.users[0] (a): the group nosuch does not exist"},
		{`"passwd":{"users":[{"name":"a","uid":1000}]}`, "uid 1000 is the user old's already"},
		{`"storage":{"files":[{"path":"/etc/a","user":{"name":"ghost"}}]}`, "user ghost is neither in the target's /etc/passwd nor in passwd.users"},
	} {
		_, err := apply(t, tg, cfg(tc.config))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Apply: %v; want %q", err, tc.want)
		}
	}
	if got := read(t, filepath.Join(tg.Root, "etc/passwd")); got != baseTree["etc/passwd"] {
		t.Errorf("passwd changed by refused configs:\n%s", got)
	}
}

func TestApplyUnits(t *testing.T) {
	tg := newTarget(t)
	rep, err := apply(t, tg, cfg(`"systemd":{"units":[
		{"name":"hello.service","enabled":true,"contents":"[Service]\nExecStart=/bin/echo hi\n[Install]\nWantedBy=multi-user.target\nRequiredBy=web.target\n"},
		{"name":"vendor.service","enabled":true,"dropins":[{"name":"10-env.conf","contents":"[Service]\nEnvironment=A=1\n"}]},
		{"name":"getty@.service","enabled":true},
		{"name":"bad.service","mask":true}
	]}`))
	must(t, err)
	sys := filepath.Join(tg.Root, "etc/systemd/system")
	if got := read(t, filepath.Join(sys, "hello.service")); !strings.Contains(got, "ExecStart=/bin/echo hi") {
		t.Errorf("unit contents %q", got)
	}
	if got := read(t, filepath.Join(sys, "vendor.service.d/10-env.conf")); got != "[Service]\nEnvironment=A=1\n" {
		t.Errorf("dropin %q", got)
	}
	for link, target := range map[string]string{
		"multi-user.target.wants/hello.service":  "/etc/systemd/system/hello.service",
		"web.target.requires/hello.service":      "/etc/systemd/system/hello.service",
		"multi-user.target.wants/vendor.service": "/usr/lib/systemd/system/vendor.service",
		"vend.service":                           "/usr/lib/systemd/system/vendor.service",
		"getty.target.wants/getty@tty1.service":  "/usr/lib/systemd/system/getty@.service",
		"bad.service":                            "/dev/null",
	} {
		if l, err := os.Readlink(filepath.Join(sys, link)); err != nil || l != target {
			t.Errorf("%s -> %q (%v), want %s", link, l, err, target)
		}
	}
	if !slices.Equal(rep.Enabled, []string{"hello.service", "vendor.service", "getty@.service"}) || !slices.Equal(rep.Masked, []string{"bad.service"}) {
		t.Errorf("report: enabled %v masked %v", rep.Enabled, rep.Masked)
	}
	// Disabling removes the links.
	_, err = apply(t, tg, cfg(`"systemd":{"units":[{"name":"vendor.service","enabled":false},{"name":"bad.service","mask":false}]}`))
	must(t, err)
	for _, link := range []string{"multi-user.target.wants/vendor.service", "vend.service", "bad.service"} {
		if _, err := os.Lstat(filepath.Join(sys, link)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s still there: %v", link, err)
		}
	}
	for _, c := range []struct{ config, want string }{
		{`"systemd":{"units":[{"name":"noinstall.service","enabled":true}]}`, "has no [Install] section"},
		{`"systemd":{"units":[{"name":"missing.service","enabled":true}]}`, "neither in the config (contents) nor in the image"},
	} {
		if _, err := apply(t, tg, cfg(c.config)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Apply: %v, want %q", err, c.want)
		}
	}
}
