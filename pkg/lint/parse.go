package lint

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/bootc-go/bootc/pkg/kargs"
)

// kargsDir holds the image's kernel argument files (spec §5.1).
const kargsDir = kargs.Dir

// parseKargsDir checks every kargs.d/*.toml file, in name order, with pkg/kargs's parser
// (the one deployments use), and returns their kernel arguments for this architecture. A
// missing directory has none. Files are read through r, so symlinks are not followed.
func parseKargsDir(r *Root) ([]string, error) {
	fi, err := r.lstat(kargsDir)
	if err != nil || fi == nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", display(kargsDir))
	}
	ents, err := r.readDir(kargsDir)
	if err != nil {
		return nil, err
	}
	var all []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		name := path.Join(kargsDir, e.Name())
		data, err := r.root.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", display(name), err)
		}
		k, err := kargs.Parse(display(name), data, "")
		if err != nil {
			return nil, err
		}
		all = append(all, k...)
	}
	return all, nil
}

// configFiles lists dir/*.conf in each of dirs; a file in an earlier directory hides one of the
// same name in a later one (systemd's drop-in rule: /etc over /run over /usr/lib).
func configFiles(r *Root, dirs ...string) ([]string, error) {
	seen := map[string]bool{}
	var files []string
	for _, d := range dirs {
		if ok, err := r.isDir(d); err != nil || !ok {
			if err != nil {
				return nil, err
			}
			continue
		}
		ents, err := r.readDir(d)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".conf") || seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			files = append(files, path.Join(d, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// configLines calls fn with the fields of every non-comment line of the given files.
func configLines(r *Root, files []string, fn func(fields []string)) error {
	for _, f := range files {
		data, err := r.readFile(f)
		if err != nil {
			return fmt.Errorf("%s: %w", display(f), err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			fn(strings.Fields(line))
		}
	}
	return nil
}

// tmpfilesPaths returns the paths tmpfiles.d entries name, with all their parent directories
// (which systemd-tmpfiles creates too). Paths with %-specifiers are left out: they resolve only
// on the running system.
func tmpfilesPaths(r *Root) (map[string]bool, error) {
	files, err := configFiles(r, "etc/tmpfiles.d", "run/tmpfiles.d", "usr/lib/tmpfiles.d")
	if err != nil {
		return nil, err
	}
	covered := map[string]bool{}
	err = configLines(r, files, func(f []string) {
		if len(f) < 2 || strings.Contains(f[1], "%") || !strings.HasPrefix(f[1], "/") {
			return
		}
		for p := path.Clean(f[1]); p != "/"; p = path.Dir(p) {
			covered[p] = true
		}
	})
	return covered, err
}

// sysusersNames returns the users and groups sysusers.d entries create: "u NAME" makes a user and
// a group of that name, "g NAME" a group.
func sysusersNames(r *Root) (users, groups map[string]bool, err error) {
	files, err := configFiles(r, "etc/sysusers.d", "run/sysusers.d", "usr/lib/sysusers.d")
	if err != nil {
		return nil, nil, err
	}
	users, groups = map[string]bool{}, map[string]bool{}
	err = configLines(r, files, func(f []string) {
		if len(f) < 2 {
			return
		}
		switch f[0] {
		case "u", "u!":
			users[f[1]] = true
			groups[f[1]] = true
		case "g":
			groups[f[1]] = true
		}
	})
	return users, groups, err
}
