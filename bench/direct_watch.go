package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
)

// directWatch is a node's log handler (cluster.Config.Logger) that waits
// for the node's link from one other node to come on a direct connection:
// the node logs that at info with the attribute "direct", the other
// node's name. Every other record is dropped, as the bench logs nothing
// of its nodes.
type directWatch struct {
	peer string
	once sync.Once
	up   chan struct{} // closed once the link is direct
}

func newDirectWatch(peer string) *directWatch {
	return &directWatch{peer: peer, up: make(chan struct{})}
}

// wait waits until the link is direct, or ctx ends.
func (w *directWatch) wait(ctx context.Context) error {
	select {
	case <-w.up:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: the link from %s on a direct connection: %w", w.peer, ctx.Err())
	}
}

func (w *directWatch) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (w *directWatch) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "direct" && a.Value.String() == w.peer {
			w.once.Do(func() { close(w.up) })
			return false
		}
		return true
	})
	return nil
}

func (w *directWatch) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *directWatch) WithGroup(string) slog.Handler      { return w }
