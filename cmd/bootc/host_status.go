package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"go.yaml.in/yaml/v3"
	"golang.org/x/term"

	"github.com/bootc-go/bootc/pkg/imagestore"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/ostree"
	"github.com/bootc-go/bootc/pkg/sysroot"
)

// The status document: bootc's BootcHost, org.containers.bootc/v1 (landscape §2.1, spec §5.4).
type hostStatus struct {
	APIVersion string       `json:"apiVersion" yaml:"apiVersion"`
	Kind       string       `json:"kind" yaml:"kind"`
	Metadata   hostMetadata `json:"metadata" yaml:"metadata"`
	Spec       hostSpec     `json:"spec" yaml:"spec"`
	Status     hostState    `json:"status" yaml:"status"`
}

type hostMetadata struct {
	Name string `json:"name" yaml:"name"`
}

type hostSpec struct {
	Image     *imageReference `json:"image" yaml:"image"`
	BootOrder string          `json:"bootOrder" yaml:"bootOrder"`
}

type imageReference struct {
	Image     string `json:"image" yaml:"image"`
	Transport string `json:"transport" yaml:"transport"`
	Signature any    `json:"signature,omitempty" yaml:"signature,omitempty"`
}

type hostState struct {
	Staged           *bootEntry   `json:"staged" yaml:"staged"`
	Booted           *bootEntry   `json:"booted" yaml:"booted"`
	Rollback         *bootEntry   `json:"rollback" yaml:"rollback"`
	OtherDeployments []*bootEntry `json:"otherDeployments,omitempty" yaml:"otherDeployments,omitempty"`
	RollbackQueued   bool         `json:"rollbackQueued" yaml:"rollbackQueued"`
	Type             *string      `json:"type" yaml:"type"`
}

type bootEntry struct {
	Image        *imageStatus  `json:"image" yaml:"image"`
	CachedUpdate *imageStatus  `json:"cachedUpdate" yaml:"cachedUpdate"`
	Incompatible bool          `json:"incompatible" yaml:"incompatible"`
	Pinned       bool          `json:"pinned" yaml:"pinned"`
	Store        *string       `json:"store" yaml:"store"`
	Ostree       *ostreeStatus `json:"ostree" yaml:"ostree"`

	d *sysroot.Deployment
}

type imageStatus struct {
	Image        imageReference `json:"image" yaml:"image"`
	Version      *string        `json:"version" yaml:"version"`
	Timestamp    *string        `json:"timestamp" yaml:"timestamp"`
	ImageDigest  string         `json:"imageDigest" yaml:"imageDigest"`
	Architecture string         `json:"architecture,omitempty" yaml:"architecture,omitempty"`
}

type ostreeStatus struct {
	Checksum     string `json:"checksum" yaml:"checksum"`
	DeploySerial int    `json:"deploySerial" yaml:"deploySerial"`
	Stateroot    string `json:"stateroot" yaml:"stateroot"`
}

// rpm-ostree's origin groups: bootc reports such deployments as incompatible.
var rpmOstreeGroups = []string{"rpmostree", "packages", "overrides", "modules"}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the deployments: booted, staged and rollback",
		Description: `Prints the host's state in bootc's BootcHost schema (apiVersion
org.containers.bootc/v1): spec.image is what the host follows; status.booted,
status.staged and status.rollback are the deployments. Scripts should use
--format json and check that status.booted is not null.

Which deployment counts as booted: on the running system (--sysroot /) the one the
kernel command line's ostree= argument names; in a sysroot directory, which has no
running kernel, the default (first) boot entry, as if the machine had just started.
A deployment ahead of the booted one that was made during the current boot is
"staged" (it boots next); one made earlier is a queued rollback.

Examples:
   bootc status
   bootc status --format json | jq .status.booted.image
   bootc --sysroot /mnt/sysroot status --booted`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "humanreadable, yaml or json (default: humanreadable on a terminal, yaml otherwise)"},
			&cli.StringFlag{Name: "format-version", Value: "1", Usage: "schema version: 0 and 1 are the same"},
			&cli.BoolFlag{Name: "booted", Usage: "only the booted deployment"},
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	format := c.String("format")
	switch format {
	case "":
		format = "yaml"
		if f, ok := c.App.Writer.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "humanreadable"
		}
	case "humanreadable", "yaml", "json":
	default:
		return usageError(c, "unknown --format %q: use humanreadable, yaml or json", format)
	}
	if v := c.String("format-version"); v != "0" && v != "1" {
		return usageError(c, "unknown --format-version %q: use 0 or 1", v)
	}
	sys, err := sysroot.Open(c.Context, sysrootPath(c))
	if err != nil {
		return sysrootError(c, err)
	}
	st := buildStatus(sys)
	if c.Bool("booted") {
		st.Status.Staged, st.Status.Rollback, st.Status.OtherDeployments = nil, nil, nil
		st.Status.RollbackQueued = false
	}
	w := c.App.Writer
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "yaml":
		enc := yaml.NewEncoder(w)
		enc.SetIndent(2)
		if err := enc.Encode(st); err != nil {
			return err
		}
		return enc.Close()
	}
	printStatus(w, st)
	return nil
}

