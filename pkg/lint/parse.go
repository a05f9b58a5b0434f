package lint

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// kargsDir holds the image's kernel argument files (spec §5.1).
const kargsDir = "usr/lib/bootc/kargs.d"

// kargsFile is one kargs.d/*.toml file. Unknown keys are an error.
type kargsFile struct {
	Kargs              []string `toml:"kargs"`
	MatchArchitectures []string `toml:"match-architectures"`
}

// parseKargsDir parses every kargs.d/*.toml file, in name order, and returns all their kernel
// arguments (whatever their match-architectures). A missing directory has none.
//
// TODO: replace with pkg/kargs (kargs.ParseDir(root)) once it is merged; this is a stand-in
// written in parallel with it, and only the lint uses it.
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
		var kf kargsFile
		md, err := toml.Decode(string(data), &kf)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", display(name), err)
		}
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return nil, fmt.Errorf("%s: unknown keys %s (allowed: kargs, match-architectures)", display(name), strings.Join(keys, ", "))
		}
		if !md.IsDefined("kargs") {
			return nil, fmt.Errorf("%s: missing kargs = [...]", display(name))
		}
		for _, k := range kf.Kargs {
			if k == "" || strings.ContainsAny(k, " \t\n") {
				return nil, fmt.Errorf("%s: invalid kernel argument %q (one argument per string, no spaces)", display(name), k)
			}
		}
		all = append(all, kf.Kargs...)
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
