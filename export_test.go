package socketbus

// SetCallLimit sets the longest response c.Call accepts, so that tests
// need not stream 64 MiB to pass the default.
func SetCallLimit(c *Client, n int64) { c.callLimit = n }

// WithProtocolVersion makes Dial join with protocol version v (1 or 2),
// so that tests can run a version-1 client next to version-2 ones.
func WithProtocolVersion(v uint8) DialOption {
	return func(o *dialOptions) { o.version = v }
}

// SetPushHooks makes c's Serve handlers wait for a value on gate before
// each take of a pushed request, and tells pushed (buffered, or read by
// the test) the ID of each request pushed to c. Call it before Serve.
func SetPushHooks(c *Client, gate chan struct{}, pushed chan ID) {
	c.takeGate, c.pushedHook = gate, pushed
}

// SetCloseHook makes c.Close call hook once it has stopped the pushes and
// given back what no handler took, before it drains the connection.
func SetCloseHook(c *Client, hook func()) { c.closeHook = hook }

// SetEndPushHook makes every stop of c's push credit (a Serve's end, or
// Close's) call hook once it has emptied the queue of pushed requests no
// handler took, before it forgets them.
func SetEndPushHook(c *Client, hook func()) { c.endPushHook = hook }

// ReturnedCount is how many pushed requests c has given back to the server.
func ReturnedCount(c *Client) int64 { return c.returned.Load() }

// SetMoveHooks makes c's reconnect or move call install once a server has
// taken its join, before the new connection is made current, and c's
// handling of a lost connection call loss once the connection's
// goroutines have stopped, before it sorts what it carried. Call it
// before the connection changes.
func SetMoveHooks(c *Client, install, loss func()) { c.installHook, c.lossHook = install, loss }
