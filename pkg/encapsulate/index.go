package encapsulate

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// objectInfo is what encapsulation needs to know of one content object.
type objectInfo struct {
	paths     []string // commit paths in walk order
	size      int64
	component string // user.component of its first path (own or inherited)
}

// commitIndex is a commit read once: its content objects with their paths, and every path's
// entry, so that the planner can read package databases from it.
type commitIndex struct {
	repo      *ostree.Repo
	checksum  ostree.Checksum
	commit    *ostree.Commit
	objects   map[ostree.Checksum]*objectInfo
	entries   map[string]indexEntry // by commit path
	hasVarTmp bool
}

type indexEntry struct {
	dir     bool
	object  ostree.Checksum
	symlink string
}

const componentXattr = "user.component"

func indexCommit(ctx context.Context, repo *ostree.Repo, c ostree.Checksum) (*commitIndex, error) {
	commit, err := repo.ReadCommit(c)
	if err != nil {
		return nil, err
	}
	ix := &commitIndex{repo: repo, checksum: c, commit: commit, objects: map[ostree.Checksum]*objectInfo{}, entries: map[string]indexEntry{}}
	dirComponent := map[string]string{}
	err = repo.Walk(ctx, c, "/", ostree.WalkOptions{Recursive: true, Headers: true}, func(e *ostree.TreeEntry) error {
		inherited := ""
		if e.Path != "/" {
			inherited = dirComponent[path.Dir(e.Path)]
		}
		if e.IsDir() {
			ix.entries[e.Path] = indexEntry{dir: true}
			if v, ok := e.Meta.Xattrs.Get(componentXattr); ok {
				inherited = string(v)
			}
			dirComponent[e.Path] = inherited
			if e.Path == "/var/tmp" {
				ix.hasVarTmp = true
			}
			return nil
		}
		ix.entries[e.Path] = indexEntry{object: e.Checksum, symlink: e.Header.SymlinkTarget}
		comp := inherited
		if v, ok := e.Header.Xattrs.Get(componentXattr); ok {
			comp = string(v)
		}
		o := ix.objects[e.Checksum]
		if o == nil {
			o = &objectInfo{size: e.Size, component: comp}
			ix.objects[e.Checksum] = o
		}
		o.paths = append(o.paths, e.Path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", c, err)
	}
	return ix, nil
}

// sortedObjects returns every content object in checksum order.
func (ix *commitIndex) sortedObjects() []ostree.Checksum {
	out := make([]ostree.Checksum, 0, len(ix.objects))
	for c := range ix.objects {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

// maxReadFile bounds what the planner may read from the commit (package databases).
const maxReadFile = 512 << 20

// ReadFile returns the content of a regular file of the commit, following symlinks.
func (ix *commitIndex) ReadFile(p string) ([]byte, error) {
	rp, ok := ix.resolve(p, true)
	if !ok {
		return nil, fmt.Errorf("%s: %w", p, fs.ErrNotExist)
	}
	e := ix.entries[rp]
	if e.dir {
		return nil, fmt.Errorf("%s: is a directory", p)
	}
	obj, err := ix.repo.OpenContent(e.object)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	if obj.Size > maxReadFile {
		return nil, fmt.Errorf("%s: %d bytes is too large to read", p, obj.Size)
	}
	return io.ReadAll(obj.Content)
}

// Resolve returns the path of an existing entry with symlinks in its directory components
// resolved (the last component is not followed).
func (ix *commitIndex) Resolve(p string) (string, bool) { return ix.resolve(p, false) }

// resolve walks p component by component inside the commit, following symlinks (all of them, or
// all but the last), at most 40 times. /etc stands for the commit's /usr/etc.
func (ix *commitIndex) resolve(p string, followLast bool) (string, bool) {
	todo := splitPath(p)
	cur := "/"
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		if next == "/etc" {
			next = "/usr/etc"
		}
		e, ok := ix.entries[next]
		if !ok {
			return "", false
		}
		if e.symlink != "" && (len(todo) > 0 || followLast) {
			if hops++; hops > 40 {
				return "", false
			}
			if strings.HasPrefix(e.symlink, "/") {
				cur = "/"
			}
			todo = append(splitPath(e.symlink), todo...)
			continue
		}
		if len(todo) > 0 && !e.dir {
			return "", false
		}
		cur = next
	}
	return cur, true
}

func splitPath(p string) []string {
	var out []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
