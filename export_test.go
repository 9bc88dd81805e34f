package socketbus

import "github.com/socketbus/socketbus/internal/wire"

// SetCallLimit sets the longest response c.Call accepts, so that tests
// need not stream 64 MiB to pass the default.
func SetCallLimit(c *Client, n int64) { c.callLimit = n }

// SetHandleHook makes every server connection call hook before it handles
// a frame (nil removes it). Set it before the server starts serving and
// remove it after it has closed.
func SetHandleHook(hook func(h *wire.Header)) { testHookHandle = hook }
