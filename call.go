package socketbus

import (
	"bytes"
	"context"
	"fmt"
)

// defaultCallLimit caps Call's response when the server announces no
// MaxMessageBytes.
const defaultCallLimit = 64 << 20

// Call sends body as a request and returns the whole response: it is Send
// for bodies that fit in memory, with Send's deadlines, cancellation and
// errors (ErrNoPeers, ErrTimeout, ctx.Err(), *RemoteError...).
//
// The response may be at most the server's MaxMessageBytes, or 64 MiB when
// the server sets no limit. A longer response fails Call with an error
// matching ErrTooLarge, and the request is cancelled at its receiver.
//
// Options: WithHeader sends headers with the request, ResponseHeader
// collects the response's.
func (c *Client) Call(ctx context.Context, body []byte, opts ...CallOption) ([]byte, error) {
	resp := &cappedBuffer{limit: c.callLimit}
	if err := c.Send(ctx, bytes.NewReader(body), resp, opts...); err != nil {
		return nil, err
	}
	return resp.buf, nil
}

// callLimitFor returns the cap on Call's responses for a server whose body
// limit is maxMessage (0: none).
func callLimitFor(maxMessage int64) int64 {
	if maxMessage > 0 {
		return maxMessage
	}
	return defaultCallLimit
}

// cappedBuffer collects a response of up to limit bytes.
type cappedBuffer struct {
	buf   []byte
	limit int64
}

// Write appends p, or fails with an error matching ErrTooLarge if the
// buffer would go over its limit.
func (b *cappedBuffer) Write(p []byte) (int, error) {
	if int64(len(b.buf))+int64(len(p)) > b.limit {
		return 0, fmt.Errorf("socketbus: call: response over %d bytes: %w", b.limit, ErrTooLarge)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}
