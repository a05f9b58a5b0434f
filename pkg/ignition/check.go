package ignition

import (
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/coreos/ignition/v2/config/v3_5/types"
)

// problems collects what check finds.
type problems []Problem

func (ps *problems) add(field, format string, args ...any) {
	*ps = append(*ps, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// check returns every problem of cfg for Apply: what it does not do, and values it cannot
// write safely.
func check(cfg *types.Config) []Problem {
	var ps problems
	checkIgnition(&ps, cfg.Ignition)
	if k := cfg.KernelArguments; len(k.ShouldExist) > 0 || len(k.ShouldNotExist) > 0 {
		ps.add("kernelArguments", "kernel arguments are not set from Ignition: pass --karg to bootc install, or ship them in the image (/usr/lib/bootc/kargs.d)")
	}
	checkStorage(&ps, &cfg.Storage)
	checkPasswd(&ps, &cfg.Passwd)
	for i, u := range cfg.Systemd.Units {
		f := fmt.Sprintf("systemd.units[%d]", i)
		if !plainName(u.Name) {
			ps.add(f+".name", "%q is no unit name", u.Name)
		}
		for j, d := range u.Dropins {
			if !plainName(d.Name) {
				ps.add(fmt.Sprintf("%s.dropins[%d].name", f, j), "%q is no file name", d.Name)
			}
		}
		if u.Mask != nil && *u.Mask && u.Contents != nil {
			ps.add(f, "both contents and mask: a masked unit's file is a link to /dev/null")
		}
	}
	return ps
}

func checkIgnition(ps *problems, ig types.Ignition) {
	for i := range ig.Config.Merge {
		ps.add(fmt.Sprintf("ignition.config.merge[%d]", i), "merging other configs is not supported: combine them into one config (butane can)")
	}
	if ig.Config.Replace.Source != nil {
		ps.add("ignition.config.replace", "replacing the config is not supported: pass the other config itself")
	}
	for i := range ig.Security.TLS.CertificateAuthorities {
		ps.add(fmt.Sprintf("ignition.security.tls.certificateAuthorities[%d]", i), "TLS certificate authorities are for remote sources, which are not supported: write the certificate as a file (storage.files) instead")
	}
}

func checkStorage(ps *problems, s *types.Storage) {
	what := "this install does not partition or format: prepare the target disk before bootc install, or use bootc install to-disk"
	for _, x := range []struct {
		field string
		n     int
	}{{"storage.disks", len(s.Disks)}, {"storage.raid", len(s.Raid)}, {"storage.filesystems", len(s.Filesystems)}, {"storage.luks", len(s.Luks)}} {
		if x.n > 0 {
			ps.add(x.field, "not supported (%d given): %s", x.n, what)
		}
	}
	for i, d := range s.Directories {
		checkNode(ps, fmt.Sprintf("storage.directories[%d]", i), d.Node)
	}
	for i, f := range s.Files {
		field := fmt.Sprintf("storage.files[%d]", i)
		checkNode(ps, field, f.Node)
		checkResource(ps, field+".contents", f.Contents)
		for j, r := range f.Append {
			checkResource(ps, fmt.Sprintf("%s.append[%d]", field, j), r)
		}
	}
	for i, l := range s.Links {
		field := fmt.Sprintf("storage.links[%d]", i)
		checkNode(ps, field, l.Node)
		if l.Hard != nil && *l.Hard && l.Target != nil {
			if msg := hostPathProblem(*l.Target); msg != "" {
				ps.add(field+".target", "%s", msg)
			}
		}
	}
}

func checkNode(ps *problems, field string, n types.Node) {
	if msg := hostPathProblem(n.Path); msg != "" {
		ps.add(field+".path", "%s", msg)
	}
	if n.User.Name != nil && !fieldValue(*n.User.Name) {
		ps.add(field+".user.name", "%q is no user name", *n.User.Name)
	}
	if n.Group.Name != nil && !fieldValue(*n.Group.Name) {
		ps.add(field+".group.name", "%q is no group name", *n.Group.Name)
	}
}

// hostPathProblem says why p cannot be written ("" if it can): it must be absolute, clean and
// under /etc, /var or /home.
func hostPathProblem(p string) string {
	if !path.IsAbs(p) {
		return fmt.Sprintf("%s is not an absolute path", p)
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." || c == "." {
			return fmt.Sprintf("%s has a %q component: write the path without it", p, c)
		}
	}
	if path.Clean(p) != p {
		return fmt.Sprintf("%s is not a clean path (write it as %s)", p, path.Clean(p))
	}
	for _, top := range []string{"/etc/", "/var/", "/home/"} {
		if strings.HasPrefix(p, top) {
			return ""
		}
	}
	return fmt.Sprintf("%s is not under /etc, /var or /home: the rest of a bootc host comes from the image (change the image instead)", p)
}

// checkResource accepts an empty source and a data: URL, with no compression or gzip.
func checkResource(ps *problems, field string, r types.Resource) {
	if r.Source != nil && *r.Source != "" {
		u, err := url.Parse(*r.Source)
		switch {
		case err != nil:
			ps.add(field+".source", "not a URL: %v", err)
		case u.Scheme != "data":
			ps.add(field+".source", "%s sources are not supported (nothing is fetched): inline the content as a data: URL (butane's contents.local does)", u.Scheme)
		default:
			if _, err := content(r); err != nil {
				ps.add(field, "%v", err)
			}
		}
	}
	if c := r.Compression; c != nil && *c != "" && *c != "gzip" {
		ps.add(field+".compression", "%q is not supported: use gzip or none", *c)
	}
	if len(r.HTTPHeaders) > 0 {
		ps.add(field+".httpHeaders", "HTTP headers are for remote sources, which are not supported")
	}
}

func checkPasswd(ps *problems, p *types.Passwd) {
	for i, g := range p.Groups {
		field := fmt.Sprintf("passwd.groups[%d]", i)
		if !fieldValue(g.Name) || strings.Contains(g.Name, ",") {
			ps.add(field+".name", "%q is no group name", g.Name)
		}
		if g.ShouldExist != nil && !*g.ShouldExist {
			ps.add(field+".shouldExist", "removing groups is not supported")
		}
		if g.Gid != nil && *g.Gid < 0 {
			ps.add(field+".gid", "%d is negative", *g.Gid)
		}
		if g.PasswordHash != nil && !safeField(*g.PasswordHash) {
			ps.add(field+".passwordHash", "holds a colon or a line break")
		}
	}
	for i, u := range p.Users {
		checkUser(ps, fmt.Sprintf("passwd.users[%d]", i), u)
	}
}

func checkUser(ps *problems, field string, u types.PasswdUser) {
	if !fieldValue(u.Name) || strings.Contains(u.Name, ",") {
		ps.add(field+".name", "%q is no user name", u.Name)
	}
	if u.ShouldExist != nil && !*u.ShouldExist {
		ps.add(field+".shouldExist", "removing users is not supported")
	}
	if u.UID != nil && *u.UID < 0 {
		ps.add(field+".uid", "%d is negative", *u.UID)
	}
	for name, v := range map[string]*string{"gecos": u.Gecos, "shell": u.Shell, "passwordHash": u.PasswordHash, "primaryGroup": u.PrimaryGroup, "homeDir": u.HomeDir} {
		if v != nil && !safeField(*v) {
			ps.add(field+"."+name, "holds a colon or a line break")
		}
	}
	if h := u.HomeDir; h != nil && safeField(*h) && (!path.IsAbs(*h) || path.Clean(*h) != *h || strings.Contains(*h, "..")) {
		ps.add(field+".homeDir", "%s is not a clean absolute path", *h)
	}
	for j, g := range u.Groups {
		if !fieldValue(string(g)) || strings.Contains(string(g), ",") {
			ps.add(fmt.Sprintf("%s.groups[%d]", field, j), "%q is no group name", g)
		}
	}
	for j, k := range u.SSHAuthorizedKeys {
		if strings.ContainsAny(string(k), "\n\r\x00") {
			ps.add(fmt.Sprintf("%s.sshAuthorizedKeys[%d]", field, j), "holds a line break: give one key per entry")
		}
	}
}

// fieldValue reports whether s can be a name in /etc/passwd, /etc/group or /etc/shadow.
func fieldValue(s string) bool { return s != "" && safeField(s) }

// safeField reports whether s can be a field of those files (no separator).
func safeField(s string) bool { return !strings.ContainsAny(s, ":\n\r\x00") }

// plainName reports whether s is a file name (no directory).
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}
