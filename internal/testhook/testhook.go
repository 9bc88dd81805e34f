// Package testhook lets a test watch one server at points nothing public
// shows: a frame about to be handled or just handled, the drain notices
// sent, a connection gone. Only tests set hooks. In production none is ever set,
// so each site in package server costs one atomic load, and no production
// type carries a hook.
package testhook

import (
	"sync"
	"sync/atomic"

	"github.com/socketbus/socketbus/internal/wire"
)

// Server is what a test watches in one server.Server. Any field may be
// nil. The functions run on the server's goroutines.
type Server struct {
	// Handle is called before a connection handles a frame, with a copy
	// of the frame's header.
	Handle func(h *wire.Header)
	// Handled is called after a connection has handled a frame, with a
	// copy of the frame's header, whatever the outcome.
	Handled func(h *wire.Header)
	// Noticed is called by Shutdown right after it has sent its drain
	// notices, before it fails what is queued.
	Noticed func()
	// ConnDone is called when a connection the server accepted is gone:
	// out of Stats, its memory released. Its goroutine returns right
	// after.
	ConnDone func()
}

var (
	anySet  atomic.Bool // whether a test has ever set hooks
	servers sync.Map    // a *server.Server -> *Server
)

// Set makes h the hooks of srv, a *server.Server, from now on; nil
// removes them. Set them before the events they watch: a server's
// goroutines see the change at their next hook site.
func Set(srv any, h *Server) {
	if h == nil {
		servers.Delete(srv)
		return
	}
	anySet.Store(true)
	servers.Store(srv, h)
}

// For returns the hooks of srv, or nil.
func For(srv any) *Server {
	if !anySet.Load() {
		return nil
	}
	h, _ := servers.Load(srv)
	hooks, _ := h.(*Server)
	return hooks
}
