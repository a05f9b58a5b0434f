package host_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/bootc-go/bootc/internal/fsflags"
	"github.com/bootc-go/bootc/internal/testutil/testimage"
	"github.com/bootc-go/bootc/pkg/host"
	"github.com/bootc-go/bootc/pkg/imgref"
)

// Install an image into a sysroot directory, upgrade it to a new version, switch it to another
// image and roll back, reading the outcome of each step from its result. (It needs root: the
// deployments are hardlink checkouts owned by root.)
func Example() {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "host-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { fsflags.ClearImmutable(work); os.RemoveAll(work) }()
	build := func(version, target string) {
		rootfs := filepath.Join(work, "rootfs-"+version)
		if err := testimage.WriteTinyOS(rootfs, version, nil); err != nil {
			log.Fatal(err)
		}
		if _, err := testimage.Build(ctx, rootfs, target); err != nil {
			log.Fatal(err)
		}
	}
	stable := "oci:" + filepath.Join(work, "os") + ":stable"
	build("1.0", stable)
	src, err := host.ParseImage(stable, imgref.Parse, false)
	if err != nil {
		log.Fatal(err)
	}

	sys := filepath.Join(work, "sysroot")
	if err := os.Mkdir(sys, 0o755); err != nil {
		log.Fatal(err)
	}
	in, err := host.InstallToFilesystem(ctx, sys, host.Install{Source: src, Kargs: []string{"console=ttyS0"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("installed %s, /var seeded: %v\n", in.Deployed.Image.Version, in.Deployed.VarSeeded)

	build("2.0", stable)
	h, err := host.Open(ctx, sys)
	if err != nil {
		log.Fatal(err)
	}
	check, err := h.CheckUpgrade(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("update available: %v (%s -> %s)\n", check.UpdateAvailable, check.Current.Version, check.Available.Version)
	up, err := h.Upgrade(ctx, host.UpgradeDeploy)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("upgraded %s -> %s, reused layers: %v\n", up.FromImage.Version, up.Deployed.Image.Version, up.Pulled.LayersReused > 0)
	again, err := h.Upgrade(ctx, host.UpgradeDeploy)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("upgrade again: no update: %v\n", again.NoUpdate)

	other := "oci:" + filepath.Join(work, "other")
	build("9.0", other)
	ref, err := host.ParseImage(other, imgref.Parse, false)
	if err != nil {
		log.Fatal(err)
	}
	sw, err := h.Switch(ctx, ref)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("switched to %s\n", sw.Deployed.Image.Version)
	rb, err := h.Rollback(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rolled back to %s\n", rb.Image.Version)
	h.Close()

	st, err := host.Status(ctx, sys)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range st.Entries() {
		fmt.Printf("%s: %s %s\n", e.Role, e.Image.Image.Transport, *e.Image.Version)
	}
	// Output:
	// installed 1.0, /var seeded: true
	// update available: true (1.0 -> 2.0)
	// upgraded 1.0 -> 2.0, reused layers: true
	// upgrade again: no update: true
	// switched to 9.0
	// rolled back to 2.0
	// booted: oci 2.0
	// rollback: oci 9.0
}
