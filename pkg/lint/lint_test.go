package lint

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bootc-go/bootc/internal/testutil"
)

// cleanRoot writes a rootfs on which no lint fires, for either root type.
func cleanRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "var/lib", "boot", "sysroot", "etc",
		"usr/lib/modules/6.1.0", "usr/lib/ostree", "usr/lib/tmpfiles.d", "usr/lib/sysusers.d", "usr/lib/bootc/kargs.d"} {
		mkdir(t, root, d)
	}
	write(t, root, "usr/lib/modules/6.1.0/vmlinuz", "kernel")
	write(t, root, "usr/lib/ostree/prepare-root.conf", "# composefs\n[composefs]\nenabled = true\n")
	write(t, root, "usr/lib/tmpfiles.d/var.conf", "d /var/lib 0755 - - -\nL /var/run - - - - ../run\n")
	write(t, root, "usr/lib/sysusers.d/basic.conf", "u root 0 \"Super User\" /root\ng wheel -\n")
	write(t, root, "usr/lib/bootc/kargs.d/10-console.toml", "kargs = [\"console=ttyS0,115200n8\", \"quiet\"]\nmatch-architectures = [\"x86_64\", \"aarch64\"]\n")
	write(t, root, "etc/passwd", "root:x:0:0:Super User:/root:/bin/sh\n")
	write(t, root, "etc/group", "root:x:0:\nwheel:x:10:\n")
	write(t, root, "etc/hostname", "tiny\n")
	symlink(t, root, "sysroot/ostree", "ostree")
	symlink(t, root, "../run", "var/run")
	return root
}

