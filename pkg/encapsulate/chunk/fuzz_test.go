package chunk

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// byteSource hands out fuzz bytes, zeros once they run out.
type byteSource struct{ data []byte }

func (b *byteSource) byte() byte {
	if len(b.data) == 0 {
		return 0
	}
	v := b.data[0]
	b.data = b.data[1:]
	return v
}

func (b *byteSource) uint32() uint32 {
	return uint32(b.byte()) | uint32(b.byte())<<8 | uint32(b.byte())<<16 | uint32(b.byte())<<24
}

// fuzzPackInput derives components, a layer limit and maybe a prior build from fuzz bytes.
func fuzzPackInput(data []byte) (comps []Component, maxLayers int, prior [][]string) {
	src := &byteSource{data: data}
	maxLayers = 2 + int(src.byte()%80)
	n := int(src.byte())
	for i := range n {
		c := Component{Name: fmt.Sprintf("c%d", i)}
		switch sel := src.byte(); {
		case sel < 8:
			c.Name = fmt.Sprintf("component:x%d", i)
			c.ChangeFrequency = maxFreq
		case sel < 16:
			c.ChangeFrequency = maxFreq
		case sel < 24:
			c.ChangeFrequency = src.uint32() // anything, up to math.MaxUint32
		default:
			c.ChangeFrequency = uint32(src.byte() % 64)
		}
		switch shift := src.byte() % 64; {
		case shift < 40:
			c.Size = int64(src.uint32()) << (shift % 24)
		case shift < 44:
			c.Size = 0
		default:
			c.Size = int64(src.uint32())<<31 | int64(src.uint32()) // up to 2^63-1
		}
		for j := range int(src.byte() % 4) {
			c.Objects = append(c.Objects, fmt.Sprintf("%s/o%d", c.Name, j))
		}
		comps = append(comps, c)
	}
	if flag := src.byte(); flag%2 == 1 {
		layers := 1 + int(src.byte()%90) // may exceed maxLayers
		prior = make([][]string, layers)
		used := map[string]bool{}
		for i := range int(src.byte()) {
			var name string
			if sel := src.byte(); sel%3 == 0 {
				name = fmt.Sprintf("gone%d", i)
			} else if n > 0 {
				name = comps[int(sel)%n].Name
			}
			if used[name] {
				continue
			}
			used[name] = true
			l := int(src.byte()) % layers
			prior[l] = append(prior[l], name)
		}
	}
	return comps, maxLayers, prior
}

// FuzzPack checks Pack's invariants and order independence on arbitrary inputs.
func FuzzPack(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{62, 10, 200, 10, 1, 2, 3, 4, 2})
	f.Add([]byte{0, 5, 1, 0, 9, 9, 9, 9, 1, 100, 30, 1, 2, 3, 4, 3, 1})
	f.Add([]byte{3, 40, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48})
	f.Add([]byte{10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200, 1, 5, 8, 1, 0, 2, 3, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		comps, maxLayers, prior := fuzzPackInput(data)
		layers, err := Pack(comps, maxLayers, prior)
		if len(prior) > maxLayers {
			if err == nil || !strings.Contains(err.Error(), "more than the maximum") {
				t.Fatalf("prior with %d layers, max %d: error %v", len(prior), maxLayers, err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPack(comps, maxLayers, prior, layers); err != nil {
			t.Fatal(err)
		}
		rev := slices.Clone(comps)
		slices.Reverse(rev)
		again, err := Pack(rev, maxLayers, prior)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, layers) {
			t.Fatalf("reversed input changes the layers:\n%+v\n%+v", again, layers)
		}
	})
}

// FuzzDpkgStatus runs the status parser, and DpkgPackages on a tree whose status file,
// diversions, list files and changelogs are the fuzz bytes, which must never panic.
func FuzzDpkgStatus(f *testing.F) {
	f.Add([]byte(testStatus))
	f.Add([]byte("Package: a\nStatus: install ok installed\nArchitecture: amd64\nSource: b (1)\n"))
	f.Add([]byte("Package: a\n continued\n\n\n\r\nPackage: b\r\nStatus: hold ok installed\r\n"))
	f.Add([]byte("/bin/sh\n/bin/sh.distrib\ndash\n"))
	f.Add([]byte(" -- A <a@b.c>  Mon, 02 Jan 2023 13:06:21 +0100\n"))
	f.Add([]byte(":\n: x\nx:\n\t\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := parseDpkgStatus(data)
		if err == nil {
			for _, e := range entries {
				if !validDpkgName(e.Package) || !validDpkgName(e.Source) {
					t.Fatalf("invalid names accepted: %+v", e)
				}
			}
		}
		parseChangelogTimes(data)
		parseDiversions(data)
		fsys := newMemFS().
			file(dpkgStatusFile, data).
			file(dpkgDiversionsFile, data).
			file("/var/lib/dpkg/info/a.list", data).
			file("/var/lib/dpkg/info/a:amd64.list", data).
			file("/usr/share/doc/a/changelog.Debian.gz", data).
			file("/usr/share/doc/b/changelog.Debian.gz", gz(t, string(data)))
		pkgs, err := DpkgPackages(fsys)
		if err != nil {
			return
		}
		if !slices.IsSortedFunc(pkgs, func(a, b Package) int { return strings.Compare(a.Name, b.Name) }) {
			t.Fatalf("packages not sorted: %+v", pkgs)
		}
		if _, err := Attribute(fsys, nil, pkgs); err != nil && !strings.Contains(err.Error(), "reserved") {
			t.Fatalf("Attribute on parsed packages: %v", err)
		}
	})
}
