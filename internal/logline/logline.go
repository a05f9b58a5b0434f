// Package logline is the one log style of every bootc command: a slog.Handler that writes the
// message, then the attributes as key=value, one line per record, at Info and above.
package logline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// New returns a logger writing lines to w.
func New(w io.Writer) *slog.Logger { return slog.New(handler{w: w}) }

type handler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (h handler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h handler) WithGroup(string) slog.Handler                { return h }
func (h handler) WithAttrs(as []slog.Attr) slog.Handler {
	return handler{h.w, append(h.attrs[:len(h.attrs):len(h.attrs)], as...)}
}

func (h handler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool { h.attrs = append(h.attrs, a); return true })
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	_, err := fmt.Fprintln(h.w, b.String())
	return err
}
