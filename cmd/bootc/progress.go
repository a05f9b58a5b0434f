package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"golang.org/x/term"

	"github.com/bootc-go/bootc/pkg/ostree"
)

// progress draws a one-line status that rewrites itself on a terminal, and prints plain lines at
// most every few seconds otherwise. done prints the final state (the latest update) as a line of
// its own, so that counts end where they ended and nothing else shares the line. A quiet progress
// draws nothing.
type progress struct {
	w           io.Writer
	tty, quiet  bool
	mu          sync.Mutex
	last        time.Time
	every       time.Duration
	line        string // the latest update not yet ended by done
	shown, onTT bool   // line was printed; it is drawn on the terminal without a newline
}

func newProgress(w io.Writer, quiet bool) *progress {
	p := &progress{w: w, every: 5 * time.Second, quiet: quiet}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.tty, p.every = true, 100*time.Millisecond
	}
	return p
}

func (p *progress) update(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line, p.shown = fmt.Sprintf(format, args...), false
	if p.quiet || time.Since(p.last) < p.every {
		return
	}
	p.last, p.shown = time.Now(), true
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", p.line)
		p.onTT = true
	} else {
		fmt.Fprintln(p.w, p.line)
	}
}

// done ends the line: the final state stays on screen (or is printed if it was not).
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.clear(); !p.quiet && p.line != "" && (p.tty || !p.shown) {
		fmt.Fprintln(p.w, p.line)
	}
	p.line = ""
}

// clear removes a line drawn on the terminal; the caller holds mu.
func (p *progress) clear() {
	if p.onTT {
		fmt.Fprint(p.w, "\r\033[K")
		p.onTT = false
	}
}

// commit draws a commit's progress.
func (p *progress) commit(cp ostree.CommitProgress) {
	p.update("committing: %d files, %s read, %d new objects", cp.Files, units.BytesSize(float64(cp.Bytes)), cp.NewObjects)
}

// Write prints a log or event line (none if quiet) above a progress line drawn on a terminal
// (cleared, then drawn again below), so that the two do not share a line.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.quiet {
		return len(b), nil
	}
	drawn := p.onTT
	p.clear()
	n, err := p.w.Write(b)
	if drawn {
		fmt.Fprint(p.w, p.line)
		p.onTT = true
	}
	return n, err
}
