package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
)

// TestInstallIgnitionRefusals: a config the install does not apply is refused before anything
// is written: the sysroot directory stays empty, a disk image file is not created.
func TestInstallIgnitionRefusals(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, testimage.TinyOS(t, "1.0", testimage.ProvisioningFiles), "oci:"+layout)
	v34 := func(rest string) string { return `{"ignition":{"version":"3.4.0"},` + rest + `}` }
	dir := t.TempDir()
	for _, tc := range []struct{ name, config, want string }{
		{"disks", v34(`"storage":{"disks":[{"device":"/dev/vda","wipeTable":true}]}`), "storage.disks"},
		{"raid", v34(`"storage":{"raid":[{"name":"md0","level":"raid1","devices":["/dev/vda","/dev/vdb"]}]}`), "storage.raid"},
		{"filesystems", v34(`"storage":{"filesystems":[{"device":"/dev/vda4","format":"xfs","path":"/var"}]}`), "storage.filesystems"},
		{"luks", v34(`"storage":{"luks":[{"name":"data","device":"/dev/vdb"}]}`), "storage.luks"},
		{"http source", v34(`"storage":{"files":[{"path":"/etc/a","contents":{"source":"http://192.0.2.1/a"}}]}`), "storage.files[0].contents.source: http sources are not supported"},
		{"usr path", v34(`"storage":{"files":[{"path":"/etc/fine","contents":{"source":"data:,ok"}},{"path":"/usr/bin/x","contents":{"source":"data:,x"}}]}`), "storage.files[1].path: /usr/bin/x is not under /etc, /var or /home"},
		{"dotdot", v34(`"storage":{"files":[{"path":"/etc/../usr/bin/x"}]}`), "not fully simplified"},
		{"spec 2.2.0", `{"ignition":{"version":"2.2.0"}}`, "spec 2.2.0 is the old Ignition format"},
		{"unknown version", `{"ignition":{"version":"4.0.0"}}`, "spec 4.0.0 is not supported"},
		{"kernelArguments", v34(`"kernelArguments":{"shouldExist":["console=ttyS0"]}`), "kernelArguments"},
		{"merge", `{"ignition":{"version":"3.4.0","config":{"merge":[{"source":"https://192.0.2.1/c.ign"}]}}}`, "ignition.config.merge[0]"},
		{"remove user", v34(`"passwd":{"users":[{"name":"old","shouldExist":false}]}`), "passwd.users[0].shouldExist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ign := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".ign")
			must(t, os.WriteFile(ign, []byte(tc.config), 0o644))
			sys := testutil.SysrootDir(t)
			_, errs, code := run(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, "--ignition", ign, sys)
			if code != 1 || !strings.Contains(errs, "--ignition "+ign) || !strings.Contains(errs, tc.want) {
				t.Errorf("exit %d, stderr %q (want %q)", code, errs, tc.want)
			}
			if ents, err := os.ReadDir(sys); err != nil || len(ents) != 0 {
				t.Errorf("the refused install wrote into the sysroot: %v %v", ents, err)
			}
			disk := filepath.Join(dir, "x.img")
			if _, _, code := run(t, "install", "to-disk", "--source-imgref", "oci:"+layout, "--ignition", ign, disk); code != 1 {
				t.Errorf("to-disk: exit %d", code)
			}
			if _, err := os.Stat(disk); err == nil {
				t.Error("the refused to-disk install created the disk image")
			}
		})
	}
	keys := filepath.Join(dir, "keys")
	must(t, os.WriteFile(keys, []byte("not a key\n\nssh-ed25519\n"), 0o644))
	sys := testutil.SysrootDir(t)
	if _, errs, code := run(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, "--root-ssh-authorized-keys", keys, sys); code != 2 || !strings.Contains(errs, "line 3: not an authorized_keys line") {
		t.Errorf("bad keys: exit %d, %q", code, errs)
	}
}

// TestInstallIgnitionCLI: the flags reach the install, which says what it applied.
func TestInstallIgnitionCLI(t *testing.T) {
	testutil.Root(t)
	tree := testimage.TinyOS(t, "1.0", testimage.ProvisioningFiles)
	testimage.AddHomeLinks(t, tree)
	layout := filepath.Join(t.TempDir(), "layout")
	testimage.Compose(t, tree, "oci:"+layout)
	dir := t.TempDir()
	ign, keys := filepath.Join(dir, "c.ign"), filepath.Join(dir, "keys")
	must(t, os.WriteFile(ign, []byte(`{"ignition":{"version":"3.5.0"},"passwd":{"users":[{"name":"core","sshAuthorizedKeys":["ssh-ed25519 AAAA core"]}]},`+
		`"storage":{"files":[{"path":"/etc/hostname","contents":{"source":"data:,node1%0A"}}]},"systemd":{"units":[{"name":"vendor.service","enabled":true}]}}`), 0o644))
	must(t, os.WriteFile(keys, []byte("ssh-ed25519 AAAAadmin admin@x\n"), 0o644))
	sys := testutil.SysrootDir(t)
	out := mustRun(t, "install", "to-filesystem", "--source-imgref", "oci:"+layout, "--ignition", ign, "--root-ssh-authorized-keys", keys, sys)
	for _, want := range []string{
		"Root's SSH keys: /etc/tmpfiles.d/bootc-root-ssh.conf (systemd-tmpfiles creates /root/.ssh/authorized_keys at boot)\n",
		"Applied the Ignition config: 8 paths written; users: core; groups: none; enabled: vendor.service; masked: none\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	found, _ := filepath.Glob(filepath.Join(sys, "ostree/deploy/default/deploy/*/etc/hostname"))
	if len(found) != 1 {
		t.Fatalf("/etc/hostname in the deployment: %v", found)
	}
	if b, _ := os.ReadFile(found[0]); string(b) != "node1\n" {
		t.Errorf("/etc/hostname = %q", b)
	}
}
