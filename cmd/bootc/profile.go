package main

import (
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
)

// startProfiling starts what the hidden environment variables BOOTC_CPUPROFILE (a CPU profile,
// for `go tool pprof`) and BOOTC_TRACE (an execution trace, for `go tool trace`; its
// -pprof=syscall view shows where the time blocked in system calls goes) ask for, writing to the
// files they name, and returns the function that stops them and closes the files. They are for
// measuring bootc itself (bench/pull-deploy/README.md), not for users.
func startProfiling(stderr io.Writer) (stop func()) {
	var stops []func()
	for _, p := range []struct {
		env         string
		start       func(io.Writer) error
		stopProfile func()
	}{
		{"BOOTC_CPUPROFILE", pprof.StartCPUProfile, pprof.StopCPUProfile},
		{"BOOTC_TRACE", trace.Start, trace.Stop},
	} {
		path := os.Getenv(p.env)
		if path == "" {
			continue
		}
		f, err := os.Create(path)
		if err == nil {
			if err = p.start(f); err != nil {
				f.Close()
			}
		}
		if err != nil {
			fmt.Fprintf(stderr, "warning: %s: %v\n", p.env, err)
			continue
		}
		stops = append(stops, func() { p.stopProfile(); f.Close() })
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}
