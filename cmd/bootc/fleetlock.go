package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/bootc-go/bootc/internal/cliargs"
	"github.com/bootc-go/bootc/internal/logline"
	"github.com/bootc-go/bootc/pkg/fleetlock"
)

// fleetlockCommand is the FleetLock server (serve), its client (lock, unlock) and a look at the
// semaphores stored in etcd (status).
func fleetlockCommand() *cli.Command {
	endpoints := &cli.StringSliceFlag{Name: "etcd-endpoints", Usage: "etcd client URLs, comma-separated (http://HOST:2379)"}
	client := []cli.Flag{
		&cli.StringFlag{Name: "url", Required: true, Usage: "the FleetLock server's base URL (required)"},
		&cli.StringFlag{Name: "id", Required: true, Usage: "the host's id, as Zincati sends it (required)"},
		&cli.StringFlag{Name: "group", Value: fleetlock.DefaultGroup, Usage: "the host's group"},
	}
	noArgs := func(run cli.ActionFunc) cli.ActionFunc {
		return cliargs.WithArgs(0, 0, "no arguments, only flags", run)
	}
	return &cli.Command{Name: "fleetlock", Subcommands: []*cli.Command{
		{Name: "serve", Action: noArgs(runFleetlockServe), Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:3333", Usage: "the address to listen on"},
			endpoints,
			&cli.BoolFlag{Name: "memory", Usage: "keep the locks in memory instead of etcd (one server; lost when it stops)"},
			&cli.IntFlag{Name: "slots", Value: 1, Usage: "slots of the default group: how many of its hosts may reboot at once"},
			&cli.StringSliceFlag{Name: "group", Usage: "another group and its slots, NAME=SLOTS (repeatable)"},
		}},
		{Name: "lock", Action: noArgs(runFleetlockClient(true)), Flags: client},
		{Name: "unlock", Action: noArgs(runFleetlockClient(false)), Flags: client},
		{Name: "status", Action: noArgs(runFleetlockStatus), Flags: []cli.Flag{endpoints,
			&cli.StringFlag{Name: "group", Usage: "show only this group"}, formatFlag()}},
	}}
}

// fleetlockBackend opens the backend that serve's flags name; close releases it.
func fleetlockBackend(c *cli.Context) (b fleetlock.Backend, close func() error, err error) {
	cfg := fleetlock.Config{DefaultSlots: c.Int("slots"), Groups: map[string]int{}}
	groups, err := keyValueOptions(c, "group", func(k, v string) [2]string { return [2]string{k, v} })
	if err != nil {
		return nil, nil, err
	}
	for _, g := range groups {
		n, err := strconv.Atoi(g[1])
		if err != nil || n < 0 {
			return nil, nil, cliargs.Errorf(c, "--group %s=%s: SLOTS must be a number, 0 or more", g[0], g[1])
		}
		cfg.Groups[g[0]] = n
	}
	switch memory, etcd := c.Bool("memory"), c.StringSlice("etcd-endpoints"); {
	case memory == (len(etcd) > 0):
		return nil, nil, cliargs.Errorf(c, "give either --etcd-endpoints URL[,URL] or --memory")
	case memory:
		m, err := fleetlock.NewMemoryBackend(cfg)
		return m, func() error { return nil }, err
	default:
		e, err := fleetlock.NewEtcdBackend(c.Context, etcd, cfg)
		if err != nil {
			return nil, nil, err
		}
		return e, e.Close, nil
	}
}

// runFleetlockServe serves until SIGINT or SIGTERM, then lets the requests in flight finish.
func runFleetlockServe(c *cli.Context) error {
	backend, closeBackend, err := fleetlockBackend(c)
	if err != nil {
		return err
	}
	defer closeBackend()
	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return err
	}
	log := logline.New(c.App.ErrWriter)
	srv := &http.Server{Handler: fleetlock.NewHandler(backend, fleetlock.WithLogger(log)), ReadHeaderTimeout: 10 * time.Second}
	log.Info("fleetlock: serving", "url", "http://"+ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-c.Context.Done():
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log.Info("fleetlock: shutting down")
	return srv.Shutdown(ctx)
}

// runFleetlockClient takes (lock) or gives back (unlock) the host's slot.
func runFleetlockClient(lock bool) cli.ActionFunc {
	return func(c *cli.Context) error {
		client, err := fleetlock.NewClient(c.String("url"), nil)
		if err != nil {
			return cliargs.Errorf(c, "--url: %v", err)
		}
		id, group := c.String("id"), c.String("group")
		if lock {
			err = client.PreReboot(c.Context, id, group)
		} else {
			err = client.SteadyState(c.Context, id, group)
		}
		switch {
		case fleetlock.IsFull(err):
			return fmt.Errorf("%w\nevery slot of group %s is held: try again later, or see the holders with 'bootc fleetlock status'", err, group)
		case err != nil:
			return err
		case lock:
			_, err = fmt.Fprintf(c.App.Writer, "%s holds a slot of group %s\n", id, group)
		default:
			_, err = fmt.Fprintf(c.App.Writer, "released: %s holds no slot of group %s now\n", id, group)
		}
		return err
	}
}

// runFleetlockStatus prints the semaphores stored in etcd.
func runFleetlockStatus(c *cli.Context) error {
	format, err := outputFormat(c, "json")
	if err != nil {
		return err
	}
	if len(c.StringSlice("etcd-endpoints")) == 0 {
		return cliargs.Errorf(c, "give the etcd cluster with --etcd-endpoints URL[,URL]")
	}
	e, err := fleetlock.NewEtcdBackend(c.Context, c.StringSlice("etcd-endpoints"), fleetlock.Config{DefaultSlots: 1}) // only reads
	if err != nil {
		return err
	}
	defer e.Close()
	sems, err := e.Semaphores(c.Context)
	if err != nil {
		return err
	}
	if g := c.String("group"); g != "" {
		s, ok := sems[g]
		if !ok {
			return fmt.Errorf("etcd holds no semaphore of group %q: no host of it has locked yet (or the name is wrong)", g)
		}
		sems = map[string]fleetlock.Semaphore{g: s}
	}
	if format == "json" {
		return writeData(c.App.Writer, format, sems)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tHELD\tHOLDERS")
	for _, g := range slices.Sorted(maps.Keys(sems)) {
		fmt.Fprintf(tw, "%s\t%d/%d\t%s\n", g, len(sems[g].Holders), sems[g].TotalSlots, cmp.Or(strings.Join(sems[g].Holders, ","), "-"))
	}
	return tw.Flush()
}
