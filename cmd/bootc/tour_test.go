package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bootc-go/bootc/internal/testutil"
)

// TestReadmeTour checks that README.md's "Quick tour" shows the tour of scripts/demo.sh verbatim
// (the lines between "# tour-begin" and "# tour-end"), then runs the script with a bootc built
// from this tree: what the README shows is what runs.
func TestReadmeTour(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	must(t, err)
	script, err := os.ReadFile("../../scripts/demo.sh")
	must(t, err)
	_, block, ok := strings.Cut(string(readme), "<!-- tour: the lines between \"# tour-begin\" and \"# tour-end\" in scripts/demo.sh -->\n```sh\n")
	block, _, ok2 := strings.Cut(block, "```\n")
	_, tour, ok3 := strings.Cut(string(script), "# tour-begin\n")
	tour, _, ok4 := strings.Cut(tour, "# tour-end\n")
	if !ok || !ok2 || !ok3 || !ok4 {
		t.Fatal("README.md's tour block or demo.sh's tour markers are missing")
	}
	if block != tour {
		t.Fatalf("README.md's Quick tour is not scripts/demo.sh's tour:\n%s", testutil.FirstDiff("demo.sh", tour, "README.md", block))
	}
	if testing.Short() {
		t.Skip("-short: not running scripts/demo.sh")
	}
	testutil.Root(t)
	for _, tool := range []string{"ostree", "busybox", "docker-registry", "chattr", "setfattr"} {
		testutil.RequireTool(t, tool)
	}
	bin := filepath.Join(t.TempDir(), "bootc")
	build := exec.CommandContext(t.Context(), "go", "build", "-tags", "containers_image_openpgp", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	demo := exec.CommandContext(t.Context(), "../../scripts/demo.sh")
	demo.Env = append(os.Environ(), "BOOTC="+bin)
	out, err := demo.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "demo: OK") {
		t.Fatalf("scripts/demo.sh: %v\n%s", err, out)
	}
	for _, want := range []string{"+ bootc upgrade --sysroot", "Upgraded ", "Next boot: "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
