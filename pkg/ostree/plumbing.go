package ostree

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/bootc-go/bootc/pkg/gvariant"
)

// This file holds what the plumbing commands (`ostree show`, `ostree ls`, `ostree fsck`,
// `ostree refs`) report, in the forms the ostree CLI prints, so that every tool built on this
// package shows a repository as ostree does.

// CommitInfo describes a commit: what `ostree show` prints, with every metadata value as text.
// Its JSON form is `bootc ostree show --format json`'s.
type CommitInfo struct {
	Checksum Checksum
	// Parent is zero for none.
	Parent          Checksum
	Subject, Body   string
	Timestamp       time.Time // UTC
	Version         string    // the "version" metadata, if any
	ContentChecksum Checksum
	RootTree        Checksum
	RootMeta        Checksum
	// Metadata holds every metadata key: strings as themselves, other values in GVariant text
	// format (see MetadataText).
	Metadata map[string]string
}

// MarshalJSON writes checksums as hex strings, and no parent for none.
func (i *CommitInfo) MarshalJSON() ([]byte, error) {
	var parent string
	if !i.Parent.IsZero() {
		parent = i.Parent.String()
	}
	return json.Marshal(struct {
		Checksum        string            `json:"checksum"`
		Parent          string            `json:"parent,omitempty"`
		Subject         string            `json:"subject"`
		Body            string            `json:"body"`
		Timestamp       string            `json:"timestamp"`
		Version         string            `json:"version,omitempty"`
		ContentChecksum string            `json:"contentChecksum"`
		RootTree        string            `json:"rootDirtree"`
		RootMeta        string            `json:"rootDirmeta"`
		Metadata        map[string]string `json:"metadata"`
	}{i.Checksum.String(), parent, i.Subject, i.Body, i.Timestamp.Format(time.RFC3339), i.Version,
		i.ContentChecksum.String(), i.RootTree.String(), i.RootMeta.String(), i.Metadata})
}

// ShowCommit resolves rev (see ResolveRev) and describes its commit.
func (r *Repo) ShowCommit(rev string) (*CommitInfo, error) {
	sum, err := r.ResolveRev(rev)
	if err != nil {
		return nil, err
	}
	c, err := r.ReadCommit(sum)
	if err != nil {
		return nil, fmt.Errorf("reading commit %s: %w", sum, err)
	}
	info := &CommitInfo{
		Checksum: sum, Parent: c.Parent, Subject: c.Subject, Body: c.Body,
		Timestamp:       time.Unix(int64(c.Timestamp), 0).UTC(),
		ContentChecksum: c.ContentChecksum(), RootTree: c.RootTree, RootMeta: c.RootMeta,
		Metadata: map[string]string{},
	}
	info.Version, _ = c.Metadata.String("version")
	for _, m := range c.Metadata {
		info.Metadata[m.Key] = MetadataText(m.Value)
	}
	return info, nil
}

// MetadataText renders a metadata value: a string as itself, anything else in GVariant text
// format with type annotations.
func MetadataText(v gvariant.Variant) string {
	if s, ok := v.Value.(string); ok && v.Type.String() == "s" {
		return s
	}
	return gvariant.Print(v.Type, v.Value, true)
}

var xattrsType = gvariant.MustParseType("a(ayay)")

// ShowText is the commit as `ostree show` prints it.
func (info *CommitInfo) ShowText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "commit %s\n", info.Checksum)
	if !info.Parent.IsZero() {
		fmt.Fprintf(&b, "Parent:  %s\n", info.Parent)
	}
	fmt.Fprintf(&b, "ContentChecksum:  %s\n", info.ContentChecksum)
	fmt.Fprintf(&b, "Date:  %s\n", info.Timestamp.Format("2006-01-02 15:04:05 -0700"))
	if info.Version != "" {
		fmt.Fprintf(&b, "Version: %s\n", info.Version)
	}
	fmt.Fprintf(&b, "\n    %s\n\n", info.Subject)
	if info.Body != "" {
		fmt.Fprintf(&b, "    %s\n\n", strings.ReplaceAll(info.Body, "\n", "\n    "))
	}
	return b.String()
}

// Text is the report as `bootc ostree fsck` prints it: one line per problem, then the counts.
func (r *FsckReport) Text() string {
	var b strings.Builder
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "error: %s\n", p)
	}
	fmt.Fprintf(&b, "checked %d commits, %d dirtrees, %d dirmetas, %d files: %d problems\n", r.Commits, r.DirTrees, r.DirMetas, r.Files, len(r.Problems))
	return b.String()
}

// LsLine is e as `ostree ls` lists it (e from a Walk with Headers): type and mode, uid, gid,
// size, with checksums the content (or dirtree and dirmeta) checksums, with xattrs the extended
// attributes in GVariant text, then the path and a symlink's target.
func (e *TreeEntry) LsLine(checksums, xattrs bool) string {
	var b strings.Builder
	var x Xattrs
	if e.IsDir() {
		fmt.Fprintf(&b, "d%05o %d %d %6d ", e.Meta.Mode&0o7777, e.Meta.UID, e.Meta.GID, 0)
		if checksums {
			fmt.Fprintf(&b, "%s %s ", e.Tree, e.MetaChecksum)
		}
		x = e.Meta.Xattrs
	} else {
		kind := byte('-')
		if e.Header.IsSymlink() {
			kind = 'l'
		}
		fmt.Fprintf(&b, "%c%05o %d %d %6d ", kind, e.Header.Mode&0o7777, e.Header.UID, e.Header.GID, e.Size)
		if checksums {
			fmt.Fprintf(&b, "%s ", e.Checksum)
		}
		x = e.Header.Xattrs
	}
	if xattrs {
		if v, err := gvariant.Unmarshal(xattrsType, MarshalXattrs(x)); err == nil {
			fmt.Fprintf(&b, "{ %s } ", gvariant.Print(xattrsType, v, true))
		}
	}
	b.WriteString(e.Path)
	if !e.IsDir() && e.Header.IsSymlink() {
		b.WriteString(" -> " + e.Header.SymlinkTarget)
	}
	return b.String()
}

// MarshalJSON writes the report as {"commits", "dirtrees", "dirmetas", "files", "problems"},
// each problem as {"object", "path", "error"}, with an empty list for none.
func (r *FsckReport) MarshalJSON() ([]byte, error) {
	type problem struct {
		Object string `json:"object"`
		Path   string `json:"path,omitempty"`
		Error  string `json:"error"`
	}
	problems := []problem{}
	for _, p := range r.Problems {
		problems = append(problems, problem{p.Object.String(), p.Path, p.Err.Error()})
	}
	return json.Marshal(struct {
		Commits  int       `json:"commits"`
		DirTrees int       `json:"dirtrees"`
		DirMetas int       `json:"dirmetas"`
		Files    int       `json:"files"`
		Problems []problem `json:"problems"`
	}{r.Commits, r.DirTrees, r.DirMetas, r.Files, problems})
}

// MarshalJSON writes the ref as {"name", "checksum"}.
func (r Ref) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name     string `json:"name"`
		Checksum string `json:"checksum"`
	}{r.Name, r.Checksum.String()})
}
