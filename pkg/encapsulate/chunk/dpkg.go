package chunk

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Paths of the dpkg database inside the commit.
const (
	dpkgStatusFile     = "/var/lib/dpkg/status"
	dpkgInfoDir        = "/var/lib/dpkg/info"
	dpkgDiversionsFile = "/var/lib/dpkg/diversions"
	docDir             = "/usr/share/doc"
)

// maxChangelogSize bounds how much of a decompressed changelog is read.
const maxChangelogSize = 64 << 20

// dpkgEntry is one paragraph of the dpkg status file.
type dpkgEntry struct {
	Package       string
	Architecture  string
	Version       string
	Status        string
	Source        string // source package name, Package if the paragraph has no Source field
	SourceVersion string // the version in "Source: name (version)", else ""
}

// installed reports whether the entry's files are on disk: Status "install ok installed"
// (or "hold ok installed", an installed package held at its version).
func (e dpkgEntry) installed() bool {
	f := strings.Fields(e.Status)
	return len(f) == 3 && (f[0] == "install" || f[0] == "hold") && f[1] == "ok" && f[2] == "installed"
}

// DpkgPackages reads the Debian package database of the commit: /var/lib/dpkg/status (only
// installed packages, Status "install ok installed" or "hold ok installed"), the file lists
// /var/lib/dpkg/info/<pkg>:<arch>.list or <pkg>.list, /var/lib/dpkg/diversions, and the
// changelogs /usr/share/doc/<pkg>/changelog.Debian.gz (changelog.gz for native packages that
// have no changelog.Debian.gz) plus the binNMU changelog changelog.Debian.<arch>.gz.
//
// The binary packages of one source package (the Source field, which may carry " (version)")
// merge into one Package named after the source. Its ID is the source name and the distinct
// binary versions, comma-separated, e.g. "util-linux 1:2.38.1-5+deb12u3"; its Files are the
// sorted union of the binaries' lists, with a path diverted by another package replaced by its
// divert-to path; its ChangeTimes are the multiset union of the binaries' changelog entries (a
// changelog that several binaries share counts once), sorted.
//
// A missing list file or changelog is not an error, nor is a changelog that is not gzip or
// whose trailer lines do not parse (those entries are skipped). DpkgPackages returns nil, nil
// if the commit has no dpkg status file. The result is sorted by Name.
func DpkgPackages(fsys FS) ([]Package, error) {
	data, err := fsys.ReadFile(dpkgStatusFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dpkgStatusFile, err)
	}
	entries, err := parseDpkgStatus(data)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", dpkgStatusFile, err)
	}
	diversions, err := readDiversions(fsys)
	if err != nil {
		return nil, err
	}

	type source struct {
		versions []string
		files    []string
		times    []time.Time
	}
	sources := map[string]*source{}
	for _, e := range entries {
		if !e.installed() {
			continue
		}
		files, err := readDpkgList(fsys, e, diversions)
		if err != nil {
			return nil, err
		}
		times, err := readDpkgChangelogs(fsys, e)
		if err != nil {
			return nil, err
		}
		s := sources[e.Source]
		if s == nil {
			s = &source{}
			sources[e.Source] = s
		}
		if e.Version != "" {
			s.versions = append(s.versions, e.Version)
		}
		s.files = append(s.files, files...)
		s.times = unionTimes(s.times, times)
	}

	pkgs := make([]Package, 0, len(sources))
	for _, name := range sortedKeys(sources) {
		s := sources[name]
		id := name
		if vs := sortedUnique(s.versions); len(vs) > 0 {
			id += " " + strings.Join(vs, ",")
		}
		pkgs = append(pkgs, Package{Name: name, ID: id, Files: sortedUnique(s.files), ChangeTimes: s.times})
	}
	return pkgs, nil
}

