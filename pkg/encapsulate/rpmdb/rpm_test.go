package rpmdb

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bootc-go/bootc/internal/testutil"
)

// testKey is an OpenPGP public key (ed25519, no secret part kept anywhere)
// that rpm --import turns into a gpg-pubkey pseudo package.
const testKey = `-----BEGIN PGP PUBLIC KEY BLOCK-----

mDMEawJqARYJKwYBBAHaRw8BAQdAEE8tQozDVwCbk2ZlvRgIu40gOStkVFB+C8KB
SDj3Nem0K3JwbWRiIHRlc3Qga2V5IDxycG1kYi10ZXN0QGV4YW1wbGUuaW52YWxp
ZD6IkAQTFggAOBYhBFVmQxVH9vZV6znR+TAXVbeQCHFJBQJrAmoBAhsDBQsJCAcC
BhUKCQgLAgQWAgMBAh4BAheAAAoJEDAXVbeQCHFJUtMBAOtwwOwxuLyb49SjRTJ2
peT+nvJXN23vk6aK1GWuYD5SAPoCSkysvbcdxq3CMM/f/WlIxrb5FJ1WbEND7GFT
W40FCg==
=gd9P
-----END PGP PUBLIC KEY BLOCK-----
`

// testSpec describes one noarch package to build with rpmbuild.
type testSpec struct {
	name, epoch, version, release string
	install                       string // %install script
	files                         string // %files section
	changelog                     string // %changelog section, may be empty
	// changelogDates are the dates in changelog, newest first; rpm stores
	// each as noon UTC of that day.
	changelogDates []string
}

// spec renders the spec file.
func (s testSpec) spec() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Name: %s\nVersion: %s\nRelease: %s\n", s.name, s.version, s.release)
	if s.epoch != "" {
		fmt.Fprintf(&b, "Epoch: %s\n", s.epoch)
	}
	fmt.Fprintf(&b, "Summary: rpmdb test package %s\nLicense: MIT\nBuildArch: noarch\n", s.name)
	// No debuginfo, build-id links or brp scripts: just the files.
	b.WriteString("%global debug_package %{nil}\n%global __os_install_post %{nil}\n%global _build_id_links none\n")
	fmt.Fprintf(&b, "%%description\nTest package %s for the rpmdb reader.\n", s.name)
	fmt.Fprintf(&b, "%%install\n%s\n%%files\n%s\n", s.install, s.files)
	if s.changelog != "" {
		fmt.Fprintf(&b, "%%changelog\n%s\n", s.changelog)
	}
	return b.String()
}

// changelogEntries renders a %changelog for dates (newest first, in
// rpm's "Mon Jan 02 2006" form).
func changelogEntries(evr string, dates ...string) string {
	var b strings.Builder
	for i, d := range dates {
		fmt.Fprintf(&b, "* %s Test Packager <packager@example.invalid> - %s\n- change %d\n\n", d, evr, len(dates)-i)
	}
	return b.String()
}

