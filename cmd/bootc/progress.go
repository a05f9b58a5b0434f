package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// progress draws a one-line status that rewrites itself on a terminal, and prints plain lines at
// most every few seconds otherwise.
type progress struct {
	w       io.Writer
	tty     bool
	mu      sync.Mutex
	last    time.Time
	every   time.Duration
	drawn   bool
	started time.Time
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, every: 5 * time.Second, started: time.Now()}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty = true
		p.every = 100 * time.Millisecond
	}
	return p
}

func (p *progress) update(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	msg := fmt.Sprintf(format, args...)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", msg)
		p.drawn = true
	} else {
		fmt.Fprintln(p.w, msg)
	}
}

// done clears the terminal line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// commit draws a commit's progress.
func (p *progress) commit(cp ostree.CommitProgress) {
	p.update("committing: %d files, %s read, %d new objects", cp.Files, humanBytes(cp.Bytes), cp.NewObjects)
}

// progressAwareWriter writes log lines through p, clearing a progress line drawn on a terminal
// first so that the two do not share a line.
type progressAwareWriter struct{ p *progress }

func (w progressAwareWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	if w.p.tty && w.p.drawn {
		fmt.Fprint(w.p.w, "\r\033[K")
		w.p.drawn = false
	}
	return w.p.w.Write(b)
}

// stderrLogger logs Info and above to w as plain key=value lines, without timestamps.
func stderrLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: slog.LevelInfo,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
