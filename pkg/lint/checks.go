package lint

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bootc-go/bootc/internal/keyfile"
)

// registry is every lint; the names are bootc's.
var registry = []Lint{
	{Name: "var-run", Type: Fatal, check: checkVarRun,
		Description: "Check for /var/run being a physical directory; this is always a bug: it must be a symlink to /run."},
	{Name: "buildah-injected", Type: Warning, RootType: AlternativeRoot, check: checkBuildahInjected,
		Description: "Check for an empty /etc/hostname or /etc/resolv.conf that a container build system may have injected. " +
			"Only for alternative roots: inside a running build these are mounted by the runtime."},
	{Name: "etc-usretc", Type: Fatal, check: checkEtcUsrEtc,
		Description: "Verify that only one of /etc or /usr/etc exists. A container image should only have /etc; " +
			"/usr/etc is where the host keeps the image's defaults, and both at once is undefined behaviour."},
	{Name: "bootc-kargs", Type: Fatal, check: checkKargs,
		Description: "Verify the syntax of /usr/lib/bootc/kargs.d/*.toml."},
	{Name: "kernel", Type: Fatal, check: checkKernel,
		Description: "Check for multiple kernels, i.e. more than one /usr/lib/modules/$kver holding a vmlinuz. " +
			"Only one kernel is supported in an image."},
	{Name: "utf8", Type: Fatal, check: checkUTF8,
		Description: "Check for non-UTF-8 file names and symlink targets. OSTree only supports UTF-8 names."},
	{Name: "api-base-directories", Type: Fatal, check: checkAPIDirs,
		Description: "Verify that the API filesystem directories /dev, /proc, /sys, /run, /tmp and /var exist and are directories."},
	{Name: "baseimage-composefs", Type: Warning, check: checkComposefs,
		Description: "Check that composefs (or a transient root overlay) is enabled for ostree in /usr/lib/ostree/prepare-root.conf."},
	{Name: "baseimage-root", Type: Fatal, check: checkBaseimageRoot,
		Description: "Check that /sysroot is a directory and /ostree a symlink to sysroot/ostree, " +
			"the root content a bootable base image needs."},
	{Name: "var-log", Type: Warning, check: checkVarLog,
		Description: "Check for non-empty regular files in /var/log. Log files are per-machine state, make images " +
			"unreproducible and may leak build system information."},
	{Name: "var-tmpfiles", Type: Warning, RootType: RunningRoot, check: checkVarTmpfiles,
		Description: "Check for content in /var without systemd tmpfiles.d entries, and for files in /var other than " +
			"directories and symlinks: /var content of the image is only applied on the first install, not on upgrades."},
	{Name: "sysusers", Type: Warning, check: checkSysusers,
		Description: "Check for users in /etc/passwd and groups in /etc/group without systemd sysusers.d entries: " +
			"a locally modified /etc/passwd hides the image's new users after an upgrade."},
	{Name: "nonempty-boot", Type: Warning, check: checkBoot,
		Description: "The /boot directory should be present but empty; the kernel belongs in /usr/lib/modules. " +
			"Content in /boot is masked at runtime."},
	{Name: "nonempty-run-tmp", Type: Warning, check: checkRunTmp,
		Description: "Check for content in /run and /tmp, which are tmpfs at runtime: image content there is dead weight."},
}

func checkVarRun(_ context.Context, r *Root) (string, error) {
	fi, err := r.lstat("var/run")
	if err != nil || fi == nil || fi.Mode()&fs.ModeSymlink != 0 {
		return "", err
	}
	return "Not a symlink: /var/run (make it a symlink to ../run)", nil
}

func checkBuildahInjected(_ context.Context, r *Root) (string, error) {
	for _, name := range []string{"etc/hostname", "etc/resolv.conf"} {
		fi, err := r.lstat(name)
		if err != nil {
			return "", err
		}
		if fi != nil && fi.Mode().IsRegular() && fi.Size() == 0 {
			return fmt.Sprintf("/%s is an empty file; a container runtime may have synthesized it", name), nil
		}
	}
	return "", nil
}

func checkEtcUsrEtc(_ context.Context, r *Root) (string, error) {
	etc, err := r.lstat("etc")
	if err != nil || etc == nil {
		return "", err // no /etc: nothing to conflict with
	}
	usrEtc, err := r.lstat("usr/etc")
	if err != nil || usrEtc == nil {
		return "", err
	}
	return "Found /usr/etc next to /etc: /usr/etc is a bootc implementation detail and not supported in containers; move its content to /etc", nil
}

func checkKargs(_ context.Context, r *Root) (string, error) {
	if _, err := parseKargsDir(r); err != nil {
		return err.Error(), nil
	}
	return "", nil
}

