package socketbus

import (
	"io"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// sendPiece reads up to n bytes of body into a pooled buffer and sends them
// as the next chunk of stream id (a request or response, by flags),
// followed by the end frame if body has ended. It returns the bytes read,
// the next sequence number, the reader's error (io.EOF at the end) and the
// error sending failed with, if it did. Send's uploader and Respond share it.
func (c *Client) sendPiece(flags wire.Flags, id ID, body io.Reader, n int, seq uint32) (got int, next uint32, rerr, serr error) {
	buf := frameconn.GetBuffer(n)
	got, rerr = fill(body, buf)
	var frames [2]frameconn.Frame
	count := 0
	if got > 0 {
		frames[0] = frameconn.Frame{Header: c.header(wire.TypeChunk, flags, id), Payload: buf[:got], Pooled: true}
		frames[0].Header.Sequence = seq
		seq++
		count = 1
	} else {
		frameconn.PutBuffer(buf)
	}
	if rerr == io.EOF {
		end := c.header(wire.TypeEnd, flags, id)
		end.Sequence, end.Final = seq, true
		frames[count] = frameconn.Frame{Header: end}
		count++
	}
	if count > 0 {
		serr = c.send(frames[:count]...)
	}
	return got, seq, rerr, serr
}
