package ignition

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// applier carries one Apply: the plan, made and checked before anything is written, and the
// report.
type applier struct {
	tree     *tree
	cfg      *types.Config
	rep      *Report
	db       *passwdDB
	accounts []*account
	nodes    []*node
	units    []*unitPlan
}

type nodeKind int

const (
	dirNode nodeKind = iota
	fileNode
	linkNode
)

// node is one planned entry of storage.directories, files or links.
type node struct {
	field     string
	kind      nodeKind
	path      string // virtual, as the config has it
	mode      fs.FileMode
	modeSet   bool
	owner     owner
	ownerSet  bool
	overwrite bool
	// files: contents (hasData: a source was given) and what to append
	data    []byte
	hasData bool
	appends [][]byte
	// links
	target string
	hard   bool
	// unchanged: an existing link that is already as asked
	unchanged bool
}

// plan loads the target's user database, makes the changes of passwd in memory, and resolves
// and checks every node and unit; it returns every problem found.
func (a *applier) plan() error {
	var err error
	if a.db, err = loadPasswd(a.tree); err != nil {
		return err
	}
	var errs []error
	for i, g := range a.cfg.Passwd.Groups {
		if err := a.db.ensureGroup(g); err != nil {
			errs = append(errs, fmt.Errorf("passwd.groups[%d] (%s): %w", i, g.Name, err))
		}
	}
	for i, u := range a.cfg.Passwd.Users {
		acc, err := a.db.ensureUser(u)
		if err == nil && (acc.createHome || len(acc.keys) > 0) {
			_, err = a.tree.writable(acc.home, true)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("passwd.users[%d] (%s): %w", i, u.Name, err))
			continue
		}
		a.accounts = append(a.accounts, acc)
	}
	s := &a.cfg.Storage
	for i, d := range s.Directories {
		errs = a.planNode(errs, &node{field: fmt.Sprintf("storage.directories[%d]", i), kind: dirNode, mode: fileMode(d.Mode, 0o755), modeSet: d.Mode != nil}, d.Node)
	}
	for i, f := range s.Files {
		n := &node{field: fmt.Sprintf("storage.files[%d]", i), kind: fileNode, mode: fileMode(f.Mode, 0o644), modeSet: true}
		n.data, _ = content(f.Contents) // checked by Parse
		n.hasData = f.Contents.Source != nil
		for _, r := range f.Append {
			b, _ := content(r)
			n.appends = append(n.appends, b)
		}
		errs = a.planNode(errs, n, f.Node)
	}
	for i, l := range s.Links {
		n := &node{field: fmt.Sprintf("storage.links[%d]", i), kind: linkNode, hard: l.Hard != nil && *l.Hard}
		if l.Target != nil {
			n.target = *l.Target
		}
		errs = a.planNode(errs, n, l.Node)
	}
	// Parents first, as Ignition creates them.
	slices.SortStableFunc(a.nodes, func(x, y *node) int { return strings.Count(x.path, "/") - strings.Count(y.path, "/") })
	for i, u := range a.cfg.Systemd.Units {
		p, err := a.planUnit(u)
		if err != nil {
			errs = append(errs, fmt.Errorf("systemd.units[%d] (%s): %w", i, u.Name, err))
			continue
		}
		a.units = append(a.units, p)
	}
	return errors.Join(errs...)
}

// planNode fills in n's path and owner, checks the path and what is there, and adds n to the
// plan; it returns errs with n's problem added.
func (a *applier) planNode(errs []error, n *node, tn types.Node) []error {
	n.path, n.overwrite = tn.Path, tn.Overwrite != nil && *tn.Overwrite
	var err error
	if n.owner, n.ownerSet, err = a.nodeOwner(tn); err == nil {
		err = a.checkExisting(n)
	}
	if err == nil && n.kind == linkNode && n.hard {
		_, err = a.tree.writable(n.target, true)
	}
	if err != nil {
		return append(errs, fmt.Errorf("%s (%s): %w", n.field, n.path, err))
	}
	a.nodes = append(a.nodes, n)
	return errs
}

