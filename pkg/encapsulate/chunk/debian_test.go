package chunk

import (
	"cmp"
	"slices"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// TestDebianTree attributes and packs a real debootstrap minbase bookworm root filesystem,
// seen in commit layout (/etc at /usr/etc).
func TestDebianTree(t *testing.T) {
	fsys := dirFS{root: testutil.DebianTree(t)}
	pkgs, err := DpkgPackages(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 40 {
		t.Fatalf("%d source packages, want a minbase system's 40 or more", len(pkgs))
	}
	withChangelog := 0
	for _, p := range pkgs {
		if len(p.ChangeTimes) > 0 {
			withChangelog++
		}
	}
	if withChangelog < len(pkgs)*9/10 {
		t.Errorf("only %d of %d packages have changelog entries", withChangelog, len(pkgs))
	}

	files := fsys.files(t)
	comps, err := Attribute(fsys, files, pkgs)
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]Component{}
	for _, c := range comps {
		for _, o := range c.Objects {
			owner[o] = c
		}
	}
	objectOf := map[string]string{}
	var total, packaged int64
	unpackaged := map[string]int64{}
	for _, f := range files {
		objectOf[f.Path] = f.Object
		if !strings.HasPrefix(f.Path, "/usr/") || strings.HasPrefix(f.Path, "/usr/etc/") {
			continue
		}
		total += f.Size
		if c := owner[f.Object]; c.ChangeFrequency != maxFreq {
			packaged += f.Size
		} else {
			unpackaged[f.Path] = f.Size
		}
	}
	coverage := float64(packaged) / float64(total)
	t.Logf("%d source packages, %d components, %d files; dpkg attributes %.2f%% of /usr's %d regular-file bytes",
		len(pkgs), len(comps), len(files), 100*coverage, total)
	if coverage <= 0.9 {
		t.Errorf("dpkg attribution covers %.2f%% of /usr bytes, want more than 90%%", 100*coverage)
	}
	largest := sortedKeys(unpackaged)
	slices.SortStableFunc(largest, func(a, b string) int { return cmp.Compare(unpackaged[b], unpackaged[a]) })
	for _, p := range largest[:min(5, len(largest))] {
		t.Logf("unpackaged: %s (%d bytes)", p, unpackaged[p])
	}

	tests := []struct {
		path, want string
	}{
		{"/usr/bin/bash", "bash"},
		{"/usr/bin/ls", "coreutils"},
		{"/usr/lib/x86_64-linux-gnu/libc.so.6", "glibc"},
		{"/usr/sbin/ldconfig", "glibc"},                 // listed as /sbin/ldconfig
		{"/usr/bin/mount", "util-linux"},                // binary package "mount"
		{"/usr/etc/bash.bashrc", "bash"},                // listed as /etc/bash.bashrc
		{"/usr/lib64/ld-linux-x86-64.so.2", "glibc"},    // listed as /lib64/..., a symlink
		{"/usr/share/doc/libstdc++6", "gcc-12"},         // symlinked doc directory
		{"/usr/share/man/man1/sh.1.gz", "dash"},         // diverted by dash
		{"/usr/lib/x86_64-linux-gnu/libz.so.1", "zlib"}, // Source: zlib
		{"/usr/lib/x86_64-linux-gnu/libzstd.so.1", "libzstd"},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/"), func(t *testing.T) {
			o, ok := objectOf[tt.path]
			if !ok {
				t.Skipf("%s not in this tree", tt.path)
			}
			if got := owner[o].Name; got != tt.want {
				t.Errorf("%s belongs to %q, want %q", tt.path, got, tt.want)
			}
		})
	}

	for _, maxLayers := range []int{64, 16} {
		layers, err := Pack(comps, maxLayers, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkPack(comps, maxLayers, nil, layers); err != nil {
			t.Fatal(err)
		}
		t.Logf("max %d layers: %d planned", maxLayers, len(layers))
		if maxLayers == 16 {
			comparePacking(t, comps, maxLayers)
		}
	}
}
