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
