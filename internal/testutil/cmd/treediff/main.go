// Command treediff compares two directory trees the way OSTree sees them
// (entry names, file types, permission bits, owners, extended attributes,
// symlink targets and file content; timestamps are ignored) with
// internal/treediff, and prints one line per difference. It exits 0 when the
// trees are the same, 1 when they differ and 2 on an error. The benchmarks use
// it to check that two deployments hold the same tree.
//
//	go run ./internal/testutil/cmd/treediff [-max N] A B
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/bootc-go/bootc/internal/treediff"
)

func main() {
	maxLines := flag.Int("max", 50, "print at most this many differences (0: all)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: treediff [-max N] A B")
		os.Exit(2)
	}
	diffs, err := treediff.Diff(flag.Arg(0), flag.Arg(1), treediff.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "treediff: %v\n", err)
		os.Exit(2)
	}
	for i, d := range diffs {
		if *maxLines > 0 && i == *maxLines {
			fmt.Printf("... and %d more\n", len(diffs)-i)
			break
		}
		fmt.Println(d)
	}
	if len(diffs) > 0 {
		os.Exit(1)
	}
}