// buildStatus classifies the deployments and reads each one's image from its commit.
func buildStatus(sys *sysroot.Sysroot) *hostStatus {
	st := &hostStatus{
		APIVersion: "org.containers.bootc/v1",
		Kind:       "BootcHost",
		Metadata:   hostMetadata{Name: "host"},
		Spec:       hostSpec{BootOrder: "default"},
	}
	roles := classify(sys)
	deployed := map[ostree.Checksum]bool{}
	for _, d := range sys.Deployments() {
		deployed[d.Commit] = true
	}
	for _, d := range sys.Deployments() {
		e := entryFor(sys, d, deployed)
		switch {
		case roles.booted != nil && d.Equal(roles.booted):
			st.Status.Booted = e
		case roles.staged != nil && d.Equal(roles.staged):
			st.Status.Staged = e
		case roles.rollback != nil && d.Equal(roles.rollback):
			st.Status.Rollback = e
		default:
			st.Status.OtherDeployments = append(st.Status.OtherDeployments, e)
		}
	}
	if b, r := st.Status.Booted, st.Status.Rollback; b != nil && r != nil && r.d.Index < b.d.Index {
		st.Status.RollbackQueued = true
		st.Spec.BootOrder = "rollback"
	}
	for _, e := range []*bootEntry{st.Status.Staged, st.Status.Booted} {
		if e != nil && e.Image != nil {
			img := e.Image.Image
			st.Spec.Image = &img
			break
		}
	}
	if st.Status.Booted != nil && st.Status.Booted.Image != nil {
		t := "bootcHost"
		st.Status.Type = &t
	}
	return st
}

type deploymentRoles struct {
	booted, staged, rollback *sysroot.Deployment
}

// classify finds the booted, staged and rollback deployments. In a sysroot directory the
// default entry counts as booted (sysroot.Booted), so nothing is staged. On the running system,
// the first deployment ahead of the booted one is staged if it was made during this boot (its
// origin records the boot ID) and a queued rollback otherwise.
func classify(sys *sysroot.Sysroot) deploymentRoles {
	var r deploymentRoles
	r.booted = sys.Booted()
	if r.booted == nil {
		return r
	}
	bootID := currentBootID()
	for _, d := range sys.Deployments() {
		if d.Equal(r.booted) {
			continue
		}
		if d.Index < r.booted.Index && r.staged == nil && bootID != "" && d.Origin != nil {
			if id, ok := d.Origin.Get(originGroup, "boot-id"); ok && id == bootID {
				r.staged = d
				continue
			}
		}
		if r.rollback == nil {
			r.rollback = d
		}
	}
	return r
}

// originGroup is the origin keyfile group where bootc records its own facts.
const originGroup = "bootc"

func currentBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// entryFor describes a deployment. Its cachedUpdate is an image pulled for its origin
// (upgrade --download-only) that no deployment has yet.
func entryFor(sys *sysroot.Sysroot, d *sysroot.Deployment, deployed map[ostree.Checksum]bool) *bootEntry {
	e := &bootEntry{
		Pinned: d.Pinned(),
		Ostree: &ostreeStatus{Checksum: d.Commit.String(), DeploySerial: d.Serial, Stateroot: d.Stateroot},
		d:      d,
	}
	if d.Origin != nil {
		for _, g := range rpmOstreeGroups {
			if d.Origin.HasGroup(g) {
				e.Incompatible = true
			}
		}
	}
	ref, ok := originRef(d)
	if !ok {
		return e
	}
	store := "ostreeContainer"
	e.Store = &store
	if state, err := imagestore.ImageStateOf(sys.Repo(), d.Commit); err == nil {
		e.Image = imageStatusOf(ref, state)
	} else {
		e.Image = &imageStatus{Image: imageReferenceOf(ref)}
	}
	if cached, err := imagestore.QueryImage(sys.Repo(), ref); err == nil && !deployed[cached.Commit] &&
		(e.Image.ImageDigest == "" || cached.Digest.String() != e.Image.ImageDigest) {
		e.CachedUpdate = imageStatusOf(ref, cached)
	}
	return e
}

