package kargs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/bootc-go/bootc/pkg/ostree"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		data string
		arch string
		want []string
		err  bool
	}{
		{`kargs = ["console=ttyS0,115200", "quiet"]`, "x86_64", []string{"console=ttyS0,115200", "quiet"}, false},
		{"kargs = [\"a\"]\nmatch-architectures = [\"x86_64\"]", "x86_64", []string{"a"}, false},
		{"kargs = [\"a\"]\nmatch-architectures = [\"aarch64\"]", "x86_64", nil, false},
		{`kargs = []`, "x86_64", []string{}, false},
		{`kargs = ["a b"]`, "x86_64", nil, true},
		{`kargs = [""]`, "x86_64", nil, true},
		{"kargs = [\"a\"]\nextra = 1", "x86_64", nil, true},
		{`match-architectures = ["x86_64"]`, "x86_64", nil, true},
		{`kargs = "a"`, "x86_64", nil, true},
		{`kargs = [`, "x86_64", nil, true},
	} {
		got, err := Parse("f.toml", []byte(tc.data), tc.arch)
		if tc.err {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse(%q) = %v, %v; want ErrInvalid", tc.data, got, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %q, %v; want %q", tc.data, got, err, tc.want)
		}
	}
}

func TestMerge(t *testing.T) {
	for _, tc := range []struct {
		cur, old, new, want []string
	}{
		// Install: nothing before.
		{nil, nil, []string{"quiet"}, []string{"quiet"}},
		// Upgrade: the image dropped "quiet" and added "splash"; the admin's "rw" stays.
		{[]string{"rw", "quiet", "console=ttyS0"}, []string{"quiet", "console=ttyS0"}, []string{"console=ttyS0", "splash"}, []string{"rw", "console=ttyS0", "splash"}},
		// No change keeps the order.
		{[]string{"a", "b"}, []string{"b"}, []string{"b"}, []string{"a", "b"}},
		// An argument the admin also set by hand is not duplicated.
		{[]string{"quiet"}, nil, []string{"quiet"}, []string{"quiet"}},
	} {
		if got := Merge(tc.cur, tc.old, tc.new); !slices.Equal(got, tc.want) {
			t.Errorf("Merge(%q, %q, %q) = %q, want %q", tc.cur, tc.old, tc.new, got, tc.want)
		}
	}
}

// A commit's kargs.d files are read in name order, skipping other architectures' and
// non-.toml files; a commit without the directory has none; a bad file is an error.
func TestFromCommitAndParseDir(t *testing.T) {
	ctx := context.Background()
	repo, err := ostree.Init(ctx, filepath.Join(t.TempDir(), "repo"), ostree.ModeBareUser, ostree.WithFsync(false))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, Dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"20-b.toml":     `kargs = ["b"]`,
		"10-a.toml":     `kargs = ["a1", "a2"]`,
		"30-other.toml": "kargs = [\"other\"]\nmatch-architectures = [\"nonesuch\"]",
		"README":        "not toml",
		"40-mine.toml":  "kargs = [\"mine\"]\nmatch-architectures = [\"" + Arch(runtimeArch()) + "\"]",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a1", "a2", "b", "mine"}
	if got, err := ParseDir(root); err != nil || !slices.Equal(got, want) {
		t.Errorf("ParseDir = %q, %v; want %q", got, err, want)
	}
	c, err := repo.CommitDir(ctx, root, ostree.WithBranch("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := FromCommit(ctx, repo, c); err != nil || !slices.Equal(got, want) {
		t.Errorf("FromCommit = %q, %v; want %q", got, err, want)
	}
	empty, err := repo.CommitDir(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := FromCommit(ctx, repo, empty); err != nil || got != nil {
		t.Errorf("FromCommit of a commit without kargs.d = %q, %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "50-bad.toml"), []byte("kargs = [1]"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseDir(root); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseDir with a bad file: %v", err)
	}
	bad, err := repo.CommitDir(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := FromCommit(ctx, repo, bad); !errors.Is(err, ErrInvalid) {
		t.Errorf("FromCommit with a bad file: %v", err)
	}
}

// kargs.d files come from images: arbitrary bytes must give arguments or ErrInvalid, never a
// panic, and never an argument with whitespace.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`kargs = ["console=ttyS0,115200", "quiet"]`))
	f.Add([]byte("kargs = [\"a\"]\nmatch-architectures = [\"x86_64\"]"))
	f.Add([]byte("[x]\nkargs = 1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Parse("f.toml", data, "x86_64")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		for _, k := range got {
			if k == "" || slices.ContainsFunc([]rune(k), func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) {
				t.Fatalf("argument %q", k)
			}
		}
	})
}

func runtimeArch() string { return runtime.GOARCH }
