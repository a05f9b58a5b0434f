package chunk

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const testStatus = `Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Source: bash (5.2.15-2)
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.
 .
 It is the default shell.

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4

Package: libc-bin
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4

Package: x-utils
Status: install ok installed
Architecture: amd64
Source: x (1.2-3)
Version: 1.2-3+b1

Package: libx1
status: install ok installed
Architecture: amd64
Multi-Arch: same
source: x (1.2-3)
Version: 1.2-3

Package: base-files
Status: hold ok installed
Architecture: amd64
Version: 12.4

Package: dash
Status: install ok installed
Architecture: amd64
Version: 0.5.12-2

Package: oldpkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: halfpkg
Status: install reinstreq half-installed
Architecture: amd64
Version: 1.0

Package: unpackedpkg
Status: install ok unpacked
Architecture: amd64
Version: 1.0
`

// dpkgTree is a synthetic Debian root: /bin -> usr/bin, multiarch list files, a diversion,
// shared and binNMU changelogs, and packages that are not installed.
func dpkgTree(t testing.TB) *memFS {
	t.Helper()
	info := "/var/lib/dpkg/info/"
	return newMemFS().
		symlink("/bin", "usr/bin").
		symlink("/lib", "usr/lib").
		text("/usr/bin/bash", "bash binary").
		text("/usr/bin/sh.distrib", "bash as sh").
		symlink("/usr/bin/sh", "dash").
		text("/usr/bin/dash", "dash binary").
		text("/usr/etc/bash.bashrc", "# bashrc").
		text("/usr/lib/x86_64-linux-gnu/libc.so.6", "libc").
		text("/usr/sbin/ldconfig", "ldconfig").
		text("/usr/bin/xtool", "xtool").
		text("/usr/lib/x86_64-linux-gnu/libx.so.1", "libx").
		text("/usr/lib/os-release", "ID=debian").
		text("/var/lib/dpkg/status", testStatus).
		text("/var/lib/dpkg/diversions", "/bin/sh\n/bin/sh.distrib\ndash\n").
		text(info+"bash.list", "/.\n/bin\n/bin/bash\n/bin/sh\n/etc\n/etc/bash.bashrc\n/usr/share/doc/bash\n").
		text(info+"libc6:amd64.list", "/.\n/lib/x86_64-linux-gnu/libc.so.6\n").
		text(info+"libc-bin.list", "/.\n/sbin/ldconfig\n").
		text(info+"x-utils.list", "/.\n/usr/bin/xtool\n").
		text(info+"libx1:amd64.list", "/.\n/usr/lib/x86_64-linux-gnu/libx.so.1\n").
		text(info+"base-files.list", "/.\n/usr/lib/os-release\n").
		text(info+"dash.list", "/.\n/bin/dash\n/bin/sh\n").
		text(info+"oldpkg.list", "/.\n/usr/bin/old\n").
		text(info+"unpackedpkg.list", "/.\n/usr/bin/unpacked\n").
		file("/usr/share/doc/bash/changelog.Debian.gz", gz(t, changelog("bash",
			"Mon, 02 Jan 2023 13:06:21 +0100", "Sat, 31 Dec 2022 16:40:30 +0100", "Tue, 1 Jun 2021 10:00:00 +0000"))).
		file("/usr/share/doc/bash/changelog.Debian.amd64.gz", gz(t, changelog("bash", "Sun, 05 Feb 2023 12:00:00 +0000"))).
		file("/usr/share/doc/libc6/changelog.Debian.gz", gz(t, changelog("glibc",
			"Wed, 01 Feb 2023 00:00:00 +0000", "Thu, 01 Dec 2022 00:00:00 +0000"))).
		symlink("/usr/share/doc/libc-bin", "libc6").
		file("/usr/share/doc/x-utils/changelog.Debian.gz", gz(t, changelog("x", "Fri, 03 Mar 2023 03:03:03 +0000"))).
		file("/usr/share/doc/libx1/changelog.Debian.gz", gz(t, changelog("x", "Fri, 03 Mar 2023 03:03:03 +0000", "Sat, 04 Mar 2023 04:04:04 +0000"))).
		file("/usr/share/doc/base-files/changelog.gz", gz(t, changelog("base-files", "Mon, 10 Apr 2023 10:00:00 -0200"))).
		text("/usr/share/doc/dash/changelog.Debian.gz", "not gzip")
}

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC1123Z, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

