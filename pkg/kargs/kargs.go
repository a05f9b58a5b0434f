// Package kargs reads the kernel arguments an image asks for, from
// /usr/lib/bootc/kargs.d/*.toml (bootc's convention), and merges them into a deployment's:
//
//	# /usr/lib/bootc/kargs.d/10-console.toml
//	kargs = ["console=ttyS0,115200", "quiet"]
//	match-architectures = ["x86_64"]   # optional: apply only on these
//
// Files apply in name order; a file whose match-architectures does not list this machine's
// architecture is skipped. Any other key is an error, as in bootc.
package kargs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// Dir is where images keep their kernel argument files.
const Dir = "usr/lib/bootc/kargs.d"

// maxFile bounds one kargs.d file: they are a few lines.
const maxFile = 1 << 20

// ErrInvalid reports a kargs.d file that does not parse.
var ErrInvalid = errors.New("invalid kargs.d file")

type file struct {
	Kargs              []string `toml:"kargs"`
	MatchArchitectures []string `toml:"match-architectures"`
}

// Arch returns the architecture name kargs.d files use (the kernel's: x86_64, aarch64, ...) for
// a Go GOARCH.
func Arch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "ppc64le", "s390x", "riscv64":
		return goarch
	}
	return goarch
}

// Parse reads one kargs.d file and returns its arguments for arch ("" for this machine's);
// name is used in errors.
func Parse(name string, data []byte, arch string) ([]string, error) {
	if arch == "" {
		arch = Arch(runtime.GOARCH)
	}
	var f file
	md, err := toml.Decode(string(data), &f)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrInvalid, name, err)
	}
	if extra := md.Undecoded(); len(extra) > 0 {
		keys := make([]string, len(extra))
		for i, k := range extra {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: %s: unknown key %s (only kargs and match-architectures are allowed)", ErrInvalid, name, strings.Join(keys, ", "))
	}
	if !md.IsDefined("kargs") {
		return nil, fmt.Errorf("%w: %s: no kargs key (write kargs = [\"arg\", ...])", ErrInvalid, name)
	}
	for _, k := range f.Kargs {
		if k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("%w: %s: %q is not one kernel argument (no spaces; one list item each)", ErrInvalid, name, k)
		}
	}
	if md.IsDefined("match-architectures") && !slices.Contains(f.MatchArchitectures, arch) {
		return nil, nil
	}
	return f.Kargs, nil
}

// ParseDir reads the kargs.d files of the root filesystem at root.
func ParseDir(root string) ([]string, error) {
	dir := filepath.Join(root, Dir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents { // ReadDir sorts by name
		if !strings.HasSuffix(e.Name(), ".toml") || !e.Type().IsRegular() {
			continue
		}
		data, err := readBounded(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		k, err := Parse(path.Join("/", Dir, e.Name()), data, "")
		if err != nil {
			return nil, err
		}
		out = append(out, k...)
	}
	return out, nil
}

func readBounded(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err == nil && len(data) > maxFile {
		err = fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, p, maxFile)
	}
	return data, err
}

// FromCommit reads the kargs.d files of a commit in repo, without checking it out.
func FromCommit(ctx context.Context, repo *ostree.Repo, commit ostree.Checksum) ([]string, error) {
	type entry struct {
		name string
		sum  ostree.Checksum
	}
	var files []entry
	err := repo.Walk(ctx, commit, "/"+Dir, ostree.WalkOptions{}, func(e *ostree.TreeEntry) error {
		if !e.IsDir() && strings.HasSuffix(e.Path, ".toml") {
			files = append(files, entry{e.Path, e.Checksum})
		}
		return nil
	})
	if errors.Is(err, ostree.ErrPathNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
	var out []string
	for _, f := range files {
		obj, err := repo.OpenContent(f.sum)
		if err != nil {
			return nil, err
		}
		if obj.Content == nil { // a symlink: not followed
			obj.Close()
			continue
		}
		var buf bytes.Buffer
		_, err = io.Copy(&buf, io.LimitReader(obj.Content, maxFile+1))
		obj.Close()
		if err != nil {
			return nil, err
		}
		if buf.Len() > maxFile {
			return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrInvalid, f.name, maxFile)
		}
		k, err := Parse(f.name, buf.Bytes(), "")
		if err != nil {
			return nil, err
		}
		out = append(out, k...)
	}
	return out, nil
}

// Merge computes a new deployment's kernel arguments as bootc does on upgrade: start from
// the current deployment's, drop those the current image's kargs.d added that the new image
// no longer has, and append the new image's that are not there yet. Arguments the admin added
// by hand are kept.
func Merge(current, oldImage, newImage []string) []string {
	out := slices.Clone(current)
	for _, k := range oldImage {
		if slices.Contains(newImage, k) {
			continue
		}
		if i := slices.Index(out, k); i >= 0 {
			out = slices.Delete(out, i, i+1)
		}
	}
	for _, k := range newImage {
		if !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}
