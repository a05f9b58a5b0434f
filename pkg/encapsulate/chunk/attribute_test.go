package chunk

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// obj names a test object.
func obj(s string) string { return fmt.Sprintf("%064s", s) }

// attrTree is a commit tree with symlinked /bin, a kernel and an initramfs.
func attrTree() *memFS {
	return newMemFS().
		symlink("/bin", "usr/bin").
		symlink("/lib", "usr/lib").
		text("/usr/bin/bash", "").
		text("/usr/etc/bash.bashrc", "").
		text("/usr/lib/modules/6.1.0-1-amd64/vmlinuz", "").
		text("/usr/lib/modules/6.1.0-1-amd64/initramfs.img", "").
		text("/usr/lib/libshared.so", "").
		text("/usr/lib/libshared-copy.so", "").
		text("/opt/app/bin/app", "").
		text("/opt/app/share/data", "").
		text("/usr/share/misc/orphan", "")
}

func TestAttribute(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, d) }
	tests := []struct {
		name  string
		files []File
		pkgs  []Package
		want  []Component
	}{
		{
			name: "package through symlinked dir, /etc, /boot kernel",
			files: []File{
				{Path: "/usr/bin/bash", Object: obj("a"), Size: 10},
				{Path: "/usr/etc/bash.bashrc", Object: obj("b"), Size: 1},
				{Path: "/usr/lib/modules/6.1.0-1-amd64/vmlinuz", Object: obj("k"), Size: 100},
			},
			pkgs: []Package{
				{Name: "bash", ID: "bash 5.2", Files: []string{"/bin", "/bin/bash", "/etc/bash.bashrc"}},
				{Name: "linux-signed-amd64", ID: "linux 6.1", Files: []string{"/boot", "/boot/vmlinuz-6.1.0-1-amd64"}},
			},
			want: []Component{
				{Name: "bash", IDs: []string{"bash 5.2"}, Size: 11, Objects: []string{obj("a"), obj("b")}},
				{Name: "linux-signed-amd64", IDs: []string{"linux 6.1"}, Size: 100, Objects: []string{obj("k")}},
			},
		},
		{
			name: "xattr beats initramfs beats package beats unpackaged",
			files: []File{
				{Path: "/usr/bin/bash", Object: obj("a"), Size: 10, Component: "shell"},
				{Path: "/usr/lib/modules/6.1.0-1-amd64/initramfs.img", Object: obj("i"), Size: 50},
				{Path: "/usr/lib/libshared.so", Object: obj("s"), Size: 5},
				{Path: "/usr/share/misc/orphan", Object: obj("o"), Size: 3},
			},
			pkgs: []Package{
				{Name: "bash", ID: "bash 5.2", Files: []string{"/bin/bash"}},
				{Name: "initramfs-tools", ID: "it 1", Files: []string{"/boot/initrd.img-6.1.0-1-amd64"}},
				{Name: "libshared", ID: "libshared 1", Files: []string{"/usr/lib/libshared.so"}},
			},
			want: []Component{
				{Name: "component:shell", ChangeFrequency: math.MaxUint32, Size: 10, Objects: []string{obj("a")}},
				{Name: "initramfs", ChangeFrequency: math.MaxUint32, Size: 50, Objects: []string{obj("i")}},
				{Name: "libshared", IDs: []string{"libshared 1"}, Size: 5, Objects: []string{obj("s")}},
				{Name: "unpackaged", ChangeFrequency: math.MaxUint32, Size: 3, Objects: []string{obj("o")}},
			},
		},
		{
			name: "xattr on any path wins, first sorted path decides",
			files: []File{
				{Path: "/opt/app/share/data", Object: obj("d"), Size: 7, Component: "second"},
				{Path: "/opt/app/bin/app", Object: obj("d"), Size: 7, Component: "first"},
				{Path: "/usr/lib/libshared.so", Object: obj("d"), Size: 7},
			},
			pkgs: []Package{{Name: "libshared", ID: "libshared 1", Files: []string{"/usr/lib/libshared.so"}}},
			want: []Component{
				{Name: "component:first", ChangeFrequency: math.MaxUint32, Size: 7, Objects: []string{obj("d")}},
			},
		},
		{
			name: "object shared by two packages goes to the lowest name, counted once",
			files: []File{
				{Path: "/usr/lib/libshared.so", Object: obj("s"), Size: 5},
				{Path: "/usr/lib/libshared-copy.so", Object: obj("s"), Size: 5},
				{Path: "/usr/bin/bash", Object: obj("a"), Size: 10},
			},
			pkgs: []Package{
				{Name: "zeta", ID: "zeta 1", Files: []string{"/usr/lib/libshared.so", "/usr/bin/bash"}},
				{Name: "alpha", ID: "alpha 1", Files: []string{"/lib/libshared-copy.so"}},
			},
			want: []Component{
				{Name: "alpha", IDs: []string{"alpha 1"}, Size: 5, Objects: []string{obj("s")}},
				{Name: "zeta", IDs: []string{"zeta 1"}, Size: 10, Objects: []string{obj("a")}},
			},
		},
		{
			name: "change frequency against the newest entry, same-name packages merged",
			files: []File{
				{Path: "/usr/bin/bash", Object: obj("a"), Size: 10},
				{Path: "/usr/lib/libshared.so", Object: obj("s"), Size: 5},
				{Path: "/usr/lib/libshared-copy.so", Object: obj("c"), Size: 6},
			},
			pkgs: []Package{
				// newest entry of all: day 800
				{Name: "new", ID: "new 1", Files: []string{"/usr/bin/bash"}, ChangeTimes: []time.Time{day(800), day(10)}},
				// multilib pair with the same changelog: day 435 is exactly 365 days before 800
				{Name: "shared", ID: "shared 1 x86_64", Files: []string{"/usr/lib/libshared.so"}, ChangeTimes: []time.Time{day(435), day(500), day(500), day(434)}},
				{Name: "shared", ID: "shared 1 i686", Files: []string{"/usr/lib/libshared-copy.so"}, ChangeTimes: []time.Time{day(500), day(435), day(600)}},
				{Name: "absent", ID: "absent 1", Files: []string{"/nowhere"}},
			},
			want: []Component{
				{Name: "new", IDs: []string{"new 1"}, ChangeFrequency: 1, Size: 10, Objects: []string{obj("a")}},
				{Name: "shared", IDs: []string{"shared 1 i686", "shared 1 x86_64"}, ChangeFrequency: 4, Size: 11, Objects: []string{obj("c"), obj("s")}},
			},
		},
		{
			name: "no files",
			want: []Component{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Attribute(attrTree(), tt.files, tt.pkgs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
			// Input order does not matter.
			files, pkgs := slices.Clone(tt.files), slices.Clone(tt.pkgs)
			slices.Reverse(files)
			slices.Reverse(pkgs)
			again, err := Attribute(attrTree(), files, pkgs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Errorf("reversed input gives %+v, want %+v", again, got)
			}
		})
	}
}