// originRef parses a deployment's container-image-reference.
func originRef(d *sysroot.Deployment) (imgref.OstreeRef, bool) {
	if d == nil || d.Origin == nil {
		return imgref.OstreeRef{}, false
	}
	s, ok := d.Origin.ContainerImageReference()
	if !ok {
		return imgref.OstreeRef{}, false
	}
	ref, err := imgref.ParseOstree(s)
	return ref, err == nil
}

func imageReferenceOf(ref imgref.OstreeRef) imageReference {
	r := imageReference{Image: ref.Image.Name, Transport: string(ref.Image.Transport)}
	if ref.Image.Tag != "" {
		r.Image += ":" + ref.Image.Tag
	}
	switch ref.SigVerify {
	case imgref.Unverified:
		r.Signature = "insecure"
	case imgref.ContainerPolicy:
		r.Signature = "containerPolicy"
	case imgref.OstreeRemote:
		r.Signature = map[string]string{"ostreeRemote": ref.Remote}
	}
	return r
}

func imageStatusOf(ref imgref.OstreeRef, s *imagestore.ImageState) *imageStatus {
	is := &imageStatus{Image: imageReferenceOf(ref), ImageDigest: s.Digest.String()}
	if s.Version != "" {
		v := s.Version
		is.Version = &v
	}
	if !s.Created.IsZero() {
		t := s.Created.UTC().Format(time.RFC3339)
		is.Timestamp = &t
	}
	if s.Config != nil {
		is.Architecture = s.Config.Architecture
	}
	return is
}

// printStatus writes the human-readable form: one block per deployment, in boot order.
func printStatus(w io.Writer, st *hostStatus) {
	type row struct {
		title string
		e     *bootEntry
	}
	var rows []row
	if st.Status.Staged != nil {
		rows = append(rows, row{"Staged image", st.Status.Staged})
	}
	if st.Status.Booted != nil {
		rows = append(rows, row{"Booted image", st.Status.Booted})
	}
	if st.Status.Rollback != nil {
		title := "Rollback image"
		if st.Status.RollbackQueued {
			title = "Rollback image (queued: boots next)"
		}
		rows = append(rows, row{title, st.Status.Rollback})
	}
	for _, e := range st.Status.OtherDeployments {
		rows = append(rows, row{"Other deployment", e})
	}
	if len(rows) == 0 {
		fmt.Fprintln(w, "No deployments. Install one with 'bootc install to-filesystem --source-imgref IMAGE ROOT'.")
		return
	}
	for i, r := range rows {
		if i > 0 {
			fmt.Fprintln(w)
		}
		mark := " "
		if r.e == st.Status.Booted {
			mark = "●"
		}
		tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
		if r.e.Image != nil {
			fmt.Fprintf(tw, "%s %s:\t%s\n", mark, r.title, displayImage(r.e.Image.Image))
			if r.e.Image.Version != nil {
				fmt.Fprintf(tw, "  Version:\t%s\n", *r.e.Image.Version)
			}
			if r.e.Image.Timestamp != nil {
				fmt.Fprintf(tw, "  Built:\t%s\n", *r.e.Image.Timestamp)
			}
			if r.e.Image.ImageDigest != "" {
				fmt.Fprintf(tw, "  Digest:\t%s\n", r.e.Image.ImageDigest)
			}
		} else {
			fmt.Fprintf(tw, "%s %s:\t(not a container image deployment)\n", mark, r.title)
		}
		fmt.Fprintf(tw, "  Deployment:\t%s.%d (stateroot %s)\n", r.e.Ostree.Checksum, r.e.Ostree.DeploySerial, r.e.Ostree.Stateroot)
		if r.e.Pinned {
			fmt.Fprintf(tw, "  Pinned:\tyes\n")
		}
		if u := r.e.CachedUpdate; u != nil {
			v := ""
			if u.Version != nil {
				v = " version " + *u.Version
			}
			fmt.Fprintf(tw, "  Downloaded update:\t%s%s (deploy it with 'bootc upgrade --from-downloaded')\n", u.ImageDigest, v)
		}
		tw.Flush()
	}
}

func displayImage(r imageReference) string {
	s := r.Image
	if r.Transport != string(imgref.Registry) {
		s = r.Transport + ":" + s
	}
	if r.Signature == "insecure" {
		s += " (signature not verified)"
	}
	return s
}