func checkKernel(_ context.Context, r *Root) (string, error) {
	if ok, err := r.isDir("usr/lib/modules"); err != nil || !ok {
		return "", err
	}
	ents, err := r.readDir("usr/lib/modules")
	if err != nil {
		return "", err
	}
	var kernels []string
	for _, e := range ents {
		fi, err := r.lstat(path.Join("usr/lib/modules", e.Name(), "vmlinuz"))
		if err != nil {
			return "", err
		}
		if fi != nil && fi.Mode().IsRegular() {
			kernels = append(kernels, display(path.Join("usr/lib/modules", e.Name())))
		}
	}
	if len(kernels) <= 1 {
		return "", nil
	}
	return fmt.Sprintf("Multiple kernels found: %s; an image must have exactly one", strings.Join(kernels, ", ")), nil
}

func checkUTF8(ctx context.Context, r *Root) (string, error) {
	names, targets := r.newPaths(), r.newPaths()
	err := r.walk(ctx, ".", func(e entry) (bool, error) {
		if !utf8.ValidString(path.Base(e.rel)) {
			names.add(display(e.rel))
			return true, nil
		}
		if e.info.Mode()&fs.ModeSymlink != 0 {
			target, err := r.root.Readlink(e.rel)
			if err != nil {
				return false, err
			}
			if !utf8.ValidString(target) {
				targets.add(display(e.rel))
			}
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return joinNonEmpty("; ", names.inlineAfter("Found non-UTF-8 filenames: "),
		targets.inlineAfter("Found non-UTF-8 symlink targets: ")), nil
}

// apiDirs are the directories something is mounted on at boot.
var apiDirs = []string{"dev", "proc", "sys", "run", "tmp", "var"}

func checkAPIDirs(_ context.Context, r *Root) (string, error) {
	missing, notDir := r.newPaths(), r.newPaths()
	for _, d := range apiDirs {
		fi, err := r.lstat(d)
		switch {
		case err != nil:
			return "", err
		case fi == nil:
			missing.add("/" + d)
		case !fi.IsDir():
			notDir.add("/" + d)
		}
	}
	return joinNonEmpty("; ", missing.inlineAfter("Missing API filesystem base directories: "),
		notDir.inlineAfter("Not directories: ")), nil
}

// baseimageRef is where a base image may embed a copy of the root content it expects; the
// baseimage lints check it too.
const baseimageRef = "usr/share/doc/bootc/baseimage/base"

// prepareRootConf is ostree-prepare-root's configuration (spec §5.1).
const prepareRootConf = "usr/lib/ostree/prepare-root.conf"

func checkComposefs(_ context.Context, r *Root) (string, error) {
	for _, base := range []string{".", baseimageRef} {
		if base != "." {
			if ok, err := r.isDir(base); err != nil || !ok {
				return "", err
			}
		}
		conf := path.Join(base, prepareRootConf)
		data, err := r.readFile(conf)
		if err != nil {
			return "", err
		}
		if data == nil {
			return fmt.Sprintf("%s is not present to enable composefs", display(conf)), nil
		}
		enabled, err := overlayEnabled(data)
		if err != nil {
			return fmt.Sprintf("%s: %v", display(conf), err), nil
		}
		if !enabled {
			return fmt.Sprintf("%s does not have composefs enabled (add [composefs] enabled = true)", display(conf)), nil
		}
	}
	return "", nil
}

// overlayEnabled reports whether a prepare-root.conf key file enables composefs ([composefs]
// enabled = true, yes, 1, signed, verity or maybe) or a transient root ([root] transient = true).
func overlayEnabled(data []byte) (bool, error) {
	f, err := keyfile.Parse(data)
	if err != nil {
		return false, err
	}
	kf := f.Map()
	// Trailing blanks are part of a GKeyFile value; GLib ignores them in booleans, and so do we.
	switch v := strings.ToLower(strings.TrimSpace(kf["composefs"]["enabled"])); v {
	case "true", "yes", "1", "signed", "verity", "maybe":
		return true, nil
	case "", "false", "no", "0":
	default:
		return false, fmt.Errorf("invalid [composefs] enabled = %q", v)
	}
	if t := strings.TrimSpace(kf["root"]["transient"]); t != "" {
		b, err := strconv.ParseBool(t)
		if err != nil {
			return false, fmt.Errorf("invalid [root] transient = %q", t)
		}
		return b, nil
	}
	return false, nil
}

func checkBaseimageRoot(_ context.Context, r *Root) (string, error) {
	for _, base := range []string{".", baseimageRef} {
		if base != "." {
			if ok, err := r.isDir(base); err != nil || !ok {
				return "", err
			}
		}
		sysroot, ostree := path.Join(base, "sysroot"), path.Join(base, "ostree")
		fi, err := r.lstat(sysroot)
		switch {
		case err != nil:
			return "", err
		case fi == nil:
			return "Missing " + display(sysroot), nil
		case !fi.IsDir():
			return "Expected a directory for " + display(sysroot), nil
		}
		if fi, err = r.lstat(ostree); err != nil {
			return "", err
		}
		if fi == nil {
			return fmt.Sprintf("Missing %s -> sysroot/ostree link", display(ostree)), nil
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			return display(ostree) + " should be a symlink to sysroot/ostree", nil
		}
		target, err := r.root.Readlink(ostree)
		if err != nil {
			return "", err
		}
		if target != "sysroot/ostree" {
			return fmt.Sprintf("Expected %s -> sysroot/ostree, not %q", display(ostree), target), nil
		}
	}
	return "", nil
}

func checkVarLog(ctx context.Context, r *Root) (string, error) {
	logs := r.newPaths()
	err := r.walk(ctx, "var/log", func(e entry) (bool, error) {
		if !e.mountPoint && e.info.Mode().IsRegular() && e.info.Size() > 0 {
			logs.add(display(e.rel))
		}
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return logs.inlineAfter("Found non-empty logfile: "), nil
}

func checkVarTmpfiles(ctx context.Context, r *Root) (string, error) {
	covered, err := tmpfilesPaths(r)
	if err != nil {
		return "", err
	}
	missing, unsupported := r.newPaths(), r.newPaths()
	uncovered := "" // the last directory reported as uncovered: what is below it is not reported again
	err = r.walk(ctx, "var", func(e entry) (bool, error) {
		if e.mountPoint {
			return false, nil
		}
		mode := e.info.Mode()
		if !mode.IsDir() && mode&fs.ModeSymlink == 0 {
			unsupported.add(display(e.rel))
			return false, nil
		}
		if !covered["/"+e.rel] && (uncovered == "" || !strings.HasPrefix(e.rel, uncovered+"/")) {
			missing.add(display(e.rel))
			uncovered = e.rel
		}
		// Keep walking below an uncovered directory for files tmpfiles.d cannot make.
		return true, nil
	})
	if err != nil {
		return "", err
	}
	return joinNonEmpty("\n", missing.linesAfter("Found content in /var missing systemd tmpfiles.d entries:"),
		unsupported.linesAfter("Found non-directory/non-symlink files in /var:")), nil
}

func checkSysusers(_ context.Context, r *Root) (string, error) {
	users, groups, err := sysusersNames(r)
	if err != nil {
		return "", err
	}
	var msg []string
	for _, f := range []struct {
		file  string
		known map[string]bool
		what  string
	}{{"etc/passwd", users, "/etc/passwd entry"}, {"etc/group", groups, "/etc/group entry"}} {
		data, err := r.readFile(f.file)
		if err != nil {
			return "", err
		}
		missing := r.newPaths()
		for _, line := range strings.Split(string(data), "\n") {
			name, _, _ := strings.Cut(line, ":")
			if name == "" || strings.HasPrefix(name, "#") || strings.HasPrefix(name, "+") || strings.HasPrefix(name, "-") {
				continue
			}
			if !f.known[name] {
				missing.add(name)
			}
		}
		msg = append(msg, missing.linesAfter("Found "+f.what+" without corresponding systemd sysusers.d:"))
	}
	return joinNonEmpty("\n", msg...), nil
}

func checkBoot(_ context.Context, r *Root) (string, error) {
	fi, err := r.lstat("boot")
	if err != nil {
		return "", err
	}
	if fi == nil || !fi.IsDir() {
		return "Missing /boot directory", nil
	}
	ents, err := r.readDir("boot")
	if err != nil {
		return "", err
	}
	found := r.newPaths()
	for _, e := range ents {
		if e.Name() == "EFI" && e.IsDir() {
			// A UKI goes in /boot/EFI/Linux; that directory (and EFI holding only it) is allowed.
			sub, err := r.readDir("boot/EFI")
			if err != nil {
				return "", err
			}
			for _, s := range sub {
				if s.Name() != "Linux" {
					found.add(display(path.Join("boot/EFI", s.Name())))
				}
			}
			continue
		}
		found.add(display(path.Join("boot", e.Name())))
	}
	return found.inlineAfter("Found non-empty /boot: "), nil
}

// stubResolv is the file podman mounts for a base whose /etc/resolv.conf points into systemd's
// resolver directory; it and its parent directories are not image content.
const stubResolv = "run/systemd/resolve/stub-resolv.conf"

func checkRunTmp(ctx context.Context, r *Root) (string, error) {
	found := r.newPaths()
	for _, dir := range []string{"run", "tmp"} {
		err := r.walk(ctx, dir, func(e entry) (bool, error) {
			if e.mountPoint || e.rel == stubResolv {
				return false, nil
			}
			if !e.info.IsDir() {
				found.add(display(e.rel))
				return false, nil
			}
			// A directory counts when it is empty (its content counts otherwise), unless it is
			// a parent of the stub resolv.conf.
			if strings.HasPrefix(stubResolv, e.rel+"/") {
				return true, nil
			}
			ents, err := r.readDir(e.rel)
			if err != nil {
				return false, err
			}
			if len(ents) == 0 {
				found.add(display(e.rel))
			}
			return true, nil
		})
		if err != nil {
			return "", err
		}
	}
	return found.linesAfter("Found content in runtime-only directories:"), nil
}