// smallSpecs are the packages of testdata/rpmdb-small.sqlite: files in
// several directories, a config file, a symlink, an empty directory, an
// epoch, and a package without files or changelog.
func smallSpecs() []testSpec {
	alphaDates := []string{"Tue Mar 05 2024", "Mon Feb 05 2024", "Sun Jan 01 2023"}
	betaDates := []string{"Fri Jul 14 2023", "Wed Dec 31 2014"}
	return []testSpec{
		{
			name: "alpha", version: "1.0", release: "1",
			install: `mkdir -p %{buildroot}/etc %{buildroot}/usr/bin %{buildroot}/usr/share/alpha/data %{buildroot}/usr/share/doc/alpha
echo conf > %{buildroot}/etc/alpha.conf
printf '#!/bin/sh\necho alpha\n' > %{buildroot}/usr/bin/alpha
chmod 755 %{buildroot}/usr/bin/alpha
echo one > %{buildroot}/usr/share/alpha/data/one.dat
echo two > %{buildroot}/usr/share/alpha/data/two.dat
echo readme > %{buildroot}/usr/share/doc/alpha/README`,
			files: `%config(noreplace) /etc/alpha.conf
/usr/bin/alpha
/usr/share/alpha
/usr/share/doc/alpha`,
			changelog:      changelogEntries("1.0-1", alphaDates...),
			changelogDates: alphaDates,
		},
		{
			name: "beta", epoch: "3", version: "0.9", release: "2",
			install: `mkdir -p %{buildroot}/usr/lib/beta %{buildroot}/usr/bin %{buildroot}/var/lib/beta
printf '#!/bin/sh\necho beta\n' > %{buildroot}/usr/lib/beta/beta.sh
ln -s ../lib/beta/beta.sh %{buildroot}/usr/bin/beta`,
			files: `/usr/lib/beta
/usr/bin/beta
%dir /var/lib/beta`,
			changelog:      changelogEntries("3:0.9-2", betaDates...),
			changelogDates: betaDates,
		},
		{
			name: "meta", version: "1", release: "1",
			install: "true",
			files:   "",
		},
	}
}

// bigSpec is a package with 2000 files: its header (a few hundred KiB) needs
// a long overflow chain.
func bigSpec() testSpec {
	dates := []string{"Thu Feb 29 2024", "Sat Jan 01 2000"}
	return testSpec{
		name: "bigpkg", version: "2.5", release: "3.el9",
		install: `for d in $(seq 0 9); do for s in 0 1; do
  dir=%{buildroot}/usr/share/bigpkg/d$d/sub$s
  mkdir -p $dir
  for i in $(seq 1 100); do echo $d$s$i > $dir/file-$i.txt; done
done; done`,
		files:          "/usr/share/bigpkg",
		changelog:      changelogEntries("2.5-3.el9", dates...),
		changelogDates: dates,
	}
}

// buildRPMs builds specs with rpmbuild under dir and returns the paths of
// the packages.
func buildRPMs(t *testing.T, dir string, specs []testSpec) []string {
	t.Helper()
	top := filepath.Join(dir, "rpmbuild")
	var rpms []string
	for _, s := range specs {
		path := filepath.Join(dir, s.name+".spec")
		if err := os.WriteFile(path, []byte(s.spec()), 0o644); err != nil {
			t.Fatal(err)
		}
		testutil.Run(t, "rpmbuild", "--quiet", "--define", "_topdir "+top, "-bb", path)
		evr := s.version + "-" + s.release
		rpms = append(rpms, filepath.Join(top, "RPMS", "noarch", s.name+"-"+evr+".noarch.rpm"))
	}
	return rpms
}

// rpmCmd runs rpm on the database in dbDir with the sqlite backend.
func rpmCmd(t *testing.T, dbDir string, args ...string) string {
	t.Helper()
	return testutil.Run(t, "rpm", append([]string{"--dbpath", dbDir, "--define", "_db_backend sqlite"}, args...)...)
}

// makeRPMDB creates a sqlite rpmdb in a new directory, installs rpms into it
// (database only) and imports testKey, and returns the directory.
func makeRPMDB(t *testing.T, dir string, rpms []string) string {
	t.Helper()
	dbDir := filepath.Join(dir, "db")
	if err := os.Mkdir(dbDir, 0o755); err != nil {
		t.Fatal(err)
	}
	rpmCmd(t, dbDir, "--initdb")
	rpmCmd(t, dbDir, append([]string{"--nodeps", "--noscripts", "--notriggers", "--justdb", "-i"}, rpms...)...)
	key := filepath.Join(dir, "key.asc")
	if err := os.WriteFile(key, []byte(testKey), 0o644); err != nil {
		t.Fatal(err)
	}
	rpmCmd(t, dbDir, "--import", key)
	// rpm checkpoints its write-ahead log on close; the reader relies on it.
	if fi, err := os.Stat(filepath.Join(dbDir, "rpmdb.sqlite-wal")); err == nil && fi.Size() != 0 {
		t.Fatalf("rpm left a %d-byte write-ahead log", fi.Size())
	}
	return dbDir
}

