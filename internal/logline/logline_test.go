package logline

import (
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	var b strings.Builder
	l := New(&b).With("image", "os:1")
	l.Info("pulled", "layers", 3)
	l.Debug("not shown")
	l.Warn("slow", "seconds", 2.5)
	want := "pulled image=os:1 layers=3\nslow image=os:1 seconds=2.5\n"
	if b.String() != want {
		t.Fatalf("got %q, want %q", b.String(), want)
	}
}
