package testutil

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The host names below are placeholders (.invalid), not mirrors.
const deb822Sample = `Types: deb
# a comment
URIs: http://primary.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main
`

func TestParseDeb822Mirror(t *testing.T) {
	tests := []struct {
		name, input, suite, want string
	}{
		{"main entry", deb822Sample, "bookworm", "http://primary.invalid/debian"},
		{"updates", deb822Sample, "bookworm-updates", "http://primary.invalid/debian"},
		{"security entry", deb822Sample, "bookworm-security", "http://security.invalid/debian-security"},
		{"security listed first", "Types: deb\nURIs: http://s.invalid/ds\nSuites: bookworm-security\n\n" +
			"Types: deb deb-src\nURIs: http://a.invalid/d http://b.invalid/d\nSuites: bookworm\n", "bookworm", "http://a.invalid/d"},
		{"disabled skipped", "Enabled: no\nTypes: deb\nURIs: http://off.invalid/d\nSuites: bookworm\n\n" +
			"Types: deb\nURIs: http://on.invalid/d\nSuites: bookworm\n", "bookworm", "http://on.invalid/d"},
		{"deb-src only skipped", "Types: deb-src\nURIs: http://src.invalid/d\nSuites: bookworm\n", "bookworm", ""},
		{"folded field", "Types: deb\nURIs:\n http://folded.invalid/d\nSuites: trixie\n bookworm\n", "bookworm", "http://folded.invalid/d"},
		{"missing suite", deb822Sample, "trixie", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDeb822Mirror(strings.NewReader(tt.input), tt.suite)
			if tt.want == "" {
				if !errors.Is(err, errNoMirror) {
					t.Fatalf("got %q, %v; want errNoMirror", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestParseOneLineMirror(t *testing.T) {
	input := `# comment
deb-src http://src.invalid/debian bookworm main
deb http://sec.invalid/debian-security bookworm-security main
deb [arch=amd64 signed-by=/k.gpg] http://main.invalid/debian bookworm main contrib
`
	got, err := parseOneLineMirror(strings.NewReader(input), "bookworm")
	if err != nil || got != "http://main.invalid/debian" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestHostDebianMirror(t *testing.T) {
	if _, err := os.Stat(debianSources); err != nil {
		t.Skipf("no %s: %v", debianSources, err)
	}
	m, err := DebianMirror(debianSuite)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(m, "http://") && !strings.HasPrefix(m, "https://") && !strings.HasPrefix(m, "file:") {
		t.Errorf("mirror %q is not a URI", m)
	}
	if strings.Contains(m, "security") {
		t.Errorf("mirror %q is the security archive", m)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:         "/plain",
		`/with\040space`: "/with space",
		`/tab\011x`:      "/tab\tx",
		`/trailing\04`:   `/trailing\04`,
		`/back\134slash`: `/back\slash`,
		`/not\0xyoctal`:  `/not\0xyoctal`,
		`/end\040`:       "/end ",
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSanitizeTree(t *testing.T) {
	Root(t)
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "dev", "pts"))
	mustMkdir(t, filepath.Join(root, "run"))
	mustMkdir(t, filepath.Join(root, "etc"))
	mustWrite(t, filepath.Join(root, "etc", "keep"))
	mustWrite(t, filepath.Join(root, "dev", "regular"))
	if err := unix.Mknod(filepath.Join(root, "dev", "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "etc", "blockdev"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 0))); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(root, "run", "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(filepath.Join(root, "run", "socket"), unix.S_IFSOCK|0o600, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/null", filepath.Join(root, "etc", "link-to-dev")); err != nil {
		t.Fatal(err)
	}

	if err := SanitizeTree(root); err != nil {
		t.Fatal(err)
	}

	var left []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		left = append(left, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{".", "dev", "etc", "etc/keep", "etc/link-to-dev", "run"}
	if strings.Join(left, ",") != strings.Join(want, ",") {
		t.Errorf("after sanitize: %q, want %q", left, want)
	}
}

func TestLockFileExcludes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := LockFile(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file description, so a second open
	// in the same process contends like another process would.
	ctx, cancel := contextWithTimeout(t, 600*time.Millisecond)
	defer cancel()
	if _, err := LockFile(ctx, path); err == nil {
		t.Fatal("second lock succeeded while the first was held")
	}
	unlock()
	unlock2, err := LockFile(t.Context(), path)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestDebianTree(t *testing.T) {
	rootfs := DebianTree(t)
	for _, p := range []string{"usr/bin/dpkg", "etc/debian_version", "var/lib/dpkg/status"} {
		if _, err := os.Lstat(filepath.Join(rootfs, p)); err != nil {
			t.Errorf("tree lacks %s: %v", p, err)
		}
	}
	if v, err := os.ReadFile(filepath.Join(rootfs, "etc/debian_version")); err == nil && !strings.HasPrefix(string(v), "12") {
		t.Errorf("etc/debian_version = %q, want 12.x", v)
	}
	entries, err := os.ReadDir(filepath.Join(rootfs, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("dev is not empty: %d entries", len(entries))
	}
	err = filepath.WalkDir(rootfs, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&(fs.ModeSocket|fs.ModeNamedPipe|fs.ModeDevice|fs.ModeCharDevice) != 0 {
			t.Errorf("special file left in tree: %s", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// A second call finds the cached tree without rebuilding.
	start := time.Now()
	if again := DebianTree(t); again != rootfs {
		t.Errorf("second call returned %q, want %q", again, rootfs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cached lookup took %s", d)
	}
}

func mustMkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}