// queryRPM returns the packages of the database in dbDir as rpm itself
// reports them (gpg-pubkey left out), and whether it listed a gpg-pubkey.
func queryRPM(t *testing.T, dbDir string) (pkgs []Package, sawPubkey bool) {
	t.Helper()
	out := rpmCmd(t, dbDir, "-qa", "--qf",
		"%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\t%{BUILDTIME}\n")
	none := func(s string) string {
		if s == "(none)" {
			return ""
		}
		return s
	}
	for line := range strings.Lines(out) {
		f := strings.Split(strings.TrimSuffix(line, "\n"), "\t")
		if len(f) != 7 {
			t.Fatalf("rpm -qa: bad line %q", line)
		}
		if f[0] == gpgPubkeyName {
			sawPubkey = true
			continue
		}
		p := Package{Name: f[0], Version: f[2], Release: f[3], Arch: none(f[4]), SourceRPM: none(f[5])}
		var err error
		if e := none(f[1]); e != "" {
			if p.Epoch, err = strconv.Atoi(e); err != nil {
				t.Fatalf("rpm -qa: epoch: %v", err)
			}
		}
		if p.BuildTime, err = strconv.ParseInt(f[6], 10, 64); err != nil {
			t.Fatalf("rpm -qa: build time: %v", err)
		}
		for l := range strings.Lines(rpmCmd(t, dbDir, "-q", "--qf", "[%{CHANGELOGTIME}\n]", p.Name)) {
			if l = strings.TrimSpace(l); l == "" || l == "(none)" {
				continue
			}
			ts, err := strconv.ParseInt(l, 10, 64)
			if err != nil {
				t.Fatalf("rpm -q changelog: %v", err)
			}
			p.ChangelogTimes = append(p.ChangelogTimes, ts)
		}
		for l := range strings.Lines(rpmCmd(t, dbDir, "-ql", p.Name)) {
			if l = strings.TrimSuffix(l, "\n"); l != "(contains no files)" {
				p.Files = append(p.Files, l)
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, sawPubkey
}

// comparePackages fails the test if got differs from want.
func comparePackages(t *testing.T, want, got []Package) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d packages, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if g.NEVRA() != w.NEVRA() || g.SourceRPM != w.SourceRPM || g.BuildTime != w.BuildTime {
			t.Errorf("package %d: got %s (source %q, built %d), want %s (source %q, built %d)",
				i, g.NEVRA(), g.SourceRPM, g.BuildTime, w.NEVRA(), w.SourceRPM, w.BuildTime)
		}
		if g.Name != w.Name || g.Epoch != w.Epoch || g.Version != w.Version || g.Release != w.Release || g.Arch != w.Arch {
			t.Errorf("package %d: got %+v, want %+v", i, g, w)
		}
		if !slices.Equal(g.ChangelogTimes, w.ChangelogTimes) {
			t.Errorf("%s: changelog times %v, want %v", w.Name, g.ChangelogTimes, w.ChangelogTimes)
		}
		if !slices.Equal(g.Files, w.Files) {
			t.Errorf("%s: %s", w.Name, testutil.FirstDiff("rpm -ql", strings.Join(w.Files, "\n"),
				"ReadPackages", strings.Join(g.Files, "\n")))
		}
	}
}

// checkChangelogDates checks rpm's changelog times against the dates the
// specs were written with (noon UTC), so the comparison with rpm cannot pass
// on two equally wrong readings.
func checkChangelogDates(t *testing.T, specs []testSpec, pkgs []Package) {
	t.Helper()
	for _, s := range specs {
		var want []int64
		for _, d := range s.changelogDates {
			day, err := time.Parse("Mon Jan 02 2006", d)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, day.Add(12*time.Hour).Unix())
		}
		i := slices.IndexFunc(pkgs, func(p Package) bool { return p.Name == s.name })
		if i < 0 {
			t.Errorf("package %s missing", s.name)
			continue
		}
		if got := pkgs[i].ChangelogTimes; !slices.Equal(got, want) {
			t.Errorf("%s: changelog times %v, want %v", s.name, got, want)
		}
	}
}

