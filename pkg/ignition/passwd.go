package ignition

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// table is one colon-separated file: /etc/passwd, /etc/group, /etc/shadow or /etc/gshadow.
// Lines that are no entries (comments) are kept as they are.
type table struct {
	path    string // virtual
	lines   []string
	exists  bool
	changed bool
	mode    fs.FileMode // of a new file
}

func loadTable(t *tree, v string, mode fs.FileMode) (*table, error) {
	b, err := t.readFile(v)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", v, err)
	}
	tb := &table{path: v, exists: b != nil, mode: mode}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" {
			tb.lines = append(tb.lines, l)
		}
	}
	return tb, nil
}

// find returns the index and fields of name's entry (-1, nil if none).
func (tb *table) find(name string) (int, []string) {
	for i, l := range tb.lines {
		if f := strings.Split(l, ":"); f[0] == name && !strings.HasPrefix(l, "#") {
			return i, f
		}
	}
	return -1, nil
}

// nameWith returns the name of the entry whose field col is value ("" if none).
func (tb *table) nameWith(col int, value string) string {
	for _, l := range tb.lines {
		if f := strings.Split(l, ":"); len(f) > col && f[col] == value && !strings.HasPrefix(l, "#") {
			return f[0]
		}
	}
	return ""
}

// set replaces the entry named fields[0], or appends it.
func (tb *table) set(fields []string) {
	l := strings.Join(fields, ":")
	if i, _ := tb.find(fields[0]); i >= 0 {
		if tb.lines[i] == l {
			return
		}
		tb.lines[i] = l
	} else {
		tb.lines = append(tb.lines, l)
	}
	tb.changed = true
}

// write replaces the file, keeping its mode and owner (a new file gets tb.mode, owned by root).
func (tb *table) write(t *tree) error {
	mode, o := tb.mode, rootOwner
	if fi, err := t.lstat(tb.path); err == nil {
		mode = fi.Mode().Perm()
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			o = owner{int(st.Uid), int(st.Gid)}
		}
	}
	return t.writeFile(tb.path, []byte(strings.Join(tb.lines, "\n")+"\n"), mode, o)
}

// passwdDB is the target's user and group database, changed in memory by plan and written by
// Apply.
type passwdDB struct {
	passwd, shadow, group, gshadow *table
	defs                           map[string]string // /etc/login.defs
	defaults                       map[string]string // /etc/default/useradd
	days                           string            // today, for shadow's last change
}

func loadPasswd(t *tree) (*passwdDB, error) {
	db := &passwdDB{days: strconv.FormatInt(today().Unix()/86400, 10)}
	var err error
	for _, x := range []struct {
		tb   **table
		path string
		mode fs.FileMode
	}{{&db.passwd, "/etc/passwd", 0o644}, {&db.shadow, "/etc/shadow", 0o600}, {&db.group, "/etc/group", 0o644}, {&db.gshadow, "/etc/gshadow", 0o600}} {
		if *x.tb, err = loadTable(t, x.path, x.mode); err != nil {
			return nil, err
		}
	}
	if db.defs, err = loadSettings(t, "/etc/login.defs", " \t"); err != nil {
		return nil, err
	}
	if db.defaults, err = loadSettings(t, "/etc/default/useradd", "="); err != nil {
		return nil, err
	}
	return db, nil
}

// today is the time of shadow's last-change field: SOURCE_DATE_EPOCH if set, for reproducible
// trees, or now.
func today() time.Time {
	if s, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		return time.Unix(s, 0)
	}
	return time.Now()
}

// loadSettings reads KEY<sep>VALUE lines (# comments); a missing file has none.
func loadSettings(t *tree, v, sep string) (map[string]string, error) {
	b, err := t.readFile(v)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", v, err)
	}
	m := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' {
			continue
		}
		if i := strings.IndexAny(l, sep); i > 0 {
			m[l[:i]] = strings.Trim(strings.TrimSpace(l[i+1:]), `"`)
		}
	}
	return m, nil
}

