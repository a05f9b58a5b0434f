package ignition

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// account is what Apply does for one user beyond the database: its home and SSH keys.
type account struct {
	name       string
	home       string // virtual, as /etc/passwd has it
	uid, gid   int
	createHome bool
	keys       []string
}

// ensureUser creates the user (with its own group unless noUserGroup or primaryGroup, and a home
// unless noCreateHome) or changes the fields the config gives, and adds it to its groups.
func (db *passwdDB) ensureUser(u types.PasswdUser) (*account, error) {
	_, f := db.passwd.find(u.Name)
	a := &account{name: u.Name}
	if f == nil {
		var err error
		if f, err = db.newUser(u); err != nil {
			return nil, err
		}
		a.createHome = u.NoCreateHome == nil || !*u.NoCreateHome
	}
	for len(f) < 7 {
		f = append(f, "")
	}
	if u.UID != nil && f[2] != strconv.Itoa(*u.UID) {
		if other := db.passwd.nameWith(2, strconv.Itoa(*u.UID)); other != "" {
			return nil, fmt.Errorf("uid %d is the user %s's already", *u.UID, other)
		}
		f[2] = strconv.Itoa(*u.UID)
	}
	if u.PrimaryGroup != nil {
		gid, ok := db.gid(*u.PrimaryGroup)
		if !ok {
			return nil, fmt.Errorf("primaryGroup %s does not exist in the target's /etc/group: add it to passwd.groups", *u.PrimaryGroup)
		}
		f[3] = strconv.Itoa(gid)
	}
	for i, v := range map[int]*string{4: u.Gecos, 5: u.HomeDir, 6: u.Shell} {
		if v != nil {
			f[i] = *v
		}
	}
	db.passwd.set(f)
	if u.PasswordHash != nil {
		db.setShadow(u.Name, *u.PasswordHash)
	}
	for _, g := range u.Groups {
		if err := db.addMember(string(g), u.Name); err != nil {
			return nil, err
		}
	}
	var err error
	if a.uid, err = strconv.Atoi(f[2]); err != nil {
		return nil, fmt.Errorf("the target's /etc/passwd has uid %q for %s", f[2], u.Name)
	}
	if a.gid, err = strconv.Atoi(f[3]); err != nil {
		return nil, fmt.Errorf("the target's /etc/passwd has gid %q for %s", f[3], u.Name)
	}
	a.home = f[5]
	for _, k := range u.SSHAuthorizedKeys {
		a.keys = append(a.keys, string(k))
	}
	return a, nil
}

// newUser makes the passwd entry of a new user (and its shadow entry and user group).
func (db *passwdDB) newUser(u types.PasswdUser) ([]string, error) {
	system := u.System != nil && *u.System
	ownGroup := u.PrimaryGroup == nil && (u.NoUserGroup == nil || !*u.NoUserGroup)
	if _, exists := db.group.find(u.Name); ownGroup && exists != nil {
		return nil, fmt.Errorf("a group %s exists already: set primaryGroup: %s or noUserGroup", u.Name, u.Name)
	}
	uid := -1
	if u.UID != nil {
		if uid = *u.UID; !db.uidFree(uid) {
			return nil, fmt.Errorf("uid %d is the user %s's already", uid, db.passwd.nameWith(2, strconv.Itoa(uid)))
		}
	} else {
		var err error
		uid, err = db.allocate("UID", system, func(id int) bool { return db.uidFree(id) && (!ownGroup || db.gidFree(id)) })
		if err != nil {
			if uid, err = db.allocate("UID", system, db.uidFree); err != nil {
				return nil, err
			}
		}
	}
	gid := db.defaultGID()
	if ownGroup {
		g := types.PasswdGroup{Name: u.Name, System: u.System}
		if db.gidFree(uid) {
			g.Gid = &uid
		}
		if err := db.ensureGroup(g); err != nil {
			return nil, err
		}
		gid, _ = db.gid(u.Name)
	}
	home := path.Join(db.defaultString("HOME", "/home"), u.Name)
	hash := "!"
	if u.PasswordHash != nil {
		hash = *u.PasswordHash
	}
	db.setShadow(u.Name, hash)
	return []string{u.Name, "x", strconv.Itoa(uid), strconv.Itoa(gid), "", home, db.defaultString("SHELL", "/bin/sh")}, nil
}

