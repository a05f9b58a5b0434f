// Command hostop runs one lifecycle operation of package host on a sysroot and writes, as JSON
// lines on stdout (see package internal/testutil/hostop), each event it reports and then its
// typed result, or its error. It is how a test runs the library in a process it can kill.
//
//	hostop --sysroot DIR [--runtime-dir DIR] switch IMAGE    (IMAGE: oci:DIR:TAG, docker://NAME, ostree-...:...)
//	hostop --sysroot DIR [--runtime-dir DIR] upgrade
//	hostop --sysroot DIR [--runtime-dir DIR] finalize
//
// --runtime-dir gives the sysroot runtime state (host.WithRuntimeDir), as on the running system:
// switch and upgrade then stage, and finalize (host.FinalizeStaged) finishes what they staged.
//
// Pull progress is written when its phase or layer count changes. The exit status is 0 with a
// result, 1 with an error, 2 for a usage error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/bootc-go/bootc/internal/testutil/hostop"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
)

func main() {
	fs := flag.NewFlagSet("hostop", flag.ContinueOnError)
	sys := fs.String("sysroot", "", "the sysroot directory")
	runtimeDir := fs.String("runtime-dir", "", "the runtime state directory (staging)")
	usage := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "hostop: "+format+"\nusage: hostop --sysroot DIR [--runtime-dir DIR] switch IMAGE | upgrade | finalize\n", args...)
		os.Exit(2)
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	args := fs.Args()
	if *sys == "" || len(args) == 0 {
		usage("want --sysroot DIR and an operation")
	}
	var ref imgref.OstreeRef
	switch {
	case args[0] == "switch" && len(args) == 2:
		var err error
		if ref, err = host.ParseImage(args[1], imgref.Parse, false); err != nil {
			usage("%v", err)
		}
	case (args[0] == "upgrade" || args[0] == "finalize") && len(args) == 1:
	default:
		usage("unknown operation %q", args)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var mu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	write := func(l *hostop.Line) {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(l); err != nil {
			fmt.Fprintf(os.Stderr, "hostop: writing stdout: %v\n", err)
			os.Exit(1)
		}
	}
	var last hostop.Progress
	progress := func(e host.Event) {
		l := hostop.FromEvent(e)
		if l == nil {
			return
		}
		if p := l.Progress; p != nil {
			mu.Lock()
			same := p.Phase == last.Phase && p.Layers == last.Layers && p.LayersDone == last.LayersDone
			last = *p
			mu.Unlock()
			if same {
				return
			}
		}
		write(l)
	}

	res, err := run(ctx, *sys, args[0], ref, host.WithProgress(progress), host.WithRuntimeDir(*runtimeDir))
	if err != nil {
		write(hostop.FromError(err))
		os.Exit(1)
	}
	write(&hostop.Line{Result: res})
}

func run(ctx context.Context, sys, op string, ref imgref.OstreeRef, opts ...host.Option) (*hostop.Result, error) {
	h, err := host.Open(ctx, sys, opts...)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	switch op {
	case "finalize":
		r, err := h.FinalizeStaged(ctx)
		if err != nil {
			return nil, err
		}
		return hostop.FromFinalize(r), nil
	case "switch":
		r, err := h.Switch(ctx, ref)
		if err != nil {
			return nil, err
		}
		return hostop.FromSwitch(r), nil
	}
	r, err := h.Upgrade(ctx, host.UpgradeDeploy)
	if err != nil {
		return nil, err
	}
	return hostop.FromUpgrade(r), nil
}
