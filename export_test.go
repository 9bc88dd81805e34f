package socketbus

// SetCallLimit sets the longest response c.Call accepts, so that tests
// need not stream 64 MiB to pass the default.
func SetCallLimit(c *Client, n int64) { c.callLimit = n }
