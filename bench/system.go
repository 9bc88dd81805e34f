package main

import "context"

// A system is one way of carrying requests and responses between
// goroutines of this process over loopback TCP: socketbus, NATS or the
// bare relay.
type system interface {
	// Name is the system's column heading.
	Name() string
	// Start brings up the system's server, sh.Responders responders that
	// answer every request with sh.Response, and sh.Requesters requesters,
	// each on its own connection. Responders consume each request body
	// whole and check its length against sh.RequestSize (and, where the
	// system carries headers, the request's against sh.Headers).
	Start(ctx context.Context, sh shape) (deployment, error)
}

// shape is what a workload asks of a system.
type shape struct {
	Requesters  int
	Responders  int
	RequestSize int
	// Response is the body every responder answers with; it is shared and
	// read-only.
	Response []byte
	// Headers are sent on every request, where the system carries
	// headers; responders check that as many arrived. Shared and
	// read-only.
	Headers []headerField
	// Fanout makes every round trip reach each responder once: RoundTrip
	// returns once all of them have answered, with the length of all their
	// responses together (gather.go).
	Fanout bool
}

// A deployment is a started system.
type deployment interface {
	// Requesters returns the requesters, one per connection.
	Requesters() []requester
	// Close stops the responders and the server and closes every
	// connection, returning once all of the deployment's goroutines have
	// ended.
	Close() error
}

// A requester makes one round trip at a time. It is used by one goroutine.
type requester interface {
	// RoundTrip sends body as a request, consumes the whole response and
	// returns its length.
	RoundTrip(ctx context.Context, body []byte) (int, error)
}

// A picky system runs only the shapes it accepts; a system that is not
// picky runs every shape.
type picky interface {
	// Accepts reports whether the system can run sh.
	Accepts(sh shape) bool
}

// A frameCounter is a deployment whose server counts the frames it reads
// and writes; the progress log shows them per round trip.
type frameCounter interface {
	// Frames returns the frames read and written by the server so far.
	Frames() int64
}
