package socketbus

// MaxMessageBytes returns the largest request or response body the server
// accepts, as it announced when the client joined (its
// server.Config.MaxMessageBytes), or 0 when it has no limit. A caller that
// knows a body's size can refuse a larger one before sending a byte; Send
// fails with ErrTooLarge once such a body passes the limit.
func (c *Client) MaxMessageBytes() int64 { return c.maxMessage }