func TestAttributeErrors(t *testing.T) {
	tests := []struct {
		name    string
		files   []File
		pkgs    []Package
		wantErr string
	}{
		{"relative path", []File{{Path: "usr/bin/x", Object: obj("a")}}, nil, "not absolute"},
		{"no object", []File{{Path: "/x"}}, nil, "no object"},
		{"negative size", []File{{Path: "/x", Object: obj("a"), Size: -1}}, nil, "negative size"},
		{"size mismatch", []File{{Path: "/x", Object: obj("a"), Size: 1}, {Path: "/y", Object: obj("a"), Size: 2}}, nil, "size 2 at /y but 1 at /x"},
		{"path with two objects", []File{{Path: "/x", Object: obj("a")}, {Path: "/x", Object: obj("b")}}, nil, "listed with objects"},
		{"empty package name", nil, []Package{{ID: "x"}}, "empty name"},
		{"reserved package name", nil, []Package{{Name: "unpackaged"}}, "reserved"},
		{"xattr-like package name", nil, []Package{{Name: "component:x"}}, "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Attribute(attrTree(), tt.files, tt.pkgs)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestAttributeProperties checks on random trees that every object lands in exactly one
// component, sizes add up, the output is sorted, and input order does not matter.
func TestAttributeProperties(t *testing.T) {
	for seed := range uint64(200) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 42))
			fsys := newMemFS().symlink("/bin", "usr/bin")
			var files []File
			sizes := map[string]int64{}
			for i := range rng.IntN(60) {
				o := obj(fmt.Sprint(rng.IntN(30)))
				size := rng.Int64N(1000)
				dir := []string{"/usr/bin", "/usr/etc", "/usr/lib/modules/6.1", "/opt"}[rng.IntN(4)]
				name := fmt.Sprintf("f%d", i)
				if rng.IntN(8) == 0 {
					name = "initramfs.img"
				}
				p := dir + "/" + name
				if _, dup := fsys.entries[p]; dup {
					continue
				}
				fsys.text(p, "")
				if _, ok := sizes[o]; !ok {
					sizes[o] = size
				}
				f := File{Path: p, Object: o, Size: sizes[o]}
				if rng.IntN(10) == 0 {
					f.Component = fmt.Sprint("c", rng.IntN(3))
				}
				files = append(files, f)
			}
			var pkgs []Package
			for i := range rng.IntN(6) {
				p := Package{Name: fmt.Sprint("p", rng.IntN(4)), ID: fmt.Sprint("id", i)}
				for range rng.IntN(10) {
					if len(files) > 0 {
						listed := files[rng.IntN(len(files))].Path
						listed = strings.NewReplacer("/usr/bin/", "/bin/", "/usr/etc/", "/etc/").Replace(listed)
						p.Files = append(p.Files, listed)
					}
				}
				for range rng.IntN(5) {
					p.ChangeTimes = append(p.ChangeTimes, time.Unix(rng.Int64N(1e9), 0))
				}
				pkgs = append(pkgs, p)
			}

			comps, err := Attribute(fsys, files, pkgs)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]string{}
			for i, c := range comps {
				if i > 0 && comps[i-1].Name >= c.Name {
					t.Errorf("components not sorted by unique name: %q then %q", comps[i-1].Name, c.Name)
				}
				if !slices.IsSorted(c.Objects) || len(c.Objects) == 0 {
					t.Errorf("component %s: objects %v not sorted or empty", c.Name, c.Objects)
				}
				var size int64
				for _, o := range c.Objects {
					if prev, dup := seen[o]; dup {
						t.Errorf("object %s in %s and %s", o, prev, c.Name)
					}
					seen[o] = c.Name
					size += sizes[o]
				}
				if size != c.Size {
					t.Errorf("component %s: size %d, objects add up to %d", c.Name, c.Size, size)
				}
				if !slices.IsSorted(c.IDs) {
					t.Errorf("component %s: IDs %v not sorted", c.Name, c.IDs)
				}
			}
			if len(seen) != len(sizes) {
				t.Errorf("%d objects attributed, want %d", len(seen), len(sizes))
			}
			rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
			rng.Shuffle(len(pkgs), func(i, j int) { pkgs[i], pkgs[j] = pkgs[j], pkgs[i] })
			again, err := Attribute(fsys, files, pkgs)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, comps) {
				t.Errorf("shuffled input changes the result:\n%+v\n%+v", again, comps)
			}
		})
	}
}
