package chunk

import (
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"
)

// changeWindow is how far back from the newest changelog entry entries count towards
// ChangeFrequency.
const changeWindow = 365 * 24 * time.Hour

// modulesDir holds one directory per kernel version, with its vmlinuz and initramfs.img.
const modulesDir = "/usr/lib/modules"

// Attribute assigns every object of files to exactly one component:
//
//  1. an object any of whose paths carries a user.component value goes to
//     "component:<value>" (the first such path in sorted order decides);
//  2. else an object at /usr/lib/modules/<kver>/initramfs.img goes to "initramfs";
//  3. else an object one of whose paths a package lists goes to that package's Name (the
//     lowest Name if several do). Listed paths are mapped first: /boot/vmlinuz-KVER to
//     /usr/lib/modules/KVER/vmlinuz, /boot/initrd.img-KVER to
//     /usr/lib/modules/KVER/initramfs.img, then through FS.Resolve, /etc/... falling back to
//     /usr/etc/...;
//  4. else it goes to "unpackaged".
//
// Packages sharing a Name form one component whose IDs are all their IDs and whose change
// history is the multiset union of theirs (see [Component.ChangeFrequency]). Components without
// objects are left out; the result is sorted by Name and depends only on the sets of files and
// packages, not on their order.
//
// Files must have absolute paths, an object checksum, a non-negative size that is the same on
// every path of an object, and one object per path. Package names must not be empty, nor
// "initramfs", "unpackaged" or start with "component:".
func Attribute(fsys FS, files []File, pkgs []Package) ([]Component, error) {
	objects, err := indexObjects(files)
	if err != nil {
		return nil, err
	}
	for _, p := range pkgs {
		if err := checkPackageName(p.Name); err != nil {
			return nil, err
		}
	}

	owners := packageOwners(fsys, pkgs)
	type acc struct {
		size    int64
		objects []string
	}
	comps := map[string]*acc{}
	for _, id := range sortedKeys(objects) {
		o := objects[id]
		name := classify(o.paths, owners)
		c := comps[name]
		if c == nil {
			c = &acc{}
			comps[name] = c
		}
		c.size += o.size
		c.objects = append(c.objects, id)
	}

	byName := map[string][]Package{}
	var newest time.Time
	for _, p := range pkgs {
		byName[p.Name] = append(byName[p.Name], p)
		for _, t := range p.ChangeTimes {
			if t.After(newest) {
				newest = t
			}
		}
	}
	out := make([]Component, 0, len(comps))
	for _, name := range sortedKeys(comps) {
		c := comps[name]
		comp := Component{Name: name, ChangeFrequency: math.MaxUint32, Size: c.size, Objects: c.objects}
		if ps, ok := byName[name]; ok {
			var ids []string
			var times []time.Time
			for _, p := range ps {
				if p.ID != "" {
					ids = append(ids, p.ID)
				}
				times = unionTimes(times, p.ChangeTimes)
			}
			comp.IDs = sortedUnique(ids)
			comp.ChangeFrequency = countSince(times, newest.Add(-changeWindow))
		}
		out = append(out, comp)
	}
	return out, nil
}

// object is what Attribute knows of one content object.
type object struct {
	size  int64
	paths []File // sorted by Path
}

// indexObjects groups files by object and checks them.
func indexObjects(files []File) (map[string]*object, error) {
	objects := map[string]*object{}
	pathObject := make(map[string]string, len(files))
	for _, f := range files {
		switch {
		case !strings.HasPrefix(f.Path, "/"):
			return nil, fmt.Errorf("file %q: path is not absolute", f.Path)
		case f.Object == "":
			return nil, fmt.Errorf("file %s: no object checksum", f.Path)
		case f.Size < 0:
			return nil, fmt.Errorf("file %s: negative size %d", f.Path, f.Size)
		}
		if prev, ok := pathObject[f.Path]; ok {
			if prev != f.Object {
				return nil, fmt.Errorf("file %s: listed with objects %s and %s", f.Path, prev, f.Object)
			}
			continue // the same file listed twice
		}
		pathObject[f.Path] = f.Object
		o := objects[f.Object]
		if o == nil {
			o = &object{size: f.Size}
			objects[f.Object] = o
		} else if o.size != f.Size {
			return nil, fmt.Errorf("object %s: size %d at %s but %d at %s", f.Object, f.Size, f.Path, o.size, o.paths[0].Path)
		}
		o.paths = append(o.paths, f)
	}
	for _, o := range objects {
		slices.SortFunc(o.paths, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	}
	return objects, nil
}

// checkPackageName rejects names that would collide with the other components.
func checkPackageName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("package with empty name")
	case name == UnpackagedComponent || name == InitramfsComponent || strings.HasPrefix(name, XattrComponentPrefix):
		return fmt.Errorf("package %q: name is reserved for non-package components", name)
	}
	return nil
}

// classify returns the component of an object whose paths (sorted) are given.
func classify(paths []File, owners map[string]string) string {
	for _, f := range paths {
		if f.Component != "" {
			return XattrComponentPrefix + f.Component
		}
	}
	for _, f := range paths {
		if isInitramfs(f.Path) {
			return InitramfsComponent
		}
	}
	owner := ""
	for _, f := range paths {
		if o, ok := owners[f.Path]; ok && (owner == "" || o < owner) {
			owner = o
		}
	}
	if owner != "" {
		return owner
	}
	return UnpackagedComponent
}

// isInitramfs reports whether p is /usr/lib/modules/<kver>/initramfs.img.
func isInitramfs(p string) bool {
	dir, base := path.Split(p)
	kdir := strings.TrimSuffix(dir, "/")
	return base == "initramfs.img" && path.Dir(kdir) == modulesDir && path.Base(kdir) != "" && kdir != modulesDir
}

// packageOwners maps every commit path that a package lists to the lowest Name of the packages
// listing it.
func packageOwners(fsys FS, pkgs []Package) map[string]string {
	owners := map[string]string{}
	for _, p := range pkgs {
		for _, listed := range p.Files {
			cp, ok := commitPath(fsys, listed)
			if !ok {
				continue
			}
			if o, ok := owners[cp]; !ok || p.Name < o {
				owners[cp] = p.Name
			}
		}
	}
	return owners
}

// commitPath maps a path as a package database lists it to the commit path of the same file.
func commitPath(fsys FS, listed string) (string, bool) {
	if listed == "" {
		return "", false
	}
	p := path.Clean("/" + listed)
	if dir, base := path.Split(p); dir == "/boot/" {
		if kver, ok := strings.CutPrefix(base, "vmlinuz-"); ok && kver != "" {
			p = path.Join(modulesDir, kver, "vmlinuz")
		} else if kver, ok := strings.CutPrefix(base, "initrd.img-"); ok && kver != "" {
			p = path.Join(modulesDir, kver, "initramfs.img")
		}
	}
	if r, ok := fsys.Resolve(p); ok {
		return r, true
	}
	if p == "/etc" || strings.HasPrefix(p, "/etc/") {
		usr := "/usr" + p
		if r, ok := fsys.Resolve(usr); ok {
			return r, true
		}
		return usr, true
	}
	return p, true
}

// countSince counts the times at or after since, saturating at math.MaxUint32-1 so that a
// package never looks like a max-frequency component.
func countSince(times []time.Time, since time.Time) uint32 {
	var n uint32
	for _, t := range times {
		if !t.Before(since) && n < math.MaxUint32-1 {
			n++
		}
	}
	return n
}