func TestDpkgPackages(t *testing.T) {
	pkgs, err := DpkgPackages(dpkgTree(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Package{}
	var names []string
	for _, p := range pkgs {
		got[p.Name] = p
		names = append(names, p.Name)
	}
	if want := []string{"base-files", "bash", "dash", "glibc", "x"}; !slices.Equal(names, want) {
		t.Fatalf("package names = %q, want %q (sorted, installed only, merged by source)", names, want)
	}
	tests := []struct {
		name string
		want Package
	}{
		{"source with version and binNMU changelog, diverted file", Package{
			Name: "bash", ID: "bash 5.2.15-2+b2",
			Files: []string{"/bin", "/bin/bash", "/bin/sh.distrib", "/etc", "/etc/bash.bashrc", "/usr/share/doc/bash"},
			ChangeTimes: []time.Time{utc("Tue, 01 Jun 2021 10:00:00 +0000"), utc("Sat, 31 Dec 2022 16:40:30 +0100"),
				utc("Mon, 02 Jan 2023 13:06:21 +0100"), utc("Sun, 05 Feb 2023 12:00:00 +0000")},
		}},
		{"multiarch list and shared changelog", Package{
			Name: "glibc", ID: "glibc 2.36-9+deb12u4",
			Files:       []string{"/lib/x86_64-linux-gnu/libc.so.6", "/sbin/ldconfig"},
			ChangeTimes: []time.Time{utc("Thu, 01 Dec 2022 00:00:00 +0000"), utc("Wed, 01 Feb 2023 00:00:00 +0000")},
		}},
		{"source with version, binaries with different versions", Package{
			Name: "x", ID: "x 1.2-3,1.2-3+b1",
			Files:       []string{"/usr/bin/xtool", "/usr/lib/x86_64-linux-gnu/libx.so.1"},
			ChangeTimes: []time.Time{utc("Fri, 03 Mar 2023 03:03:03 +0000"), utc("Sat, 04 Mar 2023 04:04:04 +0000")},
		}},
		{"held native package with changelog.gz", Package{
			Name: "base-files", ID: "base-files 12.4",
			Files:       []string{"/usr/lib/os-release"},
			ChangeTimes: []time.Time{utc("Mon, 10 Apr 2023 10:00:00 -0200")},
		}},
		{"diverting package keeps its path, broken changelog ignored", Package{
			Name: "dash", ID: "dash 0.5.12-2",
			Files: []string{"/bin/dash", "/bin/sh"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if g := got[tt.want.Name]; !reflect.DeepEqual(g, tt.want) {
				t.Errorf("got  %+v\nwant %+v", g, tt.want)
			}
		})
	}
}

func TestDpkgPackagesErrors(t *testing.T) {
	errRead := errors.New("I/O error")
	tests := []struct {
		name    string
		fsys    FS
		wantErr string // "" for nil, nil
	}{
		{"no dpkg database", newMemFS().text("/usr/bin/true", ""), ""},
		{"field without colon", newMemFS().text(dpkgStatusFile, "Package: a\nStatus install ok installed\n"), "line 2: not a field"},
		{"continuation first", newMemFS().text(dpkgStatusFile, " continued\n"), "line 1: continuation line"},
		{"missing package", newMemFS().text(dpkgStatusFile, "Status: install ok installed\n"), "missing Package"},
		{"package with slash", newMemFS().text(dpkgStatusFile, "Package: ../x\n"), "invalid or missing Package"},
		{"package listed twice", newMemFS().text(dpkgStatusFile, "Package: a\nArchitecture: amd64\n\nPackage: a\nArchitecture: amd64\n"), "already listed at line 1"},
		{"repeated field", newMemFS().text(dpkgStatusFile, "Package: a\nPackage: b\n"), "repeated"},
		{"diversions not in threes", newMemFS().text(dpkgStatusFile, "Package: a\n").text(dpkgDiversionsFile, "/a\n/b\n"), "multiple of 3"},
		{"read error", errFS{err: errRead}, "I/O error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, err := DpkgPackages(tt.fsys)
			if tt.wantErr == "" {
				if err != nil || pkgs != nil {
					t.Fatalf("DpkgPackages = %v, %v; want nil, nil", pkgs, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("DpkgPackages error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
	if _, err := DpkgPackages(errFS{err: errRead}); !errors.Is(err, errRead) {
		t.Errorf("read error %v does not wrap the FS error", err)
	}
}

// errFS fails every read with err.
type errFS struct{ err error }

func (e errFS) ReadFile(string) ([]byte, error) { return nil, e.err }
func (e errFS) Resolve(string) (string, bool)   { return "", false }

func TestParseChangelogTimes(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []time.Time
	}{
		{"standard", " -- A B <a@b.c>  Mon, 02 Jan 2023 13:06:21 +0100\n", []time.Time{utc("Mon, 02 Jan 2023 13:06:21 +0100")}},
		{"one-digit day", " -- A <a@b.c>  Tue, 1 Jun 2021 10:00:00 +0000\n", []time.Time{utc("Tue, 01 Jun 2021 10:00:00 +0000")}},
		{"no day name", " -- A <a@b.c>  01 Jun 2021 10:00:00 +0000\n", []time.Time{utc("Tue, 01 Jun 2021 10:00:00 +0000")}},
		{"no mail", " -- A B  Tue, 01 Jun 2021 10:00:00 +0000\n", []time.Time{utc("Tue, 01 Jun 2021 10:00:00 +0000")}},
		{"trailing text", " -- A <a@b.c>  Tue, 01 Jun 2021 10:00:00 +0000 (UTC)\r\n", []time.Time{utc("Tue, 01 Jun 2021 10:00:00 +0000")}},
		{"bad date", " -- A <a@b.c>  yesterday\n", nil},
		{"not a trailer", "  -- A <a@b.c>  Tue, 01 Jun 2021 10:00:00 +0000\n--A\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseChangelogTimes([]byte(tt.text)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnionTimes(t *testing.T) {
	a, b, c := utc("Mon, 02 Jan 2023 00:00:00 +0000"), utc("Tue, 03 Jan 2023 00:00:00 +0000"), utc("Wed, 04 Jan 2023 00:00:00 +0000")
	tests := []struct {
		name    string
		x, y    []time.Time
		want    []time.Time
		wantNil bool
	}{
		{"empty", nil, nil, nil, true},
		{"identical", []time.Time{a, b}, []time.Time{b, a}, []time.Time{a, b}, false},
		{"disjoint", []time.Time{c}, []time.Time{a}, []time.Time{a, c}, false},
		{"multiplicity is the max", []time.Time{a, a, b}, []time.Time{a, b, b, c}, []time.Time{a, a, b, b, c}, false},
		{"same instant other zone", []time.Time{a}, []time.Time{a.In(time.FixedZone("x", 3600))}, []time.Time{a}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unionTimes(tt.x, tt.y)
			if tt.wantNil != (got == nil) || len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if !got[i].Equal(tt.want[i]) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}
