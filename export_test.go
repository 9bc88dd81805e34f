package socketbus

// SetCallLimit sets the longest response c.Call accepts, so that tests
// need not stream 64 MiB to pass the default.
func SetCallLimit(c *Client, n int64) { c.callLimit = n }

// WithProtocolVersion makes Dial join with protocol version v (1 or 2),
// so that tests can run a version-1 client next to version-2 ones.
func WithProtocolVersion(v uint8) DialOption {
	return func(o *dialOptions) { o.version = v }
}
