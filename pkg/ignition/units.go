package ignition

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// unitDir is where units and their links are written, as `systemctl enable` does.
const unitDir = "/etc/systemd/system"

// unitSearch is where an enabled unit's file is looked for, in systemd's order.
var unitSearch = []string{unitDir, "/usr/lib/systemd/system", "/lib/systemd/system"}

// unitPlan is what Apply does for one unit.
type unitPlan struct {
	u types.Unit
	// links are the enablement links (path -> target) for enabled true or false.
	links []unitLink
}

type unitLink struct{ path, target string }

// planUnit finds the links of enabled, and checks that mask can be done.
func (a *applier) planUnit(u types.Unit) (*unitPlan, error) {
	p := &unitPlan{u: u}
	if _, err := a.tree.writable(path.Join(unitDir, u.Name), false); err != nil {
		return nil, err
	}
	if u.Mask != nil && *u.Mask {
		fi, err := a.tree.lstat(path.Join(unitDir, u.Name))
		if err == nil && fi.Mode()&fs.ModeSymlink == 0 {
			return nil, fmt.Errorf("%s/%s is a unit file: a masked unit's file is a link to /dev/null (remove the file in the image, or do not mask)", unitDir, u.Name)
		}
	}
	if u.Enabled == nil {
		return p, nil
	}
	var err error
	p.links, err = a.installLinks(u.Name, u.Contents, map[string]bool{})
	if err != nil && (*u.Enabled || !errors.Is(err, fs.ErrNotExist)) {
		return nil, err
	}
	return p, nil
}

// installLinks computes the links `systemctl enable` makes for the unit name from its
// [Install] section: NAME.wants/ for WantedBy=, .requires/ for RequiredBy=, .upholds/ for
// UpheldBy=, an alias link for Alias=, and those of the units of Also=. The unit's file is
// contents (the config's) or found in unitSearch; for an instance (a@b.service) the template
// (a@.service) is read, and a template is enabled with its DefaultInstance=. The links point
// at the unit file where it was found.
func (a *applier) installLinks(name string, contents *string, seen map[string]bool) ([]unitLink, error) {
	if seen[name] {
		return nil, nil
	}
	seen[name] = true
	file, text, err := a.unitFile(name, contents)
	if err != nil {
		return nil, err
	}
	inst := installSection(text)
	if base, ok := strings.CutSuffix(name, "@"+path.Ext(name)); ok && path.Ext(name) != "" {
		def := inst["DefaultInstance"]
		if len(def) == 0 {
			return nil, fmt.Errorf("%s is a template without DefaultInstance=: enable an instance (%s@NAME%s)", name, base, path.Ext(name))
		}
		name = base + "@" + def[len(def)-1] + path.Ext(name)
	}
	var links []unitLink
	for key, suffix := range map[string]string{"WantedBy": ".wants", "RequiredBy": ".requires", "UpheldBy": ".upholds"} {
		for _, t := range inst[key] {
			links = append(links, unitLink{path.Join(unitDir, t+suffix, name), file})
		}
	}
	for _, al := range inst["Alias"] {
		links = append(links, unitLink{path.Join(unitDir, al), file})
	}
	for _, also := range inst["Also"] {
		more, err := a.installLinks(also, nil, seen)
		if err != nil {
			return nil, fmt.Errorf("Also=%s: %w", also, err)
		}
		links = append(links, more...)
	}
	if len(links) == 0 && len(inst["Also"]) == 0 {
		return nil, fmt.Errorf("%s has no [Install] section with WantedBy=, RequiredBy= or Alias=: there is nothing to enable (start it from another unit, or add the section)", file)
	}
	for _, l := range links {
		if !plainName(path.Base(l.path)) || strings.Count(strings.TrimPrefix(l.path, unitDir+"/"), "/") > 1 {
			return nil, fmt.Errorf("%s: [Install] names %s, which is no unit name", file, l.path)
		}
	}
	return links, nil
}

// unitFile returns the path (as the host sees it) and text of the unit name's file: contents
// if given, else the first found in unitSearch (the template's for an instance).
func (a *applier) unitFile(name string, contents *string) (string, string, error) {
	if contents != nil {
		return path.Join(unitDir, name), *contents, nil
	}
	look := name
	if at := strings.Index(name, "@"); at >= 0 {
		look = name[:at+1] + path.Ext(name)
	}
	for _, dir := range unitSearch {
		p := path.Join(dir, look)
		if fi, err := a.tree.stat(p); err == nil && fi.Mode().IsRegular() {
			b, err := a.tree.readFile(p)
			return p, string(b), err
		}
	}
	return "", "", fmt.Errorf("the unit %s is neither in the config (contents) nor in the image (%s): %w", look, strings.Join(unitSearch, ", "), fs.ErrNotExist)
}

// installSection reads the [Install] section of a unit file: key -> values (space-separated
// values of every line; an empty assignment resets the list, as systemd does).
func installSection(text string) map[string][]string {
	m := map[string][]string{}
	in := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || l[0] == '#' || l[0] == ';':
		case l[0] == '[':
			in = l == "[Install]"
		case in:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				continue
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if v == "" {
				delete(m, k)
				continue
			}
			m[k] = append(m[k], strings.Fields(v)...)
		}
	}
	return m
}

// applyUnits writes the units and drop-ins, then masks, enables and disables.
func (a *applier) applyUnits() error {
	for _, p := range a.units {
		if err := a.applyUnit(p); err != nil {
			return fmt.Errorf("systemd unit %s: %w", p.u.Name, err)
		}
	}
	return nil
}

func (a *applier) applyUnit(p *unitPlan) error {
	u, t := p.u, a.tree
	file := path.Join(unitDir, u.Name)
	write := func(v, text string) error {
		a.rep.Written = append(a.rep.Written, v)
		return t.writeFile(v, []byte(text), 0o644, rootOwner)
	}
	if u.Contents != nil {
		if err := write(file, *u.Contents); err != nil {
			return err
		}
	}
	for _, d := range u.Dropins {
		if d.Contents != nil {
			if err := write(path.Join(unitDir, u.Name+".d", d.Name), *d.Contents); err != nil {
				return err
			}
		}
	}
	if u.Mask != nil {
		if *u.Mask {
			a.rep.Masked = append(a.rep.Masked, u.Name)
			a.rep.Written = append(a.rep.Written, file)
			if err := t.symlink(file, "/dev/null", rootOwner); err != nil {
				return err
			}
		} else if target, err := t.readlink(file); err == nil && target == "/dev/null" {
			if err := t.remove(file); err != nil {
				return err
			}
		}
	}
	if u.Enabled == nil {
		return nil
	}
	for _, l := range p.links {
		if !*u.Enabled {
			if fi, err := t.lstat(l.path); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
				continue
			}
			if err := t.remove(l.path); err != nil {
				return err
			}
		} else if err := t.symlink(l.path, l.target, rootOwner); err != nil {
			return err
		}
		a.rep.Written = append(a.rep.Written, l.path)
	}
	if *u.Enabled {
		a.rep.Enabled = append(a.rep.Enabled, u.Name)
	}
	return nil
}
