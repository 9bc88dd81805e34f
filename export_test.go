package socketbus

import (
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// SetCallLimit sets the longest response c.Call accepts, so that tests
// need not stream 64 MiB to pass the default.
func SetCallLimit(c *Client, n int64) { c.callLimit = n }

// SetWarnWindow sets the window of s's warning limiter, so that a test of
// the limiter does not depend on how fast the machine is.
func SetWarnWindow(s *Server, d time.Duration) {
	s.warns.mu.Lock()
	s.warns.window = d
	s.warns.mu.Unlock()
}

// SetHandleHook makes every server connection call hook before it handles
// a frame (nil removes it). Set it before the server starts serving and
// remove it after it has closed.
func SetHandleHook(hook func(h *wire.Header)) { testHookHandle = hook }

// SetNoticeHook makes Shutdown call hook right after it has sent its
// drain notices, before it fails what is queued (nil removes it).
func SetNoticeHook(hook func()) { testHookNoticed = hook }

// ChargeConn charges n bytes to the memory account of the joined
// connection from remote until it closes, as if it held them, and reports
// whether there is such a connection: past the budget's high-water mark
// the server cuts it for memory.
func ChargeConn(s *Server, remote string, n int64) bool {
	s.mu.Lock()
	var c *serverConn
	for x := range s.conns {
		if x.remote == remote && x.member != nil {
			c = x
		}
	}
	s.mu.Unlock()
	if c == nil {
		return false
	}
	acct := c.member.Account()
	go func() {
		<-c.conn.Done()
		acct.Release(n)
	}()
	acct.Charge(n)
	return true
}

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
