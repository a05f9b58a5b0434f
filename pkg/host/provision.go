package host

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/bootc-go/bootc/pkg/ignition"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// RootSSHTmpfilesPath is where RootSSHTmpfiles' snippet is written, as the host sees it.
const RootSSHTmpfilesPath = "/etc/tmpfiles.d/bootc-root-ssh.conf"

// RootSSHTmpfiles is the systemd-tmpfiles snippet that gives root the SSH authorized keys keys
// (the content of an authorized_keys file), as upstream bootc's install
// --root-ssh-authorized-keys writes it: /root is var/roothome on a bootc host, and /var is the
// machine's, not the image's, so the keys travel in /etc (carried to every later deployment by
// the /etc merge) and systemd-tmpfiles-setup creates /root/.ssh (0700) and authorized_keys
// (0600, f~: the content base64-encoded) at boot, unless the file exists: keys root changes
// later are kept. Keys with an empty or malformed line (fewer than two fields, a NUL) are
// refused.
func RootSSHTmpfiles(keys []byte) ([]byte, error) {
	var n int
	for i, l := range strings.Split(string(keys), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || l[0] == '#' {
			continue
		}
		if len(strings.Fields(l)) < 2 || strings.ContainsRune(l, 0) {
			return nil, fmt.Errorf("root's SSH authorized keys, line %d: not an authorized_keys line (TYPE KEY [COMMENT])", i+1)
		}
		n++
	}
	if n == 0 {
		return nil, errors.New("root's SSH authorized keys: no key in the file")
	}
	var b bytes.Buffer
	b.WriteString("# root's SSH keys, from bootc install --root-ssh-authorized-keys\n")
	b.WriteString("d /root/.ssh 0700 root root -\n")
	fmt.Fprintf(&b, "f~ /root/.ssh/authorized_keys 0600 root root - %s\n", base64.StdEncoding.EncodeToString(keys))
	return b.Bytes(), nil
}

// provision writes root's SSH keys and applies the Ignition config of in to the deployment d
// (recording what it did in res): its directory is the tree whose /etc is written, its
// stateroot's var directory is /var.
func provision(ctx context.Context, root string, d *sysroot.Deployment, in Install, res *InstallResult) error {
	if in.Ignition == nil && in.RootSSHAuthorizedKeys == nil {
		return nil
	}
	t := ignition.Target{Root: filepath.Join(root, d.Dir()), Var: filepath.Join(root, "ostree", "deploy", d.Stateroot, "var")}
	if in.RootSSHAuthorizedKeys != nil {
		snippet, err := RootSSHTmpfiles(in.RootSSHAuthorizedKeys)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidInstall, err)
		}
		if err := ignition.WriteFile(t, RootSSHTmpfilesPath, snippet, 0o644); err != nil {
			return fmt.Errorf("writing root's SSH keys: %w", err)
		}
		res.RootSSHKeys = RootSSHTmpfilesPath
	}
	if in.Ignition != nil {
		rep, err := ignition.Apply(ctx, in.Ignition, t)
		if err != nil {
			return fmt.Errorf("applying the Ignition config to the new deployment: %w", err)
		}
		res.Ignition = rep
	}
	return nil
}