// parseDpkgStatus parses a dpkg status file: deb822 paragraphs separated by blank lines,
// "Field: value" lines with continuation lines that start with a space or tab. Field names are
// case-insensitive. Every paragraph needs a valid Package field, and no package may appear
// twice for one architecture.
func parseDpkgStatus(data []byte) ([]dpkgEntry, error) {
	paras, err := parseDeb822(data)
	if err != nil {
		return nil, err
	}
	entries := make([]dpkgEntry, 0, len(paras))
	seen := map[string]int{} // package:arch -> line
	for _, p := range paras {
		e := dpkgEntry{
			Package:      strings.TrimSpace(p.fields["package"]),
			Architecture: strings.TrimSpace(p.fields["architecture"]),
			Version:      strings.TrimSpace(p.fields["version"]),
			Status:       p.fields["status"],
		}
		if !validDpkgName(e.Package) {
			return nil, fmt.Errorf("line %d: invalid or missing Package field %q", p.line, e.Package)
		}
		if e.Architecture != "" && !validDpkgName(e.Architecture) {
			return nil, fmt.Errorf("line %d: package %s: invalid Architecture %q", p.line, e.Package, e.Architecture)
		}
		key := e.Package + ":" + e.Architecture
		if prev, dup := seen[key]; dup {
			return nil, fmt.Errorf("line %d: package %s (%s) already listed at line %d", p.line, e.Package, e.Architecture, prev)
		}
		seen[key] = p.line
		e.Source = e.Package
		if src := strings.Fields(p.fields["source"]); len(src) > 0 {
			if !validDpkgName(src[0]) {
				return nil, fmt.Errorf("line %d: package %s: invalid Source %q", p.line, e.Package, src[0])
			}
			e.Source = src[0]
			if len(src) > 1 {
				e.SourceVersion = strings.TrimSuffix(strings.TrimPrefix(strings.Join(src[1:], " "), "("), ")")
			}
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// validDpkgName reports whether s can be a package or architecture name: non-empty, no path
// separators or white space, and not "." or "..", so that it is safe in a file name.
func validDpkgName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		if r == '/' || r <= ' ' || r == 0x7f {
			return false
		}
	}
	return true
}

// deb822Paragraph is one paragraph with lower-cased field names.
type deb822Paragraph struct {
	line   int // line number of its first field
	fields map[string]string
}

// parseDeb822 splits data into paragraphs of fields. Continuation lines are joined to their
// field's value with "\n". A line that is neither a field, a continuation nor blank, a
// continuation line that starts a paragraph, and a field repeated within a paragraph are errors.
func parseDeb822(data []byte) ([]deb822Paragraph, error) {
	var (
		paras []deb822Paragraph
		cur   map[string][]string // the current paragraph's fields, by line
		last  string              // field the previous line belongs to
	)
	flush := func() {
		if cur == nil {
			return
		}
		p := &paras[len(paras)-1]
		for name, lines := range cur {
			p.fields[name] = strings.Join(lines, "\n")
		}
		cur, last = nil, ""
	}
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur == nil || last == "" {
				return nil, fmt.Errorf("line %d: continuation line outside a field", n)
			}
			cur[last] = append(cur[last], strings.TrimSpace(line))
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("line %d: not a field: %q", n, truncate(line, 80))
		}
		if cur == nil {
			paras = append(paras, deb822Paragraph{line: n, fields: map[string]string{}})
			cur = map[string][]string{}
		}
		if _, dup := cur[name]; dup {
			return nil, fmt.Errorf("line %d: field %q repeated", n, name)
		}
		cur[name] = []string{strings.TrimSpace(value)}
		last = name
	}
	flush()
	return paras, nil
}

// truncate shortens s to at most n bytes for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// diversion is one entry of /var/lib/dpkg/diversions.
type diversion struct {
	to string
	by string // the diverting package, ":" for a local diversion
}

// readDiversions reads /var/lib/dpkg/diversions: groups of three lines, the diverted path, the
// divert-to path and the diverting package. A missing file means no diversions.
func readDiversions(fsys FS) (map[string]diversion, error) {
	data, err := fsys.ReadFile(dpkgDiversionsFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dpkgDiversionsFile, err)
	}
	return parseDiversions(data)
}

func parseDiversions(data []byte) (map[string]diversion, error) {
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil, nil
	}
	if len(lines)%3 != 0 {
		return nil, fmt.Errorf("parsing %s: %d lines is not a multiple of 3", dpkgDiversionsFile, len(lines))
	}
	out := make(map[string]diversion, len(lines)/3)
	for i := 0; i < len(lines); i += 3 {
		out[lines[i]] = diversion{to: lines[i+1], by: lines[i+2]}
	}
	return out, nil
}

