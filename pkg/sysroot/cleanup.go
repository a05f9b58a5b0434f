package sysroot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// CleanupStats says what Cleanup removed.
type CleanupStats struct {
	Deployments, BootDirs int
	Prune                 *ostree.PruneStats
}

// Cleanup removes deployment directories no boot entry lists (clearing their immutable flag),
// partial deployments left by a crash, kernel directories under /boot/ostree no entry uses, the
// unused loader.N and boot.N.M, deployment refs of the other boot version, and then prunes the
// repository (objects no ref reaches). Callers that keep images in the repository delete the
// image refs they no longer need first (deploy.GC).
//
// It reloads the deployments first and works from what the current boot version lists; it
// also (re)writes that list's deployment refs, ostree/<N>/<M>/<index>, so a sysroot written by
// another tool is protected the same way. Only names this package or libostree write are
// touched: <checksum>.<serial> directories and their .origin files, .tmp-* leftovers,
// <stateroot>-<checksum> kernel directories. The staged deployment (Staged) counts as listed:
// its directory, origin and kernel directory stay, and its commit gets the first deployment
// ref (as libostree numbers them). The caller holds Lock.
func (s *Sysroot) Cleanup(ctx context.Context) (*CleanupStats, error) {
	if err := s.Load(ctx); err != nil {
		return nil, err
	}
	st := &CleanupStats{}
	active := map[string]bool{}     // deployment dirs, relative to the sysroot
	activeBoot := map[string]bool{} // <stateroot>-<bootcsum>
	kept := s.withStaged()
	for _, d := range kept {
		active[d.Dir()] = true
		activeBoot[d.Stateroot+"-"+d.BootCsum] = true
	}

	// Deployment refs first: once the current list is protected, the rest can go.
	if err := s.setDeploymentRefs(s.bootversion, s.subbootversion, kept); err != nil {
		return nil, err
	}
	if err := s.deleteOtherDeploymentRefs(s.bootversion, s.subbootversion, len(kept)); err != nil {
		return nil, err
	}

	// The other boot version, and the other subboot version of this one.
	other := 1 - s.bootversion
	for _, p := range []string{
		fmt.Sprintf("boot/loader.%d", other),
		"boot/loader.tmp",
		fmt.Sprintf("ostree/boot.%d", other),
		fmt.Sprintf("ostree/boot.%d.tmp", other),
		fmt.Sprintf("ostree/boot.%d.0", other),
		fmt.Sprintf("ostree/boot.%d.1", other),
		fmt.Sprintf("ostree/boot.%d.tmp", s.bootversion),
		fmt.Sprintf("ostree/boot.%d.%d", s.bootversion, 1-s.subbootversion),
	} {
		if err := os.RemoveAll(s.abs(p)); err != nil {
			return nil, fmt.Errorf("cleaning up: %w", err)
		}
	}
	if len(s.deployments) == 0 {
		// No boot configuration at all: then nothing refers to the current version either.
		for _, p := range []string{"ostree/boot.%d", "ostree/boot.%d.0", "ostree/boot.%d.1"} {
			if err := os.RemoveAll(s.abs(fmt.Sprintf(p, s.bootversion))); err != nil {
				return nil, fmt.Errorf("cleaning up: %w", err)
			}
		}
	}

	// Deployment directories, origins and staging leftovers.
	stateroots, err := os.ReadDir(s.abs("ostree/deploy"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cleaning up: %w", err)
	}
	for _, sr := range stateroots {
		if !sr.IsDir() {
			continue
		}
		osDir := "ostree/deploy/" + sr.Name()
		ents, err := os.ReadDir(s.abs(osDir))
		if err != nil {
			return nil, fmt.Errorf("cleaning up: %w", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				if err := removeAll(s.abs(osDir + "/" + e.Name())); err != nil {
					return nil, err
				}
			}
		}
		deployDir := osDir + "/deploy"
		ents, err = os.ReadDir(s.abs(deployDir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("cleaning up: %w", err)
		}
		for _, e := range ents {
			name := e.Name()
			rel := deployDir + "/" + name
			switch {
			case strings.HasPrefix(name, tmpPrefix):
				if err := removeAll(s.abs(rel)); err != nil {
					return nil, err
				}
			case strings.HasSuffix(name, ".origin"):
				if _, _, err := parseDeployName(strings.TrimSuffix(name, ".origin")); err == nil && !active[strings.TrimSuffix(rel, ".origin")] {
					if err := os.Remove(s.abs(rel)); err != nil {
						return nil, fmt.Errorf("cleaning up: %w", err)
					}
				}
			case e.IsDir():
				if _, _, err := parseDeployName(name); err == nil && !active[rel] {
					if err := ctx.Err(); err != nil {
						return nil, err
					}
					if err := removeAll(s.abs(rel)); err != nil {
						return nil, err
					}
					st.Deployments++
				}
			}
		}
	}

	// Kernel directories.
	ents, err := os.ReadDir(s.abs("boot/ostree"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cleaning up: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, tmpPrefix):
			if err := os.RemoveAll(s.abs("boot/ostree/" + name)); err != nil {
				return nil, fmt.Errorf("cleaning up: %w", err)
			}
		case e.IsDir() && isBootDirName(name) && !activeBoot[name]:
			if err := os.RemoveAll(s.abs("boot/ostree/" + name)); err != nil {
				return nil, fmt.Errorf("cleaning up: %w", err)
			}
			st.BootDirs++
		}
	}
	if err := s.syncfs(); err != nil {
		return nil, err
	}

	// The prune walks the repository only when a ref's commit went since the last one
	// (ostree.PruneOptions.IfRootsRemoved): an upgrade that keeps every deployment leaves
	// nothing unreachable.
	if st.Prune, err = s.repo.Prune(ctx, ostree.PruneOptions{IfRootsRemoved: true}); err != nil {
		return st, fmt.Errorf("pruning the repository: %w", err)
	}
	return st, nil
}

// isBootDirName matches <stateroot>-<sha256 hex>.
func isBootDirName(name string) bool {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 {
		return false
	}
	_, err := ostree.ParseChecksum(name[i+1:])
	return err == nil
}
