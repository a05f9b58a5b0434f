package sysroot

import (
	"fmt"
	"strings"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// Deployment is one deployed tree.
type Deployment struct {
	// Index is the position in boot order (0 is the default boot); -1 for a deployment Deploy
	// made and WriteDeployments has not placed yet, and for the staged deployment.
	Index     int
	Stateroot string
	Commit    ostree.Checksum
	// Serial is the deployserial: deployments of the same commit count up from 0.
	Serial int
	// BootCsum is the sha256 of the kernel, initramfs and devicetree (spec §2.2).
	BootCsum string
	// BootSerial counts deployments sharing BootCsum.
	BootSerial int
	// Kargs are the kernel arguments of the boot entry, without ostree=.
	Kargs []string
	// Origin is the .origin keyfile; nil if the deployment has none.
	Origin *Origin
	// Version is the commit's "version" metadata, or "".
	Version string

	// entryVersion is the boot entry's "version" key, which orders the entries.
	entryVersion string
	// merge is the deployment Deploy merged /etc from (nil for none), when mergeKnown.
	merge      *Deployment
	mergeKnown bool
	// kernel is the kernel layout Deploy checksummed from the checkout it made (nil for a
	// loaded deployment): WriteDeployments need not checksum it again.
	kernel *kernelLayout
	// staged marks the staged deployment (Sysroot.Staged), whose /etc is not merged yet:
	// WriteDeployments refuses it; FinalizeStaged writes a finalized copy.
	staged bool
}

// Dir returns the deployment's directory relative to the sysroot:
// ostree/deploy/<stateroot>/deploy/<commit>.<serial>.
func (d *Deployment) Dir() string {
	return fmt.Sprintf("ostree/deploy/%s/deploy/%s", d.Stateroot, d.name())
}

// name is the directory's base name, <commit>.<serial>.
func (d *Deployment) name() string { return fmt.Sprintf("%s.%d", d.Commit, d.Serial) }

// Pinned reports whether the origin has [libostree-transient] pinned=true.
func (d *Deployment) Pinned() bool {
	v, ok := d.Origin.Get(transientGroup, pinnedKey)
	return ok && v == "true"
}

// Equal reports whether d and o are the same deployment (stateroot, commit, serial).
func (d *Deployment) Equal(o *Deployment) bool {
	if d == nil || o == nil {
		return d == o
	}
	return d.Stateroot == o.Stateroot && d.Commit == o.Commit && d.Serial == o.Serial
}

// PlaceOptions configures Place.
type PlaceOptions struct {
	// Retain keeps every existing deployment (bootc switch --retain).
	Retain bool
	// NotDefault puts the new deployment after the booted one instead of first.
	NotDefault bool
}

// Place returns the deployment list after adding d, with the retention rules of
// ostree_sysroot_simple_write_deployment (spec §2.7): d first (or after the booted one with
// NotDefault), then the pinned, other stateroots', booted and merge deployments; everything
// else is dropped unless Retain.
//
// The merge deployment is the one Deploy merged /etc from (none with NoMerge); for a
// deployment Deploy did not make, MergeDeployment(d.Stateroot). Without a booted deployment
// (never the case in a sysroot directory with deployments, see the package doc), NotDefault
// inserts d after the merge deployment, and last when there is none.
func (s *Sysroot) Place(d *Deployment, o PlaceOptions) []*Deployment {
	merge := d.merge
	if !d.mergeKnown {
		merge = s.MergeDeployment(d.Stateroot)
	}
	booted := s.booted
	var out []*Deployment
	added := false
	if !o.NotDefault {
		out = append(out, d)
		added = true
	}
	beforeBooted, beforeMerge := true, true
	for _, x := range s.deployments {
		if x.Equal(d) {
			continue
		}
		if booted != nil && x.Equal(booted) {
			beforeBooted = false
		}
		if merge != nil && x.Equal(merge) {
			beforeMerge = false
		}
		crossed := !beforeMerge
		if booted != nil {
			crossed = !beforeBooted
		}
		if o.Retain || x.Pinned() || x.Stateroot != d.Stateroot || x.Equal(booted) || x.Equal(merge) {
			out = append(out, x)
		}
		if !added && crossed {
			out = append(out, d)
			added = true
		}
	}
	if !added {
		out = append(out, d)
	}
	return out
}

// splitKargs splits a kernel command line at spaces outside double quotes.
func splitKargs(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
			cur.WriteByte(c)
			any = true
		case (c == ' ' || c == '\t' || c == '\n') && !quoted:
			if any {
				out = append(out, cur.String())
				cur.Reset()
				any = false
			}
		default:
			cur.WriteByte(c)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// strverscmp compares two strings as glibc's strverscmp: runs of digits compare as numbers,
// and a run with leading zeros as a fraction (so "1.01" < "1.1" < "1.10").
func strverscmp(a, b string) int {
	// The state machine of glibc's strverscmp.c.
	const (
		sN = 0 // normal
		sI = 3 // comparing integral part
		sF = 6 // comparing fractional parts
		sZ = 9 // idem but with leading zeroes only
	)
	const (
		cmp  = 2 // return diff
		len_ = 3
	)
	next := [...]uint8{
		/* state    x    d    0  */
		/* S_N */ sN, sI, sZ,
		/* S_I */ sN, sI, sI,
		/* S_F */ sN, sF, sF,
		/* S_Z */ sN, sF, sZ,
	}
	result := [...]int8{
		/* state   x/x  x/d  x/0  d/x  d/d  d/0  0/x  0/d  0/0  */
		/* S_N */ cmp, cmp, cmp, cmp, len_, cmp, cmp, cmp, cmp,
		/* S_I */ cmp, -1, -1, +1, len_, len_, +1, len_, len_,
		/* S_F */ cmp, cmp, cmp, cmp, cmp, cmp, cmp, cmp, cmp,
		/* S_Z */ cmp, +1, +1, -1, cmp, cmp, -1, cmp, cmp,
	}
	class := func(c byte) int {
		switch {
		case c == '0':
			return 2
		case c >= '1' && c <= '9':
			return 1
		}
		return 0
	}
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	if a == b {
		return 0
	}
	i := 0
	c1, c2 := at(a, 0), at(b, 0)
	state := sN + class(c1)
	diff := int(c1) - int(c2)
	for diff == 0 {
		if c1 == 0 {
			return diff
		}
		state = int(next[state])
		i++
		c1, c2 = at(a, i), at(b, i)
		state += class(c1)
		diff = int(c1) - int(c2)
	}
	switch r := result[state*3+class(c2)]; r {
	case cmp:
		return diff
	case len_:
		isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
		for j := i + 1; ; j++ {
			if !isDigit(at(a, j)) {
				if isDigit(at(b, j)) {
					return -1
				}
				return diff
			}
			if !isDigit(at(b, j)) {
				return 1
			}
		}
	default:
		return int(r)
	}
}
