package sysroot

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/fsflags"
)

// TestWriteDeploymentsKernelChecksum: WriteDeployments checksums a deployment's kernel only
// where nothing vouches for it. A loaded deployment whose /boot/ostree kernel directory is
// complete boots from that copy (a later change to its deployment directory does not reach
// /boot); without that directory the kernel is checksummed again: a changed kernel is refused, the
// original accepted.
func TestWriteDeploymentsKernelChecksum(t *testing.T) {
	s := newSysroot(t)
	d1, _ := deployAndWrite(t, s, commitTree(t, s, "1", baseTree()), DeployOptions{})
	sum := sha256.Sum256([]byte("KERNELINITRD"))
	if want := hex.EncodeToString(sum[:]); d1.BootCsum != want {
		t.Fatalf("BootCsum %s, want sha256(vmlinuz+initramfs) %s", d1.BootCsum, want)
	}
	bootDir := filepath.Join(s.Path(), "boot/ostree/myos-"+d1.BootCsum)
	vmlinuz := filepath.Join(s.Path(), d1.Dir(), "usr/lib/modules/6.1.0-test/vmlinuz")
	// A changed kernel in the deployment directory, replaced (never written in place: the file
	// is a hardlink to the repository's object).
	if err := fsflags.SetImmutable(filepath.Join(s.Path(), d1.Dir()), false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vmlinuz+".new", []byte("OTHER KERNEL"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(vmlinuz+".new", vmlinuz); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name       string
		dropBoot   bool
		wantErr    string
		wantKernel string
	}{
		{name: "kernel directory complete: kept", wantKernel: "KERNEL"},
		{name: "kernel directory gone: checksummed and refused", dropBoot: true, wantErr: "not the recorded " + d1.BootCsum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.dropBoot {
				if err := os.RemoveAll(bootDir); err != nil {
					t.Fatal(err)
				}
			}
			s2, err := Open(t.Context(), s.Path())
			if err != nil {
				t.Fatal(err)
			}
			err = s2.WriteDeployments(t.Context(), s2.Deployments(), WriteOptions{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("WriteDeployments: %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("WriteDeployments: %v", err)
			}
			got, err := os.ReadFile(filepath.Join(bootDir, "vmlinuz-6.1.0-test"))
			if err != nil || string(got) != tc.wantKernel {
				t.Errorf("boot kernel %q (%v), want %q", got, err, tc.wantKernel)
			}
		})
	}

	// The kernel back as it was: checksummed again and found right.
	if err := os.WriteFile(vmlinuz+".new", []byte("KERNEL"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(vmlinuz+".new", vmlinuz); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(t.Context(), s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.WriteDeployments(t.Context(), s3.Deployments(), WriteOptions{}); err != nil {
		t.Fatalf("WriteDeployments with the kernel restored: %v", err)
	}
}

// TestDeployReusesKernelChecksum: a new deployment whose kernel files are the same inodes as a
// loaded deployment's takes that deployment's checksum (shown by a planted value); a changed
// kernel is checksummed.
func TestDeployReusesKernelChecksum(t *testing.T) {
	s := newSysroot(t)
	v1 := commitTree(t, s, "1", baseTree())
	d1, _ := deployAndWrite(t, s, v1, DeployOptions{})
	want := d1.BootCsum
	if len(want) != 64 {
		t.Fatalf("bootcsum %q", want)
	}
	const planted = "feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface"
	for _, d := range s.deployments {
		d.BootCsum = planted
	}
	v2 := commitTree(t, s, "2", with(baseTree(), map[string]string{"usr/share/doc/new": "doc"}))
	d2, _, err := s.Deploy(t.Context(), v2, DeployOptions{Stateroot: "myos"})
	if err != nil {
		t.Fatal(err)
	}
	if d2.BootCsum != planted {
		t.Fatalf("same kernel files: bootcsum %s, want the loaded deployment's (planted) one", d2.BootCsum)
	}
	v3 := commitTree(t, s, "3", with(baseTree(), map[string]string{"usr/lib/modules/6.1.0-test/vmlinuz": "KERNEL3"}))
	d3, _, err := s.Deploy(t.Context(), v3, DeployOptions{Stateroot: "myos"})
	if err != nil {
		t.Fatal(err)
	}
	if d3.BootCsum == planted || d3.BootCsum == want || len(d3.BootCsum) != 64 {
		t.Fatalf("changed kernel: bootcsum %s", d3.BootCsum)
	}
}