func (db *passwdDB) setting(key string, def int) int {
	if n, err := strconv.ParseInt(db.defs[key], 0, 64); err == nil {
		return int(n)
	}
	return def
}

// uid and gid look up a user's uid and a group's gid by name.
func (db *passwdDB) uid(name string) (int, bool) { return idOf(db.passwd, name, 2) }
func (db *passwdDB) gid(name string) (int, bool) { return idOf(db.group, name, 2) }

func idOf(tb *table, name string, col int) (int, bool) {
	_, f := tb.find(name)
	if len(f) <= col {
		return 0, false
	}
	n, err := strconv.Atoi(f[col])
	return n, err == nil
}

// allocate finds a free id for kind "UID" or "GID": the lowest free one from UID_MIN (GID_MIN)
// for a regular account, the highest free one up to SYS_UID_MAX (SYS_GID_MAX) for a system
// account, as useradd does, with the ranges of the target's /etc/login.defs.
func (db *passwdDB) allocate(kind string, system bool, free func(int) bool) (int, error) {
	lo, hi := db.setting(kind+"_MIN", 1000), db.setting(kind+"_MAX", 60000)
	if system {
		lo, hi = db.setting("SYS_"+kind+"_MIN", 101), db.setting("SYS_"+kind+"_MAX", lo-1)
		for id := hi; id >= lo; id-- {
			if free(id) {
				return id, nil
			}
		}
	}
	for id := lo; id <= hi && !system; id++ {
		if free(id) {
			return id, nil
		}
	}
	return 0, fmt.Errorf("no free %s between %d and %d (the target's /etc/login.defs)", kind, lo, hi)
}

func (db *passwdDB) uidFree(id int) bool { return db.passwd.nameWith(2, strconv.Itoa(id)) == "" }
func (db *passwdDB) gidFree(id int) bool { return db.group.nameWith(2, strconv.Itoa(id)) == "" }

// ensureGroup creates the group or changes its gid and password.
func (db *passwdDB) ensureGroup(g types.PasswdGroup) error {
	_, f := db.group.find(g.Name)
	if f == nil {
		f = []string{g.Name, "x", "", ""}
		if g.Gid == nil {
			gid, err := db.allocate("GID", g.System != nil && *g.System, db.gidFree)
			if err != nil {
				return err
			}
			f[2] = strconv.Itoa(gid)
		}
		db.setGshadow(g.Name, "!")
	}
	for len(f) < 4 {
		f = append(f, "")
	}
	if g.Gid != nil && f[2] != strconv.Itoa(*g.Gid) {
		if other := db.group.nameWith(2, strconv.Itoa(*g.Gid)); other != "" {
			return fmt.Errorf("gid %d is the group %s's already", *g.Gid, other)
		}
		f[2] = strconv.Itoa(*g.Gid)
	}
	db.group.set(f)
	if g.PasswordHash != nil {
		db.setGshadow(g.Name, *g.PasswordHash)
	}
	return nil
}

// setGshadow sets a group's password in /etc/gshadow, when the target has that file.
func (db *passwdDB) setGshadow(name, hash string) {
	if !db.gshadow.exists {
		return
	}
	_, f := db.gshadow.find(name)
	if f == nil {
		f = []string{name, hash, "", ""}
	}
	for len(f) < 4 {
		f = append(f, "")
	}
	f[1] = hash
	db.gshadow.set(f)
}

// addMember adds user to the group's member list (in /etc/gshadow too, when present).
func (db *passwdDB) addMember(group, user string) error {
	for _, tb := range []*table{db.group, db.gshadow} {
		_, f := tb.find(group)
		if f == nil {
			if tb == db.gshadow {
				continue
			}
			return fmt.Errorf("the group %s does not exist in the target's /etc/group: add it to passwd.groups", group)
		}
		for len(f) < 4 {
			f = append(f, "")
		}
		members := strings.FieldsFunc(f[3], func(r rune) bool { return r == ',' })
		if !slices.Contains(members, user) {
			f[3] = strings.Join(append(members, user), ",")
			tb.set(f)
		}
	}
	return nil
}
