package socketbus

import (
	"io"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// sendPiece reads up to n bytes of body into a pooled buffer and sends them
// as the chunk with sequence seq of stream id (a request or a response, by
// flags): preceded by the stream's start frame when start is set, and
// followed by the end frame when body has ended, all in one write. The
// first chunk is sent even when empty (an empty body has one empty chunk);
// later ones only with data. It returns the bytes read, the next sequence
// number, the reader's error (io.EOF at the end) and the error sending
// failed with, if it did. Send and Respond stream every body through it.
//
// In protocol v3 the start frame carries headers, the stream's encoded
// header block, first (then the body, when it is whole); the caller
// leaves room for it in n. headers is nil before v3 and for pieces
// without a start frame.
//
// The frames are queued under w's lock, and only while w is open: the
// connection's reader ends a stream's window before it handles the next
// frame it read, so once the client has read the end of a stream no frame
// of it is queued after anything the reader answers later (the pong that
// lets the server forget the stream, in particular). A piece for an ended
// window is dropped and the window's error returned.
func (c *Client) sendPiece(w *sendWindow, flags wire.Flags, id ID, body io.Reader, n int, seq uint32, start *wire.Header, headers []byte) (got int, next uint32, rerr, serr error) {
	return c.sendPieceKeeping(w, flags, id, body, n, seq, start, headers, nil, nil)
}

// sendPieceKeeping is sendPiece that also shows the piece to rp (when not
// nil) before sending it, so that a request can be sent again, and hands
// sent (when not nil) to the connection with the start frame: a
// frame.TakeNotifier learns when the writer takes it for writing.
func (c *Client) sendPieceKeeping(w *sendWindow, flags wire.Flags, id ID, body io.Reader, n int, seq uint32, start *wire.Header, headers []byte, rp *replay, sent frame.SentNotifier) (got int, next uint32, rerr, serr error) {
	hl := len(headers) // the body is read after the header block
	buf := frame.GetBuffer(hl + n)
	copy(buf, headers)
	got, rerr = fillPooled(body, buf, buf[hl:hl+n])
	if rerr == nil && got == n && start != nil && drained(body) {
		rerr = io.EOF // a body of exactly n bytes fits its first frame too
	}
	if rp != nil {
		rp.keepPiece(buf[hl:hl+got], rerr == io.EOF)
	}
	var frames [3]frame.Frame
	count := 0
	if start != nil && rerr == io.EOF && c.opts.version >= wire.Version2 {
		// v2: a body that fits its first frame travels in the start
		// frame, which is then the whole stream.
		frames[0] = frame.Frame{Header: *start, Payload: buf[:hl+got], Pooled: true}
		frames[0].Header.Final = true
		count = 1
		seq = 3
		rerr = io.EOF
		goto queue
	}
	if start != nil {
		frames[0] = frame.Frame{Header: *start}
		if hl > 0 {
			// v3: the start frame carries the header block alone, and
			// the body moves to the front of its buffer (the pool knows
			// buffers by their capacity).
			frames[0].Payload, frames[0].Pooled = frame.GetBuffer(hl), true
			copy(frames[0].Payload, headers)
			buf = buf[:copy(buf, buf[hl:hl+got])]
		}
		count = 1
	}
	if got > 0 || seq == 1 {
		frames[count] = frame.Frame{Header: c.header(wire.TypeChunk, flags, id), Payload: buf[:got], Pooled: true,
			FlowControlled: true} // the server's credit bounds it: it does not pause the reader
		frames[count].Header.Sequence = seq
		seq++
		count++
	} else {
		frame.PutBuffer(buf)
	}
	if rerr == io.EOF {
		end := c.header(wire.TypeEnd, flags, id)
		end.Sequence, end.Final = seq, true
		frames[count] = frame.Frame{Header: end}
		count++
	}
queue:
	if start != nil && sent != nil {
		frames[0].Sent = sent
	}
	if count > 0 {
		w.mu.Lock()
		if serr = w.err; serr == nil {
			if flags == wire.FlagRequest {
				serr = c.sendInlineOn(w.cc, frames[:count]...)
			} else {
				serr = c.sendOn(w.cc, frames[:count]...)
			}
		} else {
			for i := range frames[:count] {
				frames[i].Release()
			}
		}
		w.mu.Unlock()
	}
	return got, seq, rerr, serr
}

// fillPooled is fill into p, a part of buf, a pooled buffer the caller
// owns: if body's Read panics (a handler's reader, whose panic Serve
// recovers), buf goes back to the pool before the panic goes on.
func fillPooled(body io.Reader, buf, p []byte) (n int, err error) {
	filled := false
	defer func() {
		if !filled {
			frame.PutBuffer(buf)
		}
	}()
	n, err = fill(body, p)
	filled = true
	return n, err
}

// drained reports whether body is known to have nothing left, without
// reading it: a reader that says how much it holds (bytes.Reader,
// strings.Reader, bytes.Buffer) and holds nothing. A body that fills its
// first frame exactly then still travels whole (v2), which a reader that
// cannot say so learns only from its next Read.
func drained(body io.Reader) bool {
	l, ok := body.(interface{ Len() int })
	return ok && l.Len() == 0
}