// defaultGID is the primary group of a user without its own: GROUP of the target's
// /etc/default/useradd (a name or a number), else 100 (users).
func (db *passwdDB) defaultGID() int {
	g := db.defaultString("GROUP", "100")
	if n, err := strconv.Atoi(g); err == nil {
		return n
	}
	if n, ok := db.gid(g); ok {
		return n
	}
	return 100
}

func (db *passwdDB) defaultString(key, def string) string {
	if v := db.defaults[key]; v != "" {
		return v
	}
	return def
}

// setShadow sets a user's password hash in /etc/shadow, adding the entry if missing (last
// change today, useradd's aging defaults).
func (db *passwdDB) setShadow(name, hash string) {
	_, f := db.shadow.find(name)
	if f == nil {
		f = []string{name, hash, db.days, "0", "99999", "7", "", "", ""}
	}
	for len(f) < 9 {
		f = append(f, "")
	}
	f[1] = hash
	db.shadow.set(f)
}

// applyPasswd writes the user and group files, then each user's home and SSH keys.
func (a *applier) applyPasswd() error {
	for _, tb := range []*table{a.db.group, a.db.gshadow, a.db.passwd, a.db.shadow} {
		if !tb.changed {
			continue
		}
		if err := tb.write(a.tree); err != nil {
			return fmt.Errorf("writing %s: %w", tb.path, err)
		}
		a.rep.Written = append(a.rep.Written, tb.path)
	}
	for _, g := range a.cfg.Passwd.Groups {
		a.rep.Groups = append(a.rep.Groups, g.Name)
	}
	for _, acc := range a.accounts {
		a.rep.Users = append(a.rep.Users, acc.name)
		if acc.createHome {
			if err := a.makeHome(acc); err != nil {
				return fmt.Errorf("creating the home %s of %s: %w", acc.home, acc.name, err)
			}
		}
		if len(acc.keys) > 0 {
			if err := a.writeKeys(acc); err != nil {
				return fmt.Errorf("writing the SSH keys of %s: %w", acc.name, err)
			}
		}
	}
	return nil
}

// makeHome creates a new user's home, unless it exists, with a copy of the target's /etc/skel,
// all owned by the user; its mode is HOME_MODE of the target's /etc/login.defs, else 0777 less
// UMASK (default 022), as useradd does.
func (a *applier) makeHome(acc *account) error {
	mode := fs.FileMode(a.db.setting("HOME_MODE", 0o777&^a.db.setting("UMASK", 0o22))) & fs.ModePerm
	o := owner{acc.uid, acc.gid}
	created, err := a.tree.mkdir(acc.home, mode, o)
	if err != nil || !created {
		return err
	}
	a.rep.Written = append(a.rep.Written, acc.home)
	skel, err := a.tree.resolve("/etc/skel", true)
	if err != nil {
		return err
	}
	src := a.tree.real(skel)
	if _, err := os.Stat(src); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := path.Join(acc.home, filepath.ToSlash(rel))
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			_, err = a.tree.mkdir(dst, fi.Mode().Perm(), o)
		case d.Type()&fs.ModeSymlink != 0:
			var target string
			if target, err = os.Readlink(p); err == nil {
				err = a.tree.symlink(dst, target, o)
			}
		case d.Type().IsRegular():
			var b []byte
			if b, err = os.ReadFile(p); err == nil {
				err = a.tree.writeFile(dst, b, fi.Mode().Perm(), o)
			}
		}
		return err
	})
}

// writeKeys adds the user's SSH keys to HOME/.ssh/authorized_keys (the file sshd reads by
// default; keys already there are kept): .ssh 0700 and the file 0600, owned by the user.
func (a *applier) writeKeys(acc *account) error {
	o := owner{acc.uid, acc.gid}
	dir := path.Join(acc.home, ".ssh")
	if _, err := a.tree.mkdir(dir, 0o700, o); err != nil {
		return err
	}
	file := path.Join(dir, "authorized_keys")
	cur, err := a.tree.readFile(file)
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(cur), "\n"), "\n")
	if len(cur) == 0 {
		lines = nil
	}
	for _, k := range acc.keys {
		if k = strings.TrimSpace(k); k != "" && !slices.Contains(lines, k) {
			lines = append(lines, k)
		}
	}
	if err := a.tree.writeFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600, o); err != nil {
		return err
	}
	a.rep.Written = append(a.rep.Written, file)
	return nil
}
