package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/bootc-go/bootc/internal/testutil"
)

// lintRoot writes a root filesystem on which no lint fires.
func lintRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"usr/lib/modules/6.1.0/vmlinuz":    "kernel",
		"usr/lib/ostree/prepare-root.conf": "[composefs]\nenabled = true\n",
		"etc/hostname":                     "tiny\n",
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp", "var", "boot", "sysroot"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		writeFile(t, filepath.Join(root, p), c)
	}
	if err := os.Symlink("sysroot/ostree", filepath.Join(root, "ostree")); err != nil {
		t.Fatal(err)
	}
	return root
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestContainerLintExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		breakIt  string // a file to create in the clean root
		args     []string
		code     int
		stdout   []string
		stderr   string
		noStdout string
	}{
		{name: "clean", code: 0, stdout: []string{"Checks passed: 13\nChecks skipped: 1\n"}, noStdout: "Warnings"},
		{name: "fatal", breakIt: "usr/etc/x.conf", code: 1,
			stdout: []string{"Failed lint: etc-usretc: Found /usr/etc next to /etc", "Checks passed: 12\n"}, stderr: "Checks failed: 1"},
		{name: "warning", breakIt: "var/log/build.log", code: 0,
			stdout: []string{"Lint warning: var-log: Found non-empty logfile: /var/log/build.log\n", "Warnings: 1\n"}},
		{name: "fatal warning", breakIt: "var/log/build.log", args: []string{"--fatal-warnings"}, code: 1,
			stdout: []string{"Lint warning: var-log:", "Warnings: 1\n"}, stderr: "Checks failed: 1"},
		{name: "skipped warning", breakIt: "var/log/build.log", args: []string{"--fatal-warnings", "--skip", "var-log", "--skip", "kernel"}, code: 0,
			stdout: []string{"Checks passed: 11\nChecks skipped: 3\n"}, noStdout: "var-log"},
		{name: "skipped fatal", breakIt: "usr/etc/x.conf", args: []string{"--skip=etc-usretc"}, code: 0},
		{name: "unknown skip", args: []string{"--skip", "var-runn"}, code: 2, stderr: `unknown lint "var-runn": valid lints are api-base-directories, baseimage-composefs,`},
		{name: "bad format", args: []string{"--format", "yaml"}, code: 2, stderr: "unknown --format"},
		{name: "extra argument", args: []string{"extra"}, code: 2, stderr: "unexpected argument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := lintRoot(t)
			if tc.breakIt != "" {
				writeFile(t, filepath.Join(root, tc.breakIt), "content")
			}
			out, errs, code := run(t, append([]string{"container", "lint", "--rootfs", root}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errs)
			}
			for _, want := range tc.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if tc.noStdout != "" && strings.Contains(out, tc.noStdout) {
				t.Errorf("stdout has %q:\n%s", tc.noStdout, out)
			}
			if !strings.Contains(errs, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errs)
			}
		})
	}
}

