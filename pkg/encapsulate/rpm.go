package encapsulate

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/bootc-go/bootc/pkg/encapsulate/chunk"
	"github.com/bootc-go/bootc/pkg/encapsulate/rpmdb"
)

// rpmDBPaths are where rpm keeps its sqlite database, newest convention first.
var rpmDBPaths = []string{"/usr/lib/sysimage/rpm/rpmdb.sqlite", "/usr/share/rpm/rpmdb.sqlite", "/var/lib/rpm/rpmdb.sqlite"}

// rpmPackages reads the commit's rpm database, if it has one. A package is a component of its own,
// named by the package name (as rpm-ostree does), so that its layer survives version changes.
func rpmPackages(ix *commitIndex) ([]chunk.Package, error) {
	for _, p := range rpmDBPaths {
		data, err := ix.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pkgs, err := rpmdb.ReadPackages(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out := make([]chunk.Package, 0, len(pkgs))
		for _, rp := range pkgs {
			cp := chunk.Package{Name: rp.Name, ID: rp.NEVRA(), Files: rp.Files}
			for _, t := range rp.ChangelogTimes {
				cp.ChangeTimes = append(cp.ChangeTimes, time.Unix(t, 0).UTC())
			}
			out = append(out, cp)
		}
		return out, nil
	}
	return nil, nil
}
