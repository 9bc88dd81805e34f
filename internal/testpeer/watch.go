package testpeer

import (
	"testing"
	"time"

	"github.com/socketbus/socketbus/internal/testhook"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// Watch wakes a test whenever a server's state may have changed: a
// connection has handled a frame, or the server is done with a connection
// (out of Stats, its memory released). It lets a test wait for a
// condition on Stats without polling it.
type Watch struct {
	srv  *server.Server
	kick chan struct{} // capacity 1: something happened since the last check
}

// WatchServer watches srv until the test ends. It sets srv's test hooks,
// replacing any others.
func WatchServer(t testing.TB, srv *server.Server) *Watch {
	w := &Watch{srv: srv, kick: make(chan struct{}, 1)}
	poke := func() {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	testhook.Set(srv, &testhook.Server{Handled: func(*wire.Header) { poke() }, ConnDone: poke})
	t.Cleanup(func() { testhook.Set(srv, nil) })
	return w
}

// Until returns true once ok holds, checking it now and after every frame
// handled and every connection gone, or false if timeout passes first
// (ok is then checked a last time).
func (w *Watch) Until(timeout time.Duration, ok func() bool) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for !ok() {
		select {
		case <-w.kick:
		case <-timer.C:
			return ok()
		}
	}
	return true
}
