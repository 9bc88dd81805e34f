package socketbus

import (
	"time"
)

// ReconnectPolicy says how a Client reconnects when its connection is lost.
// The zero value is the default policy.
type ReconnectPolicy struct {
	// MaxAttempts is how many dials in a row the client makes before it
	// gives up: 0 means DefaultReconnectAttempts, negative means never
	// reconnect (the client closes when its connection is lost).
	MaxAttempts int
	// MinDelay is the wait before the second attempt (the first is made at
	// once); each later wait doubles, up to MaxDelay, and every wait is
	// jittered to between half and all of it. Zero means
	// DefaultReconnectMinDelay and DefaultReconnectMaxDelay.
	MinDelay, MaxDelay time.Duration
}

// The defaults of ReconnectPolicy's zero fields: about two minutes of
// trying, like nats.go's 60 tries two seconds apart.
const (
	DefaultReconnectAttempts = 60
	DefaultReconnectMinDelay = 100 * time.Millisecond
	DefaultReconnectMaxDelay = 2 * time.Second
)

func (p ReconnectPolicy) withDefaults() ReconnectPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = DefaultReconnectAttempts
	}
	if p.MinDelay <= 0 {
		p.MinDelay = DefaultReconnectMinDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultReconnectMaxDelay
	}
	p.MaxDelay = max(p.MaxDelay, p.MinDelay)
	return p
}

// WithReconnect sets how the client reconnects when its connection is lost
// (see ReconnectPolicy and the package documentation on what happens to
// each request).
func WithReconnect(p ReconnectPolicy) DialOption {
	return func(o *dialOptions) { o.reconnect = p }
}

// WithServers adds servers to try besides Dial's addr: Dial tries them in
// order when addr cannot be reached, and the client cycles through Dial's
// addr and these, in order, starting after the server it lost, when it
// reconnects. With them, a client whose server says it is draining joins
// the next server at once and sends new requests there, while the
// draining connection carries what it held to its end (the package
// documentation, "When the server goes away"). Token, TLS configuration
// and client ID are the same for all.
func WithServers(addrs ...string) DialOption {
	return func(o *dialOptions) { o.servers = append(o.servers, addrs...) }
}

// ConnectionState is what a ConnectionEvent reports.
type ConnectionState int

// The connection changes a ConnectionEvent reports.
const (
	// ConnectionLost: the connection ended; the client is reconnecting.
	ConnectionLost ConnectionState = iota + 1
	// ConnectionDraining: the server said it is shutting down; the client
	// sends new requests elsewhere or after the restart.
	ConnectionDraining
	// ConnectionRestored: the client has joined again, on Addr: after a
	// loss, or at once after a drain notice when it has another server to
	// go to (then no loss is reported: the draining connection ends
	// quietly once its server has drained).
	ConnectionRestored
	// ConnectionGaveUp: the client stopped trying and is closed; Err says
	// why.
	ConnectionGaveUp
)

// String returns the state's name.
func (s ConnectionState) String() string {
	switch s {
	case ConnectionLost:
		return "lost"
	case ConnectionDraining:
		return "draining"
	case ConnectionRestored:
		return "restored"
	case ConnectionGaveUp:
		return "gave up"
	}
	return "unknown"
}

// ConnectionEvent is a change of a Client's connection, for logging.
type ConnectionEvent struct {
	State   ConnectionState
	Addr    string // the server the event is about
	Err     error  // why the connection was lost, or why the client gave up
	Attempt int    // for ConnectionRestored, the dials it took
}

// WithConnectionHook makes the client call hook, from a goroutine of its
// own and one event at a time, whenever its connection changes: lost,
// draining, restored, gave up. hook must not call Close.
func WithConnectionHook(hook func(ConnectionEvent)) DialOption {
	return func(o *dialOptions) { o.onConnection = hook }
}