// nodeOwner resolves a node's user and group (names from the target's /etc/passwd and
// /etc/group, with the config's users and groups); root for what is not given.
func (a *applier) nodeOwner(n types.Node) (owner, bool, error) {
	set := n.User != (types.NodeUser{}) || n.Group != (types.NodeGroup{})
	uid, err := lookupID(n.User.ID, n.User.Name, a.db.uid, "user %s is neither in the target's /etc/passwd nor in passwd.users")
	if err != nil {
		return rootOwner, false, err
	}
	gid, err := lookupID(n.Group.ID, n.Group.Name, a.db.gid, "group %s is neither in the target's /etc/group nor in passwd.groups")
	return owner{uid, gid}, set, err
}

// lookupID is id, else name's id by find (0 for neither); missing names the name not found.
func lookupID(id *int, name *string, find func(string) (int, bool), missing string) (int, error) {
	switch {
	case id != nil:
		return *id, nil
	case name != nil:
		n, ok := find(*name)
		if !ok {
			return 0, fmt.Errorf(missing, *name)
		}
		return n, nil
	}
	return 0, nil
}

// checkExisting resolves n's path and refuses to replace what is there unless overwrite: a file
// with other content, or a node of another kind. (As Ignition, an existing file with the same
// content, or a file without contents, is kept.)
func (a *applier) checkExisting(n *node) error {
	if _, err := a.tree.writable(n.path, n.kind == dirNode); err != nil {
		return err
	}
	fi, err := a.tree.lstat(n.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if n.overwrite {
		if fi.IsDir() && n.kind != dirNode {
			return fmt.Errorf("is a directory: remove it first (overwrite replaces files and links, not directories)")
		}
		return nil
	}
	switch n.kind {
	case dirNode:
		if st, err := a.tree.stat(n.path); err != nil || !st.IsDir() {
			return fmt.Errorf("exists and is no directory: set overwrite: true to replace it")
		}
	case fileNode:
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("exists and is no regular file (%s): set overwrite: true to replace it", fi.Mode().Type())
		}
		if cur, err := a.tree.readFile(n.path); err != nil {
			return err
		} else if n.hasData && !bytes.Equal(cur, n.data) {
			return fmt.Errorf("exists with other content: set overwrite: true to replace it")
		}
	case linkNode:
		if t, err := a.tree.readlink(n.path); err == nil && !n.hard && t == n.target {
			n.unchanged = true
			return nil
		}
		return fmt.Errorf("exists and is not this link: set overwrite: true to replace it")
	}
	return nil
}

// applyNodes writes the directories, files and links, parents first.
func (a *applier) applyNodes() error {
	for _, n := range a.nodes {
		if err := a.applyNode(n); err != nil {
			return fmt.Errorf("%s (%s): %w", n.field, n.path, err)
		}
	}
	return nil
}

func (a *applier) applyNode(n *node) error {
	t := a.tree
	switch {
	case n.kind == dirNode:
		if err := a.applyDir(n); err != nil {
			return err
		}
	case n.kind == fileNode:
		data := n.data
		if !n.hasData {
			cur, err := t.readFile(n.path)
			if err != nil {
				return err
			}
			data = cur
		}
		data = bytes.Clone(data)
		for _, b := range n.appends {
			data = append(data, b...)
		}
		if err := t.writeFile(n.path, data, n.mode, n.owner); err != nil {
			return err
		}
	case n.unchanged:
		return nil
	case n.hard:
		if err := t.hardlink(n.path, n.target); err != nil {
			return err
		}
	default:
		if err := t.symlink(n.path, n.target, n.owner); err != nil {
			return err
		}
	}
	a.rep.Written = append(a.rep.Written, n.path)
	return nil
}

// applyDir creates a directory (replacing a file or link with overwrite); an existing one gets
// the mode and owner the config gives.
func (a *applier) applyDir(n *node) error {
	t := a.tree
	if fi, err := t.lstat(n.path); err == nil && n.overwrite && !fi.IsDir() {
		if err := t.remove(n.path); err != nil {
			return err
		}
	}
	created, err := t.mkdir(n.path, n.mode, n.owner)
	if err != nil || created {
		return err
	}
	var mode *fs.FileMode
	var o *owner
	if n.modeSet {
		mode = &n.mode
	}
	if n.ownerSet {
		o = &n.owner
	}
	return t.setAttrs(n.path, mode, o)
}
