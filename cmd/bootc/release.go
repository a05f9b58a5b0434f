package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/pkg/imgref"
	"github.com/bootc-go/bootc/pkg/kargs"
	"github.com/bootc-go/bootc/pkg/transport"
	ug "github.com/bootc-go/bootc/pkg/updategraph"
)

// The release verbs publish a stream's release index (package updategraph) beside the images
// in their repository, tag releases-STREAM, and show the update graph hosts build from it.

func releaseCommand() *cli.Command {
	stream := &cli.StringFlag{Name: "stream", Usage: "the release stream (its index is the repository's tag releases-STREAM)"}
	version := &cli.StringFlag{Name: "version", Usage: "the release's version"}
	rollout := func(prefix string) []cli.Flag {
		return []cli.Flag{
			&cli.Float64Flag{Name: prefix + "start-percentage", Value: 1, Usage: "the share of hosts (0..1) the release opens to at the start; 1 opens it to all at once"},
			&cli.DurationFlag{Name: prefix + "duration", Usage: "how long the release takes to open from the start share to all hosts (e.g. 48h; none: it stays at the start share)"},
			&cli.StringFlag{Name: prefix + "start", Usage: "when the rollout starts: RFC 3339 time or Unix seconds (default now)"},
		}
	}
	mark := func(name string, field func(*ug.ReleaseMetadata) **ug.Reason) *cli.Command {
		return &cli.Command{Name: name, ArgsUsage: "REPO", Action: onRepo(func(c *cli.Context, repo imgref.Ref) error {
			return editRelease(c, repo, func(r *ug.Release) {
				*field(&r.Metadata) = &ug.Reason{Reason: c.String("reason")}
				if c.Bool("remove") {
					*field(&r.Metadata) = nil
				}
			})
		}), Flags: []cli.Flag{stream, version, &cli.StringFlag{Name: "reason", Usage: "why (a sentence or a tracker link)"}, &cli.BoolFlag{Name: "remove", Usage: "take the mark off"}}}
	}
	add := append([]cli.Flag{stream, version,
		&cli.StringFlag{Name: "barrier", Usage: "make the release a barrier every older host passes through, for this REASON"},
		&cli.StringFlag{Name: "deadend", Usage: "make the release a dead-end hosts move off, for this REASON"}}, rollout("rollout-")...)
	wariness := &cli.Float64Flag{Name: "wariness", Usage: "show the graph of a host with this rollout wariness (0 eager .. 1 cautious)"}
	return &cli.Command{Name: "release", Subcommands: []*cli.Command{
		{Name: "add", ArgsUsage: "IMAGE", Action: onRef("one IMAGE (docker://REGISTRY/REPOSITORY:TAG)", runReleaseAdd), Flags: add},
		{Name: "rollout", ArgsUsage: "REPO", Action: onRepo(runReleaseRollout), Flags: append([]cli.Flag{stream, version}, rollout("")...)},
		mark("barrier", func(m *ug.ReleaseMetadata) **ug.Reason { return &m.Barrier }),
		mark("deadend", func(m *ug.ReleaseMetadata) **ug.Reason { return &m.Deadend }),
		{Name: "list", ArgsUsage: "REPO", Action: onRepo(runReleaseList), Flags: []cli.Flag{stream, formatFlag()}},
		{Name: "graph", ArgsUsage: "REPO", Action: onRepo(runReleaseGraph), Flags: []cli.Flag{stream, wariness, formatFlag(),
			&cli.StringFlag{Name: "node-uuid", Usage: "show the graph of the host with this node id (its wariness derives from it)"},
			&cli.StringFlag{Name: "basearch", Value: kargs.Arch(runtime.GOARCH), Usage: "the architecture recorded in the nodes"}}},
		{Name: "serve", ArgsUsage: "REPO", Action: onRepo(runReleaseServe), Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8080", Usage: "the address to serve /v1/graph on"}}},
	}}
}

// onRepo is an Action taking one REPO argument, with --stream required where the command has it.
func onRepo(run func(*cli.Context, imgref.Ref) error) cli.ActionFunc {
	return onRef("one REPO (docker://REGISTRY/REPOSITORY or oci:DIR)", run)
}

// onRef is an Action taking one image reference (what says which), with --stream required where
// the command has it.
func onRef(what string, run func(*cli.Context, imgref.Ref) error) cli.ActionFunc {
	return cliargs.WithArgs(1, 1, what, func(c *cli.Context) error {
		if !c.Command.HasName("serve") {
			if err := requireStream(c); err != nil {
				return err
			}
		}
		repo, err := parseRepo(c, c.Args().First())
		if err != nil {
			return err
		}
		return run(c, repo)
	})
}

func requireStream(c *cli.Context) error {
	if c.String("stream") == "" {
		return cliargs.Errorf(c, "--stream is required: name the release stream (e.g. --stream stable)")
	}
	return nil
}

// parseRepo reads an image or repository reference, a bare one as a registry name.
func parseRepo(c *cli.Context, s string) (imgref.Ref, error) {
	ref, err := imgref.ParseOrRegistry(s)
	if err != nil {
		return ref, cliargs.Errorf(c, "%v", err)
	}
	return ref, nil
}

func registryOpts(c *cli.Context) []transport.Option {
	return []transport.Option{transport.WithRegistries(registriesConfig(c))}
}

// writeIndex writes idx beside repo and says where.
func writeIndex(c *cli.Context, repo imgref.Ref, idx *ug.Index) error {
	d, err := ug.WriteIndex(c.Context, repo, idx, registryOpts(c)...)
	if err != nil {
		return err
	}
	ref, _ := ug.IndexRef(repo, idx.Stream)
	_, err = fmt.Fprintf(c.App.Writer, "Wrote the release index of stream %s to %s (%s)\n", idx.Stream, ref, d)
	return err
}

// editRelease changes the release --version of the stream's index in repo and writes it back.
func editRelease(c *cli.Context, repo imgref.Ref, edit func(*ug.Release)) error {
	if c.String("version") == "" {
		return cliargs.Errorf(c, "--version is required: name the release (see 'bootc release list')")
	}
	idx, err := ug.ReadIndex(c.Context, repo, c.String("stream"), registryOpts(c)...)
	if err != nil {
		return err
	}
	r := idx.Lookup(c.String("version"))
	if r == nil {
		return fmt.Errorf("stream %s has no release %q: see 'bootc release list --stream %s %s'", idx.Stream, c.String("version"), idx.Stream, repo)
	}
	edit(r)
	return writeIndex(c, repo, idx)
}

// rolloutFlags is the rollout the flags with prefix describe.
func rolloutFlags(c *cli.Context, prefix string) (*ug.Rollout, error) {
	p, d, start := c.Float64(prefix+"start-percentage"), c.Duration(prefix+"duration"), time.Now()
	if p < 0 || p > 1 {
		return nil, cliargs.Errorf(c, "--%sstart-percentage %v: give a fraction between 0 and 1 (0.1 is 10%%)", prefix, p)
	} else if d < 0 {
		return nil, cliargs.Errorf(c, "--%sduration %v is negative", prefix, d)
	}
	if s := c.String(prefix + "start"); s != "" {
		var err error
		if start, err = time.Parse(time.RFC3339, s); err != nil {
			sec, err2 := strconv.ParseInt(s, 10, 64)
			if err2 != nil {
				return nil, cliargs.Errorf(c, "--%sstart %q: give an RFC 3339 time (2026-12-06T14:00:00Z) or Unix seconds", prefix, s)
			}
			start = time.Unix(sec, 0)
		}
	}
	r := &ug.Rollout{StartEpoch: ptr(start.Unix()), StartPercentage: &p}
	if d > 0 {
		r.DurationMinutes = ptr(int64((d + time.Minute - 1) / time.Minute))
	}
	return r, nil
}

func ptr[T any](v T) *T { return &v }

func runReleaseRollout(c *cli.Context, repo imgref.Ref) error {
	ro, err := rolloutFlags(c, "")
	if err != nil {
		return err
	}
	return editRelease(c, repo, func(r *ug.Release) { r.Metadata.Rollout = ro })
}

// runReleaseAdd appends IMAGE, by digest, to the stream's index in IMAGE's repository.
func runReleaseAdd(c *cli.Context, image imgref.Ref) error {
	ro, err := rolloutFlags(c, "rollout-")
	if err != nil {
		return err
	}
	rel, err := resolveRelease(c, image)
	if err != nil {
		return err
	}
	rel.Metadata.Rollout = ro
	for flag, field := range map[string]**ug.Reason{"barrier": &rel.Metadata.Barrier, "deadend": &rel.Metadata.Deadend} {
		if c.IsSet(flag) {
			*field = &ug.Reason{Reason: c.String(flag)}
		}
	}
	idx, err := ug.ReadIndex(c.Context, image, c.String("stream"), registryOpts(c)...)
	if errors.Is(err, ug.ErrNoIndex) {
		idx, err = &ug.Index{Version: ug.IndexVersion, Stream: c.String("stream")}, nil
	}
	if err != nil {
		return err
	}
	switch err := idx.Append(*rel); {
	case errors.Is(err, ug.ErrVersionExists):
		return fmt.Errorf("%w: give the new image another --version", err)
	case errors.Is(err, ug.ErrOtherRepository):
		return fmt.Errorf("%w: push the image there first, or use another stream", err)
	case err != nil:
		return err
	}
	return writeIndex(c, image, idx)
}

// resolveRelease is IMAGE's release: by digest, its version --version or its version label.
func resolveRelease(c *cli.Context, image imgref.Ref) (*ug.Release, error) {
	rel, err := ug.ResolveRelease(c.Context, image, registryOpts(c)...)
	if err != nil {
		return nil, err
	}
	if rel.Version = cmp.Or(c.String("version"), rel.Version); rel.Version == "" {
		return nil, fmt.Errorf("%s has no %s label: give the release a --version", image, ug.VersionLabel)
	}
	return rel, nil
}

// runReleaseList shows each release and its rollout now (updategraph.Index.Status).
func runReleaseList(c *cli.Context, repo imgref.Ref) error {
	format, err := outputFormat(c, "json")
	if err != nil {
		return err
	}
	idx, err := ug.ReadIndex(c.Context, repo, c.String("stream"), registryOpts(c)...)
	if err != nil {
		return err
	}
	st, err := idx.Status(time.Now())
	if err != nil {
		return err
	} else if format == "json" {
		return writeData(c.App.Writer, format, st)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDIGEST\tMARKS\tROLLOUT")
	for _, s := range st {
		var marks []string
		if s.Metadata.Barrier != nil {
			marks = append(marks, "barrier")
		}
		if s.Metadata.Deadend != nil {
			marks = append(marks, "dead-end")
		}
		_, digest, _ := strings.Cut(s.Payload, "@")
		fmt.Fprintf(tw, "%s\t%.19s\t%s\t%s\n", s.Version, digest, cmp.Or(strings.Join(marks, ","), "-"), rolloutText(s))
	}
	return tw.Flush()
}

// rolloutText says how far a release is open, e.g. "rolling out: 37% open, done 2026-12-06 14:00 UTC".
func rolloutText(s ug.ReleaseStatus) string {
	const when = "2006-01-02 15:04 MST"
	switch s.Phase {
	case ug.Unreleased:
		return "not released (no rollout: start one with 'bootc release rollout')"
	case ug.Scheduled:
		return "scheduled: starts " + s.Start.Format(when)
	case ug.Held:
		return fmt.Sprintf("open to %d%% of hosts", int(s.Open*100))
	case ug.RollingOut:
		return fmt.Sprintf("rolling out: %d%% open, done %s", int(s.Open*100), s.End.Format(when))
	}
	return "open to all"
}

// runReleaseGraph shows the graph a host sees: Cincinnati's JSON, or its edges as text.
func runReleaseGraph(c *cli.Context, repo imgref.Ref) error {
	format, err := outputFormat(c, "json")
	if err != nil {
		return err
	}
	q := ug.Query{Stream: c.String("stream"), Basearch: c.String("basearch"), NodeUUID: c.String("node-uuid")}
	if c.IsSet("wariness") {
		q.Wariness = ptr(c.Float64("wariness"))
		if q.NodeUUID != "" {
			return cliargs.Errorf(c, "give --wariness or --node-uuid, not both (a node id stands for its wariness)")
		}
	} else if q.NodeUUID == "" {
		q.Wariness = ptr(0.0) // no host named: the most eager one, who sees every started rollout
	}
	g, err := ug.NewRegistrySource(repo, registryOpts(c)...).Graph(c.Context, q)
	if err != nil {
		return err
	}
	if format == "json" {
		return writeData(c.App.Writer, format, g)
	}
	fmt.Fprintf(c.App.Writer, "Wariness %.6f\n", q.EffectiveWariness())
	for _, e := range g.Edges {
		fmt.Fprintf(c.App.Writer, "%s -> %s\n", g.Nodes[e[0]].Version, g.Nodes[e[1]].Version)
	}
	for i := range g.Nodes {
		if to, ok := g.Next(i); ok {
			fmt.Fprintf(c.App.Writer, "a host on %s updates to %s\n", g.Nodes[i].Version, g.Nodes[to].Version)
		}
	}
	return nil
}

// runReleaseServe serves /v1/graph, Cincinnati's API, from repo's indexes until interrupted.
func runReleaseServe(c *cli.Context, repo imgref.Ref) error {
	l, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: ug.Handler(func(ctx context.Context, stream string) (*ug.Index, error) {
		return ug.ReadIndex(ctx, repo, stream, registryOpts(c)...)
	}), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(c.App.Writer, "Serving the update graphs of %s on http://%s/v1/graph\n", repo, l.Addr())
	go func() { <-c.Context.Done(); srv.Close() }()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
