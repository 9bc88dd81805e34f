package testpeer

import (
	"errors"
	"fmt"
	"io"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// ReadError reads frames until an error frame and returns its payload.
func (r *Conn) ReadError() (wire.Header, *wire.Error) {
	t := r.test()
	t.Helper()
	for {
		h, p := r.Read()
		if h.Type != wire.TypeError {
			continue
		}
		e, err := wire.ParseErrorVersion(h.Version, p, wire.MaxHeaderBlock)
		if err != nil {
			t.Fatalf("error frame payload: %v", err)
		}
		return h, e
	}
}

// ErrNoErrorFrame says the server closed a connection without sending an
// error frame first.
var ErrNoErrorFrame = errors.New("testpeer: the connection ended without an error frame")

// Refusal reads what a server says to a connection it throws out: one
// error frame, then the end of the stream (EOF, never a reset). It returns
// the error frame's header and code. Pings before the error frame are
// skipped; any other frame is an error, and a close with no error frame is
// ErrNoErrorFrame.
func (r *Conn) Refusal() (wire.Header, wire.Code, error) {
	h, p, err := r.Next()
	if err == io.EOF {
		return h, 0, ErrNoErrorFrame
	}
	if err != nil {
		return h, 0, fmt.Errorf("waiting for the error frame: %w", err)
	}
	if h.Type != wire.TypeError {
		return h, 0, fmt.Errorf("got %v, want an error frame", h)
	}
	e, err := wire.ParseErrorVersion(h.Version, p, wire.MaxHeaderBlock)
	if err != nil {
		return h, 0, fmt.Errorf("error frame payload: %w", err)
	}
	if err := r.ReadEOF(); err != nil {
		return h, e.Code, err
	}
	return h, e.Code, nil
}

// ReadEOF reads until the server closes the connection; any frame but a
// ping, and any error but io.EOF, is an error.
func (r *Conn) ReadEOF() error {
	h, _, err := r.Next()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("reading to the close: got %w, want EOF", err)
	}
	return fmt.Errorf("reading to the close: got frame %v, want EOF", h)
}

// ExpectEOF reads until the server closes the connection and fails the
// test if it sends anything but pings first or the read fails otherwise.
func (r *Conn) ExpectEOF() {
	t := r.test()
	t.Helper()
	if err := r.ReadEOF(); err != nil {
		t.Fatal(err)
	}
}

// Poll sends a Receive with ID id.
func (r *Conn) Poll(id uuid.UUID) {
	r.test().Helper()
	h := r.Header(wire.TypeStart, wire.FlagReceive, id)
	h.Final = true
	r.WriteFrame(h, nil)
}

// Ping returns once the server has handled every frame r sent before it:
// the server reads a connection's frames in order, so its answer to a ping
// comes after it has dealt with them. It returns the headers of every frame
// that arrived before the answer, pings included; the connection ending
// first is an error.
func (r *Conn) Ping() ([]wire.Header, error) {
	id := uuid.New()
	h := r.Header(wire.TypeStart, wire.FlagPing, id)
	h.Final = true
	if err := r.Send(h, nil); err != nil {
		return nil, err
	}
	var before []wire.Header
	for {
		h, _, err := r.ReadFrame()
		if err != nil {
			return before, fmt.Errorf("waiting for the pong: %w", err)
		}
		if h.Flags == wire.FlagPing && h.Type == wire.TypeEnd && h.RequestID == id {
			return before, nil
		}
		before = append(before, h)
	}
}

// Sync is Ping for the test's goroutine: it fails the test on an error,
// and returns the headers of the frames other than pings that arrived
// before the answer.
func (r *Conn) Sync() []wire.Header {
	t := r.test()
	t.Helper()
	all, err := r.Ping()
	if err != nil {
		t.Fatal(err)
	}
	var before []wire.Header
	for _, h := range all {
		if h.Flags != wire.FlagPing {
			before = append(before, h)
		}
	}
	return before
}

// Request is a request as a raw receiver saw it.
type Request struct {
	ID, From uuid.UUID
	PollID   uuid.UUID // the Receive it answered
	Body     []byte
}

// ReceiveRequest reads one delivered request, start to end, skipping
// pings. Any other frame, or a frame of the request out of sequence, is an
// error.
func (r *Conn) ReceiveRequest() (Request, error) {
	h, p, err := r.Next()
	if err != nil {
		return Request{}, err
	}
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || len(p) != 16 {
		return Request{}, fmt.Errorf("got %v with %d bytes, want a delivered request's start frame with the 16-byte receive ID", h, len(p))
	}
	req := Request{ID: h.RequestID, From: h.ClientID, PollID: uuid.UUID(p)}
	for seq := uint32(1); ; seq++ {
		h, p, err := r.Next()
		if err != nil {
			return req, err
		}
		if h.RequestID != req.ID || h.Flags != wire.FlagReceive || h.Sequence != seq ||
			h.Type != wire.TypeChunk && h.Type != wire.TypeEnd {
			return req, fmt.Errorf("got %v, want frame %d of request %x's body", h, seq, req.ID[:4])
		}
		if h.Type == wire.TypeEnd {
			return req, nil
		}
		req.Body = append(req.Body, p...)
	}
}

// Receive reads one delivered request, start to end, and fails the test
// on anything else.
func (r *Conn) Receive() Request {
	t := r.test()
	t.Helper()
	req, err := r.ReceiveRequest()
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// Respond answers request id with body in one chunk, one write per frame.
func (r *Conn) Respond(id uuid.UUID, body []byte) {
	r.test().Helper()
	r.WriteFrame(r.Header(wire.TypeStart, wire.FlagResponse, id), nil)
	chunk := r.Header(wire.TypeChunk, wire.FlagResponse, id)
	chunk.Sequence = 1
	r.WriteFrame(chunk, body)
	end := r.Header(wire.TypeEnd, wire.FlagResponse, id)
	end.Sequence, end.Final = 2, true
	r.WriteFrame(end, nil)
}

// Stream encodes a whole request or response stream whose start header is
// start: start, one chunk with body, the final end. The headers may name
// any client and channel, for tests of forged frames.
func Stream(start wire.Header, body []byte) []byte {
	h := start
	h.Type, h.Sequence, h.Final, h.Length = wire.TypeStart, 0, false, 0
	b := wire.AppendHeader(nil, &h)
	h.Type, h.Sequence, h.Length = wire.TypeChunk, 1, uint32(len(body))
	b = append(wire.AppendHeader(b, &h), body...)
	h.Type, h.Sequence, h.Final, h.Length = wire.TypeEnd, 2, true, 0
	return wire.AppendHeader(b, &h)
}