// TestAgainstRPM builds packages with rpmbuild, installs them into a fresh
// sqlite rpmdb and checks that ReadFile reads what rpm itself reports.
func TestAgainstRPM(t *testing.T) {
	testutil.RequireTool(t, "rpm", "rpmbuild")
	dir := t.TempDir()
	specs := append(smallSpecs(), bigSpec())
	dbDir := makeRPMDB(t, dir, buildRPMs(t, dir, specs))

	want, sawPubkey := queryRPM(t, dbDir)
	if len(want) != len(specs) {
		t.Fatalf("rpm -qa lists %d packages besides gpg-pubkey, want %d", len(want), len(specs))
	}
	if !sawPubkey {
		t.Error("rpm -qa lists no gpg-pubkey: the test does not cover skipping it")
	}
	dbFile := filepath.Join(dbDir, "rpmdb.sqlite")
	got, err := ReadFile(dbFile)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	comparePackages(t, want, got)
	checkChangelogDates(t, specs, got)
	if i := slices.IndexFunc(got, func(p Package) bool { return p.Name == "bigpkg" }); i < 0 || len(got[i].Files) != 2031 {
		t.Errorf("bigpkg does not have its 2000 files, 20 subdirectories and 11 directories")
	}

	// The test is only meaningful if the Packages table needed interior
	// pages and overflow chains.
	st := packagesPageStats(t, dbFile)
	t.Logf("Packages table pages: %+v", st)
	if st.interior == 0 || st.leaf < 2 || st.overflow < 50 {
		t.Errorf("Packages table has %d interior, %d leaf, %d overflow pages; want interior pages and a long overflow chain",
			st.interior, st.leaf, st.overflow)
	}
}

// packagesPageStats counts the pages of the Packages table of a database.
func packagesPageStats(t *testing.T, path string) pageStats {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	var st pageStats
	if err := scanHeaders(f, fi.Size(), &st, func(int64, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestUpdateTestdata regenerates testdata/rpmdb-small.sqlite and
// testdata/rpmdb-small.json when RPMDB_UPDATE_TESTDATA=1. It needs rpm,
// rpmbuild and the sqlite3 command.
func TestUpdateTestdata(t *testing.T) {
	if os.Getenv("RPMDB_UPDATE_TESTDATA") != "1" {
		t.Skip("set RPMDB_UPDATE_TESTDATA=1 to regenerate testdata")
	}
	testutil.RequireTool(t, "rpm", "rpmbuild", "sqlite3")
	dir := t.TempDir()
	dbDir := makeRPMDB(t, dir, buildRPMs(t, dir, smallSpecs()))
	want, _ := queryRPM(t, dbDir)

	// Copy the rows into a database of 512-byte pages, where even these
	// small headers need overflow pages and the table interior pages.
	small := filepath.Join(dir, "small.sqlite")
	script := fmt.Sprintf(`PRAGMA page_size=512;
PRAGMA journal_mode=WAL;
CREATE TABLE IF NOT EXISTS 'Packages' (hnum INTEGER PRIMARY KEY AUTOINCREMENT,blob BLOB NOT NULL);
ATTACH %s AS src;
INSERT INTO Packages SELECT hnum, blob FROM src.Packages ORDER BY hnum;
`, sqlQuote(filepath.Join(dbDir, "rpmdb.sqlite")))
	cmd := exec.Command("sqlite3", small)
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v\n%s", err, out)
	}
	if st := packagesPageStats(t, small); st.interior == 0 || st.overflow == 0 {
		t.Fatalf("small database has %+v pages; want interior and overflow pages", st)
	}
	data, err := os.ReadFile(small)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "rpmdb-small.sqlite"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "rpmdb-small.json"), append(js, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// sqlQuote quotes s as an SQL string literal.
func sqlQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}