func mkdir(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, rel), 0o755); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, root, rel, content string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(rel))
	if err := os.WriteFile(filepath.Join(root, rel), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, root, target, rel string) {
	t.Helper()
	mkdir(t, root, filepath.Dir(rel))
	if err := os.Symlink(target, filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, root, rel string) {
	t.Helper()
	if err := os.RemoveAll(filepath.Join(root, rel)); err != nil {
		t.Fatal(err)
	}
}

// failed returns the names of the failed lints and their messages.
func failed(rep *Report) ([]string, string) {
	var names []string
	var msgs strings.Builder
	for _, r := range rep.Results {
		if r.Status == Failed {
			names = append(names, r.Name)
			msgs.WriteString(r.Name + ": " + r.Message + "\n")
		}
	}
	return names, msgs.String()
}

func TestCleanRootPasses(t *testing.T) {
	root := cleanRoot(t)
	for _, rt := range []RootType{RunningRoot, AlternativeRoot} {
		rep, err := Run(context.Background(), root, WithRootType(rt))
		if err != nil {
			t.Fatal(err)
		}
		if names, msgs := failed(rep); len(names) > 0 {
			t.Errorf("%v root: lints fired on the clean root:\n%s", rt, msgs)
		}
		if rep.Passed != len(registry)-1 || rep.Skipped != 1 || rep.Fatal != 0 || rep.Warnings != 0 {
			t.Errorf("%v root: counts %+v, want %d passed and 1 skipped", rt, rep, len(registry)-1)
		}
	}
}

// Each case breaks the clean root in one way; exactly the one lint must fire, naming the path.
func TestEachLintFiresAlone(t *testing.T) {
	cases := []struct {
		lint     string
		rootType RootType
		breakIt  func(t *testing.T, root string)
		wantMsg  string
	}{
		{"var-run", AlternativeRoot, func(t *testing.T, r string) { remove(t, r, "var/run"); mkdir(t, r, "var/run") }, "/var/run"},
		{"buildah-injected", AlternativeRoot, func(t *testing.T, r string) { write(t, r, "etc/resolv.conf", "") }, "/etc/resolv.conf"},
		{"etc-usretc", AlternativeRoot, func(t *testing.T, r string) { write(t, r, "usr/etc/foo.conf", "x") }, "/usr/etc"},
		{"bootc-kargs", AlternativeRoot, func(t *testing.T, r string) {
			write(t, r, "usr/lib/bootc/kargs.d/20-bad.toml", "kargs = [\"a=b\"]\narchitectures = [\"x86_64\"]\n")
		}, "/usr/lib/bootc/kargs.d/20-bad.toml: unknown key architectures"},
		{"kernel", AlternativeRoot, func(t *testing.T, r string) { write(t, r, "usr/lib/modules/6.2.0/vmlinuz", "k2") },
			"/usr/lib/modules/6.1.0, /usr/lib/modules/6.2.0"},
		{"utf8", AlternativeRoot, func(t *testing.T, r string) { write(t, r, "usr/share/bad\xffname", "x") }, `"/usr/share/bad\xffname"`},
		{"api-base-directories", AlternativeRoot, func(t *testing.T, r string) { remove(t, r, "proc"); remove(t, r, "sys"); write(t, r, "sys", "") },
			"Missing API filesystem base directories: /proc; Not directories: /sys"},
		{"baseimage-composefs", AlternativeRoot, func(t *testing.T, r string) {
			write(t, r, "usr/lib/ostree/prepare-root.conf", "[composefs]\nenabled = no\n")
		}, "/usr/lib/ostree/prepare-root.conf does not have composefs enabled"},
		{"baseimage-root", AlternativeRoot, func(t *testing.T, r string) { remove(t, r, "ostree"); symlink(t, r, "/sysroot/ostree", "ostree") },
			`Expected /ostree -> sysroot/ostree, not "/sysroot/ostree"`},
		{"var-log", AlternativeRoot, func(t *testing.T, r string) {
			write(t, r, "var/log/empty.log", "")
			write(t, r, "var/log/dnf/dnf.log", "log")
		}, "Found non-empty logfile: /var/log/dnf/dnf.log"},
		{"var-tmpfiles", RunningRoot, func(t *testing.T, r string) {
			write(t, r, "var/lib/demo/state", "state")
			mkdir(t, r, "var/cache/app/sub")
		}, "missing systemd tmpfiles.d entries:\n  /var/cache\n  /var/lib/demo\nFound non-directory/non-symlink files in /var:\n  /var/lib/demo/state"},
		{"sysusers", AlternativeRoot, func(t *testing.T, r string) {
			write(t, r, "etc/passwd", "root:x:0:0::/root:/bin/sh\ndemo:x:1000:1000::/home/demo:/bin/sh\n")
		}, "/etc/passwd entry without corresponding systemd sysusers.d:\n  demo"},
		{"nonempty-boot", AlternativeRoot, func(t *testing.T, r string) {
			write(t, r, "boot/vmlinuz-6.1.0", "k")
			mkdir(t, r, "boot/EFI/Linux")
		}, "Found non-empty /boot: /boot/vmlinuz-6.1.0"},
		{"nonempty-run-tmp", AlternativeRoot, func(t *testing.T, r string) {
			write(t, r, "tmp/leftover", "x")
			mkdir(t, r, "run/dnf")
			write(t, r, stubResolv, "")
		}, "Found content in runtime-only directories:\n  /run/dnf\n  /tmp/leftover"},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		seen[tc.lint] = true
		t.Run(tc.lint, func(t *testing.T) {
			root := cleanRoot(t)
			tc.breakIt(t, root)
			rep, err := Run(context.Background(), root, WithRootType(tc.rootType))
			if err != nil {
				t.Fatal(err)
			}
			names, msgs := failed(rep)
			if !reflect.DeepEqual(names, []string{tc.lint}) {
				t.Fatalf("lints fired: %v, want only %s:\n%s", names, tc.lint, msgs)
			}
			if !strings.Contains(msgs, tc.wantMsg) {
				t.Errorf("message does not say %q:\n%s", tc.wantMsg, msgs)
			}
		})
	}
	for _, l := range registry {
		if !seen[l.Name] {
			t.Errorf("lint %s has no case", l.Name)
		}
	}
}

func TestRootTypeSkips(t *testing.T) {
	root := cleanRoot(t)
	write(t, root, "etc/hostname", "")
	write(t, root, "var/lib/file", "x")
	for rt, want := range map[RootType]string{RunningRoot: "var-tmpfiles", AlternativeRoot: "buildah-injected"} {
		rep, err := Run(context.Background(), root, WithRootType(rt))
		if err != nil {
			t.Fatal(err)
		}
		if names, msgs := failed(rep); !reflect.DeepEqual(names, []string{want}) {
			t.Errorf("%v root: fired %v, want %s:\n%s", rt, names, want, msgs)
		}
	}
}

func TestSkipAndUnknown(t *testing.T) {
	root := cleanRoot(t)
	mkdir(t, root, "usr/etc")
	rep, err := Run(context.Background(), root, WithSkip("etc-usretc", "kernel"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Fatal != 0 || rep.Skipped != 3 || rep.Passed != len(registry)-3 {
		t.Errorf("with two skipped (plus var-tmpfiles for an alternative root): %+v", rep)
	}
	_, err = Run(context.Background(), root, WithSkip("no-such-lint"))
	if !errors.Is(err, ErrUnknownLint) || !strings.Contains(err.Error(), "var-run") {
		t.Errorf("unknown skip: %v", err)
	}
}

func TestLintsSortedAndComplete(t *testing.T) {
	want := []string{"api-base-directories", "baseimage-composefs", "baseimage-root", "bootc-kargs", "buildah-injected",
		"etc-usretc", "kernel", "nonempty-boot", "nonempty-run-tmp", "sysusers", "utf8", "var-log", "var-run", "var-tmpfiles"}
	if got := Names(); !reflect.DeepEqual(got, want) {
		t.Errorf("lints %v, want %v", got, want)
	}
	for _, l := range Lints() {
		if l.Description == "" || l.check == nil {
			t.Errorf("lint %s lacks a description or a check", l.Name)
		}
	}
}

func TestTruncation(t *testing.T) {
	root := cleanRoot(t)
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		write(t, root, "var/log/"+n+".log", "x")
	}
	for _, tc := range []struct {
		opts []Option
		want string
	}{
		{nil, "/var/log/a.log, /var/log/b.log, /var/log/c.log, /var/log/d.log, /var/log/e.log (and 2 more)"},
		{[]Option{WithNoTruncate()}, "/var/log/e.log, /var/log/f.log, /var/log/g.log"},
	} {
		rep, err := Run(context.Background(), root, tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		if _, msgs := failed(rep); !strings.Contains(msgs, tc.want) {
			t.Errorf("messages lack %q:\n%s", tc.want, msgs)
		}
	}
}

// The walk follows no symlink: loops, and symlinks out of the tree to bad names, do no harm.
func TestWalkDoesNotFollowSymlinks(t *testing.T) {
	outside := t.TempDir()
	write(t, outside, "bad\xffname", "x")
	root := cleanRoot(t)
	symlink(t, root, "..", "usr/share/parent")
	symlink(t, root, "self", "usr/share/self")
	symlink(t, root, outside, "usr/share/outside")
	symlink(t, root, outside, "var/log/outside")
	rep, err := Run(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if names, msgs := failed(rep); len(names) > 0 {
		t.Errorf("lints fired through symlinks:\n%s", msgs)
	}
	symlink(t, root, "bad\xfftarget", "usr/share/link")
	rep, err = Run(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if _, msgs := failed(rep); !strings.Contains(msgs, "utf8: Found non-UTF-8 symlink targets: /usr/share/link") {
		t.Errorf("bad symlink target not found:\n%s", msgs)
	}
}

func TestKargsParse(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
		wantErr       string
	}{
		{"plain", `kargs = ["a=b", "c"]`, []string{"a=b", "c", "z"}, ""},
		{"arch", "kargs = [\"a=b\"]\nmatch-architectures = [\"x86_64\"]", []string{"a=b", "z"}, ""},
		{"unknown key", "kargs = []\nfoo = 1", nil, "unknown key foo"},
		{"missing kargs", `match-architectures = ["x86_64"]`, nil, "no kargs key"},
		{"not toml", `kargs = [`, nil, "10.toml"},
		{"wrong type", `kargs = "a=b"`, nil, "10.toml"},
		{"space", `kargs = ["a b"]`, nil, "is not one kernel argument"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, kargsDir+"/10.toml", tc.content)
			write(t, dir, kargsDir+"/20.toml", `kargs = ["z"]`)
			write(t, dir, kargsDir+"/README", "not a toml file")
			r, err := openRoot(dir, 5)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			got, err := parseKargsDir(r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	write(t, dir, kargsDir, "a file")
	r, _ := openRoot(dir, 5)
	defer r.Close()
	if _, err := parseKargsDir(r); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("kargs.d as a file: %v", err)
	}
}

func TestOverlayEnabled(t *testing.T) {
	for conf, want := range map[string]bool{
		"[composefs]\nenabled = true\n":       true,
		"[composefs]\nenabled = signed\n":     true,
		"[composefs]\nenabled = maybe\n":      true,
		"[composefs]\nenabled = false\n":      false,
		"[root]\ntransient = true\n":          true,
		"[sysroot]\nreadonly = true\n":        false,
		"[composefs]\nenabled = no\n[root]\n": false,
	} {
		got, err := overlayEnabled([]byte(conf))
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", conf, got, err, want)
		}
	}
	if _, err := overlayEnabled([]byte("enabled = true\n")); err == nil {
		t.Error("a key outside a group was accepted")
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/tail\04`: `/tail\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// Mount points are not image content: a tmpfs on /run/secrets (as podman mounts one) with files
// in it fires neither nonempty-run-tmp nor utf8, though the mounted files are there.
func TestMountPointsAreNotContent(t *testing.T) {
	testutil.Root(t)
	root := cleanRoot(t)
	mnt := filepath.Join(root, "run/secrets")
	mkdir(t, root, "run/secrets")
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	write(t, root, "run/secrets/token", "x")
	write(t, root, "run/secrets/bad\xffname", "x")
	rep, err := Run(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if names, msgs := failed(rep); len(names) > 0 {
		t.Errorf("lints fired on a mount point's content:\n%s", msgs)
	}
	write(t, root, "run/leftover", "x")
	rep, err = Run(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	if _, msgs := failed(rep); msgs != "nonempty-run-tmp: Found content in runtime-only directories:\n  /run/leftover\n" {
		t.Errorf("with /run/leftover next to the mount:\n%s", msgs)
	}
}

// The list's JSON form is bootc's: type as a word, root-type only for lints limited to one.
func TestLintJSON(t *testing.T) {
	js, err := json.Marshal(Lints())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"name":"var-run","type":"fatal","description":"Check for /var/run`,
		`"name":"var-log","type":"warning",`,
		`"name":"buildah-injected","type":"warning","description":`,
		`"root-type":"alternative"}`,
	} {
		if !strings.Contains(string(js), want) {
			t.Errorf("JSON lacks %s:\n%s", want, js)
		}
	}
	if strings.Contains(string(js), `"root-type":""`) {
		t.Errorf("a lint for any root has a root-type:\n%s", js)
	}
}