// readDpkgList returns the paths that e's list file names, diverted paths replaced by their
// divert-to path unless e is the diverting package.
func readDpkgList(fsys FS, e dpkgEntry, diversions map[string]diversion) ([]string, error) {
	var candidates []string
	if e.Architecture != "" {
		candidates = append(candidates, path.Join(dpkgInfoDir, e.Package+":"+e.Architecture+".list"))
	}
	candidates = append(candidates, path.Join(dpkgInfoDir, e.Package+".list"))
	for _, name := range candidates {
		data, err := fsys.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		var files []string
		for line := range strings.SplitSeq(string(data), "\n") {
			p := strings.TrimSuffix(line, "\r")
			if p == "" || p == "/." {
				continue
			}
			if d, ok := diversions[p]; ok && d.by != e.Package {
				p = d.to
			}
			files = append(files, p)
		}
		return files, nil
	}
	return nil, nil
}

// readDpkgChangelogs returns the entry times of e's changelogs: changelog.Debian.gz, or
// changelog.gz if there is none, plus the binNMU changelog changelog.Debian.<arch>.gz.
func readDpkgChangelogs(fsys FS, e dpkgEntry) ([]time.Time, error) {
	dir := path.Join(docDir, e.Package)
	var times []time.Time
	found := false
	for _, name := range []string{"changelog.Debian.gz", "changelog.gz"} {
		t, ok, err := readChangelog(fsys, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		if ok {
			times, found = t, true
			break
		}
	}
	if e.Architecture != "" && found {
		t, _, err := readChangelog(fsys, path.Join(dir, "changelog.Debian."+e.Architecture+".gz"))
		if err != nil {
			return nil, err
		}
		times = append(times, t...)
	}
	slices.SortFunc(times, time.Time.Compare)
	return times, nil
}

// readChangelog reads a gzip-compressed Debian changelog and returns its entry times; ok is
// false if the file does not exist. Content that is not gzip is ignored.
func readChangelog(fsys FS, name string) (times []time.Time, ok bool, err error) {
	data, err := fsys.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", name, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, true, nil
	}
	text, _ := io.ReadAll(io.LimitReader(zr, maxChangelogSize)) // a truncated stream still yields the entries before the damage
	return parseChangelogTimes(text), true, nil
}

// parseChangelogTimes returns the times of the trailer lines of a Debian changelog,
// " -- Name <mail>  Day, DD Mon YYYY HH:MM:SS +ZZZZ", in file order, in UTC. Lines whose date
// does not parse are skipped.
func parseChangelogTimes(text []byte) []time.Time {
	var times []time.Time
	for line := range strings.SplitSeq(string(text), "\n") {
		rest, ok := strings.CutPrefix(line, " -- ")
		if !ok {
			continue
		}
		var date string
		if i := strings.LastIndexByte(rest, '>'); i >= 0 {
			date = rest[i+1:]
		} else if i := strings.Index(rest, "  "); i >= 0 {
			date = rest[i:]
		} else {
			continue
		}
		if t, ok := parseChangelogDate(date); ok {
			times = append(times, t)
		}
	}
	return times
}

// parseChangelogDate parses an RFC 5322 date as Debian changelogs write it, with or without the
// day name and with one- or two-digit days; anything after the zone is ignored.
func parseChangelogDate(s string) (time.Time, bool) {
	f := strings.Fields(s)
	if len(f) > 0 && strings.HasSuffix(f[0], ",") {
		f = f[1:]
	}
	if len(f) < 5 {
		return time.Time{}, false
	}
	t, err := time.Parse("_2 Jan 2006 15:04:05 -0700", strings.Join(f[:5], " "))
	if err != nil {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// unionTimes returns the sorted multiset union of a and b: a time occurring n times in a and m
// times in b occurs max(n, m) times. Both inputs may be unsorted.
func unionTimes(a, b []time.Time) []time.Time {
	if len(a) == 0 && len(b) == 0 {
		return nil
	}
	a = slices.SortedFunc(slices.Values(a), time.Time.Compare)
	b = slices.SortedFunc(slices.Values(b), time.Time.Compare)
	out := make([]time.Time, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i].Before(b[j])):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j].Before(a[i]):
			out = append(out, b[j])
			j++
		default: // equal: one occurrence matched in both
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// sortedUnique returns the sorted distinct strings of s.
func sortedUnique(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
