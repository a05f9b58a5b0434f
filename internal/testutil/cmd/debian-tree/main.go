// Command debian-tree prints the path of the cached Debian bookworm minbase
// root filesystem used by the tests and benchmarks, building it first if
// needed (needs root and debootstrap).
//
//	go run ./internal/testutil/cmd/debian-tree [-cache DIR]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/bootc-go/bootc/internal/testutil"
)

func main() {
	cacheDir := flag.String("cache", testutil.CacheDir(), "cache directory (default from $BOOTC_TEST_CACHE)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	rootfs, err := testutil.BuildDebianTree(ctx, *cacheDir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "debian-tree: %v\n", err)
		os.Exit(1)
	}
	fmt.Println(rootfs)
}