func TestContainerLintJSONReport(t *testing.T) {
	root := lintRoot(t)
	writeFile(t, filepath.Join(root, "usr/lib/modules/6.2.0/vmlinuz"), "second kernel")
	out, _, code := run(t, "container", "lint", "--rootfs", root, "--format", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	var rep struct {
		Results                          []struct{ Name, Type, Status, Message string }
		Passed, Skipped, Warnings, Fatal int
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if rep.Fatal != 1 || rep.Passed != 12 || rep.Skipped != 1 || len(rep.Results) != 14 {
		t.Errorf("report counts %+v", rep)
	}
	for _, r := range rep.Results {
		if r.Name == "kernel" && (r.Status != "failed" || r.Type != "fatal" || !strings.Contains(r.Message, "/usr/lib/modules/6.2.0")) {
			t.Errorf("kernel result %+v", r)
		}
	}
}

func TestContainerLintList(t *testing.T) {
	type info struct {
		Name        string `json:"name" yaml:"name"`
		Type        string `json:"type" yaml:"type"`
		Description string `json:"description" yaml:"description"`
		RootType    string `json:"root-type" yaml:"root-type"`
	}
	for _, format := range []string{"text", "json"} {
		out := mustRun(t, "container", "lint", "--list", "--format", format)
		var list []info
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(out), &list)
		} else {
			err = yaml.Unmarshal([]byte(out), &list)
		}
		if err != nil {
			t.Fatalf("%s: %v:\n%s", format, err, out)
		}
		byName := map[string]info{}
		for _, l := range list {
			byName[l.Name] = l
			if l.Description == "" || (l.Type != "fatal" && l.Type != "warning") {
				t.Errorf("%s: %+v", format, l)
			}
		}
		if len(list) != 14 || byName["var-tmpfiles"].RootType != "running" || byName["buildah-injected"].RootType != "alternative" ||
			byName["kernel"].Type != "fatal" || byName["var-log"].Type != "warning" || list[0].Name != "api-base-directories" {
			t.Errorf("%s: list %+v", format, list)
		}
	}
	out := mustRun(t, "container", "lint", "--help")
	if !strings.Contains(out, "Examples:") || !strings.Contains(out, "bootc container lint --rootfs") {
		t.Errorf("help has no examples:\n%s", out)
	}
	out = mustRun(t, "container", "--help")
	if !strings.Contains(out, "Examples:") || !strings.Contains(out, "bootc container lint") {
		t.Errorf("help has no examples:\n%s", out)
	}
}

// `RUN bootc container lint` as the last step of a real podman build, FROM an image of ours: the
// build passes for a good image and fails for broken ones.
func TestContainerLintInPodmanBuild(t *testing.T) {
	testutil.RequireTool(t, "go")
	pm := testutil.NewPodman(t)
	rootfs := busyboxRootfs(t)
	_, errs, code := run(t, "compose", "image", "--rootfs", rootfs, "--output", "containers-storage:"+pm.StorageRef("localhost/tiny:1"), "-q")
	if code != 0 {
		t.Fatalf("compose image: exit %d: %s", code, errs)
	}
	ctxDir := t.TempDir()
	build := exec.Command("go", "build", "-tags", "containers_image_openpgp", "-o", filepath.Join(ctxDir, "bootc"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cases := []struct {
		name, step string
		wantFail   string // "" for a build that passes
	}{
		{"good", "RUN test -d /sysroot", ""},
		{"usr-etc", "RUN busybox mkdir -p /usr/etc && echo x > /usr/etc/extra.conf", "Failed lint: etc-usretc"},
		{"two-kernels", "RUN busybox mkdir -p /usr/lib/modules/6.2.0-1-amd64 && echo k > /usr/lib/modules/6.2.0-1-amd64/vmlinuz", "Failed lint: kernel: Multiple kernels found: /usr/lib/modules/6.1.0-1-amd64, /usr/lib/modules/6.2.0-1-amd64"},
		{"var-run", "RUN busybox mkdir -p /var/run/x", "Failed lint: var-run"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			containerfile := "FROM scratch AS tools\nCOPY bootc /bootc\n\n" +
				"FROM localhost/tiny:1\nCOPY --from=tools /bootc /usr/local/bin/bootc\n" + tc.step + "\nRUN /usr/local/bin/bootc container lint\n"
			cf := filepath.Join(t.TempDir(), "Containerfile")
			writeFile(t, cf, containerfile)
			out, err := pm.Command("build", "--isolation", "chroot", "-f", cf, "-t", "localhost/lint-"+tc.name, ctxDir).CombinedOutput()
			if tc.wantFail == "" {
				if err != nil {
					t.Fatalf("build of a good image failed: %v\n%s", err, out)
				}
				// Inside the build the root is the running root: buildah-injected is the one skipped.
				if !strings.Contains(string(out), "Checks passed: ") || !strings.Contains(string(out), "Checks skipped: 1\n") ||
					strings.Contains(string(out), "Failed lint") || strings.Contains(string(out), "buildah-injected") {
					t.Errorf("lint output of the good image:\n%s", out)
				}
				return
			}
			if err == nil {
				t.Fatalf("build of a broken image passed:\n%s", out)
			}
			if !strings.Contains(string(out), tc.wantFail) {
				t.Errorf("build output lacks %q:\n%s", tc.wantFail, out)
			}
		})
	}
}
