package socketbus

import "sync"

// hookTable holds the test hooks of the Clients a test has set some on.
// An entry is replaced, never changed, so a Client's goroutines read it
// without a lock.
var hookTable sync.Map // *Client -> *testHooks

func init() {
	hooksOf = func(c *Client) *testHooks {
		h, _ := hookTable.Load(c)
		hooks, _ := h.(*testHooks)
		return hooks
	}
}

// setHooks replaces c's test hooks with a copy of them changed by set.
func setHooks(c *Client, set func(h *testHooks)) {
	var h testHooks
	if old := hooksFor(c); old != nil {
		h = *old
	}
	set(&h)
	hookTable.Store(c, &h)
}

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
	setHooks(c, func(h *testHooks) { h.takeGate, h.pushed = gate, pushed })
}

// SetCloseHook makes c.Close call hook once it has stopped the pushes and
// given back what no handler took, before it drains the connection.
func SetCloseHook(c *Client, hook func()) { setHooks(c, func(h *testHooks) { h.close = hook }) }

// SetEndPushHook makes every stop of c's push credit (a Serve's end, or
// Close's) call hook once it has emptied the queue of pushed requests no
// handler took, before it forgets them.
func SetEndPushHook(c *Client, hook func()) { setHooks(c, func(h *testHooks) { h.endPush = hook }) }

// ReturnedCount is how many pushed requests c has given back to the server.
func ReturnedCount(c *Client) int64 { return c.returned.Load() }

// SetMoveHooks makes c's reconnect or move call install once a server has
// taken its join, before the new connection is made current, and c's
// handling of a lost connection call loss once the connection's
// goroutines have stopped, before it sorts what it carried. Call it
// before the connection changes.
func SetMoveHooks(c *Client, install, loss func()) {
	setHooks(c, func(h *testHooks) { h.install, h.loss = install, loss })
}
