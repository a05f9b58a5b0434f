package ostree

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/bootc-go/bootc/internal/atomicfile"
)

// ValidateRef checks a ref name as libostree does: slash-separated components, each starting with
// a letter, digit or underscore and made of letters, digits, '_', '-' and '.'.
func ValidateRef(ref string) error {
	if ref == "" {
		return fmt.Errorf("%w: empty", ErrInvalidRef)
	}
	for _, comp := range strings.Split(ref, "/") {
		if comp == "" {
			return fmt.Errorf("%w: %q has an empty component", ErrInvalidRef, ref)
		}
		for i := 0; i < len(comp); i++ {
			c := comp[i]
			word := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
			if !word && (i == 0 || c != '-' && c != '.') {
				return fmt.Errorf("%w: %q (refs are made of letters, digits, '_', '-', '.' and '/')", ErrInvalidRef, ref)
			}
		}
	}
	return nil
}

func splitRemoteRef(ref string) (remote, name string) {
	if i := strings.IndexByte(ref, ':'); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	return "", ref
}

func (r *Repo) refPath(ref string) (string, error) {
	remote, name := splitRemoteRef(ref)
	if err := ValidateRef(name); err != nil {
		return "", err
	}
	if remote != "" {
		if err := ValidateRef(remote); err != nil || strings.Contains(remote, "/") {
			return "", fmt.Errorf("%w: remote name %q", ErrInvalidRef, remote)
		}
		return filepath.Join(r.path, "refs", "remotes", remote, name), nil
	}
	return filepath.Join(r.path, "refs", "heads", name), nil
}

func readRefFile(path, ref string) (Checksum, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return Checksum{}, fmt.Errorf("%w: %s", ErrRefNotFound, ref)
		}
		return Checksum{}, fmt.Errorf("reading ref %s: %w", ref, err)
	}
	c, err := ParseChecksum(strings.TrimSpace(string(data)))
	if err != nil {
		return Checksum{}, fmt.Errorf("ref %s: %w", ref, err)
	}
	return c, nil
}

// ResolveRev turns a revision into a commit checksum. A revision is a full checksum, a ref
// ("fedora/x86_64/coreos/stable"), a remote ref ("origin:main"), and may end in "^" for the
// parent of what precedes it.
func (r *Repo) ResolveRev(rev string) (Checksum, error) {
	if base, ok := strings.CutSuffix(rev, "^"); ok {
		c, err := r.ResolveRev(base)
		if err != nil {
			return Checksum{}, err
		}
		commit, err := r.ReadCommit(c)
		if err != nil {
			return Checksum{}, err
		}
		if commit.Parent.IsZero() {
			return Checksum{}, fmt.Errorf("%w: %s has no parent", ErrRefNotFound, rev)
		}
		return commit.Parent, nil
	}
	if c, err := ParseChecksum(rev); err == nil {
		return c, nil
	}
	path, err := r.refPath(rev)
	if err != nil {
		return Checksum{}, err
	}
	c, err := readRefFile(path, rev)
	if errors.Is(err, ErrRefNotFound) && !strings.Contains(rev, ":") {
		// As libostree: fall back to a remote ref of that name, if exactly one remote has it.
		remotes, _ := os.ReadDir(filepath.Join(r.path, "refs", "remotes"))
		var found []Checksum
		for _, rd := range remotes {
			if rc, rerr := readRefFile(filepath.Join(r.path, "refs", "remotes", rd.Name(), rev), rev); rerr == nil {
				found = append(found, rc)
			}
		}
		if len(found) == 1 {
			return found[0], nil
		}
	}
	return c, err
}

// ReadRef returns the checksum a ref points at, or an error wrapping ErrRefNotFound.
func (r *Repo) ReadRef(ref string) (Checksum, error) {
	path, err := r.refPath(ref)
	if err != nil {
		return Checksum{}, err
	}
	return readRefFile(path, ref)
}

// writeRef points ref at c atomically (write a temporary file, fsync, rename), or deletes it when
// c is nil. A ref that leaves a commit first notes the commit in pruneDepartedFile (see
// PruneOptions.IfRootsRemoved): what it reaches may now be unreachable.
func (r *Repo) writeRef(ref string, c *Checksum) error {
	path, err := r.refPath(ref)
	if err != nil {
		return err
	}
	if old, err := readRefFile(path, ref); err == nil && (c == nil || old != *c) {
		if err := r.noteDeparted(old); err != nil {
			return fmt.Errorf("writing ref %s: %w", ref, err)
		}
	}
	if c == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("deleting ref %s: %w", ref, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("writing ref %s: %w", ref, err)
	}
	if err := atomicfile.WriteFile(path, []byte(c.String()+"\n"), 0o644, syncOption(r.fsync)...); err != nil {
		return fmt.Errorf("writing ref %s: %w", ref, err)
	}
	return nil
}

// SetRef points ref at c (atomically), outside of any transaction.
func (r *Repo) SetRef(ref string, c Checksum) error {
	if ok, err := r.HasObject(ObjectName{c, ObjectCommit}); err != nil {
		return err
	} else if !ok {
		return fmt.Errorf("setting ref %s: %w: %s", ref, ErrObjectNotFound, ObjectName{c, ObjectCommit})
	}
	return r.writeRef(ref, &c)
}

// DeleteRef removes ref. Deleting a ref that does not exist is an error wrapping ErrRefNotFound.
func (r *Repo) DeleteRef(ref string) error {
	if _, err := r.ReadRef(ref); err != nil {
		return err
	}
	return r.writeRef(ref, nil)
}

// ListRefs returns every local ref and every remote ref ("remote:ref") with its checksum, sorted
// by name.
func (r *Repo) ListRefs() ([]Ref, error) {
	var out []Ref
	walk := func(root, prefix string) error {
		refs, err := readRefDir(root, func(rel string) string { return prefix + rel })
		out = append(out, refs...)
		return err
	}
	if err := walk(filepath.Join(r.path, "refs", "heads"), ""); err != nil {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	remotes, err := os.ReadDir(filepath.Join(r.path, "refs", "remotes"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("listing refs: %w", err)
	}
	for _, rd := range remotes {
		if rd.IsDir() {
			if err := walk(filepath.Join(r.path, "refs", "remotes", rd.Name()), rd.Name()+":"); err != nil {
				return nil, fmt.Errorf("listing refs: %w", err)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// readRefDir reads every ref file below root (a missing root has none), naming each by
// name(its slash-separated path relative to root).
func readRefDir(root string, name func(rel string) string) ([]Ref, error) {
	var out []Ref
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		// A name starting with '.' is no ref (a ref component starts with a letter, digit or
		// '_'): it is the temporary file of a ref write that a killed process left behind.
		if strings.HasPrefix(d.Name(), ".") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		n := name(filepath.ToSlash(rel))
		c, err := readRefFile(path, n)
		if err != nil {
			return err
		}
		out = append(out, Ref{Name: n, Checksum: c})
		return nil
	})
	return out, err
}

// Ref is a named pointer to a commit.
type Ref struct {
	Name     string
	Checksum Checksum
}
