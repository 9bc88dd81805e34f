// Package testpeer is the one raw-protocol peer the tests share: it speaks
// the wire protocol frame by frame over a real connection, to test what a
// server does with input no Client would send. Only tests import it.
package testpeer

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

// Conn is a raw connection to a server. Its methods fail the test on an
// unexpected error, except ReadFrame, which returns it.
type Conn struct {
	t  testing.TB
	NC net.Conn      // the connection, for tests that close or stall it
	br *bufio.Reader // reads NC

	ID      uuid.UUID // the client ID the headers carry
	Channel uuid.UUID // the channel the headers carry, once joined
}

// ioTimeout bounds every read and write, so that a broken test fails
// instead of hanging.
const ioTimeout = 30 * time.Second

// Dial opens a TCP connection to addr without joining. Every read and
// write on it fails after 30 s rather than hang the test; the test's
// cleanup closes it.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	nc.SetDeadline(time.Now().Add(ioTimeout))
	t.Cleanup(func() { nc.Close() })
	return &Conn{t: t, NC: nc, br: bufio.NewReader(nc), ID: uuid.New()}
}

// Join dials addr and joins channel with a hand-made join frame.
func Join(t testing.TB, addr string, channel uuid.UUID) *Conn {
	t.Helper()
	r := Dial(t, addr)
	r.Channel = channel
	join := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
	join.Final = true
	r.Write(join, nil)
	h, _ := r.Read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin || h.RequestID != join.RequestID {
		t.Fatalf("join answer: got %v, want a join acknowledgement for %x", h, join.RequestID[:4])
	}
	return r
}

// Header returns a version-1 header from r for request id.
func (r *Conn) Header(typ wire.FrameType, flags wire.Flags, id uuid.UUID) wire.Header {
	return wire.Header{Version: wire.Version, Type: typ, Flags: flags, RequestID: id, ClientID: r.ID, ChannelID: r.Channel}
}

// Write sends h and payload. h.Length is sent as it is, so a test can lie.
func (r *Conn) Write(h wire.Header, payload []byte) {
	r.t.Helper()
	if _, err := r.NC.Write(append(wire.AppendHeader(nil, &h), payload...)); err != nil {
		r.t.Fatalf("raw write of %v: %v", h, err)
	}
}

// WriteFrame sends h with payload, setting h.Length to match.
func (r *Conn) WriteFrame(h wire.Header, payload []byte) {
	r.t.Helper()
	h.Length = uint32(len(payload))
	r.Write(h, payload)
}

// ReadFrame reads one frame.
func (r *Conn) ReadFrame() (wire.Header, []byte, error) { return ReadFrame(r.br) }

// ReadFrame reads one frame from a raw connection's reader.
func ReadFrame(r io.Reader) (wire.Header, []byte, error) {
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return wire.Header{}, nil, err
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil {
		return h, nil, fmt.Errorf("the server sent a bad header: %w", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		return h, nil, err
	}
	return h, p, nil
}

// Read reads one frame, skipping keepalive pings.
func (r *Conn) Read() (wire.Header, []byte) {
	r.t.Helper()
	for {
		h, p, err := r.ReadFrame()
		if err != nil {
			r.t.Fatalf("raw read: %v", err)
		}
		if h.Flags == wire.FlagPing {
			continue
		}
		return h, p
	}
}

// ReadError reads frames until an error frame and returns its payload.
func (r *Conn) ReadError() (wire.Header, *wire.Error) {
	r.t.Helper()
	for {
		h, p := r.Read()
		if h.Type != wire.TypeError {
			continue
		}
		e, err := wire.ParseErrorVersion(h.Version, p, wire.MaxHeaderBlock)
		if err != nil {
			r.t.Fatalf("error frame payload: %v", err)
		}
		return h, e
	}
}

// ExpectEOF reads until the server closes the connection and fails the
// test if it sends anything but pings first or the read fails otherwise.
func (r *Conn) ExpectEOF() {
	r.t.Helper()
	for {
		h, _, err := r.ReadFrame()
		if err == io.EOF {
			return
		}
		if err != nil {
			r.t.Fatalf("read after the error frame: got %v, want EOF", err)
		}
		if h.Flags != wire.FlagPing {
			r.t.Fatalf("read after the error frame: got frame %v, want EOF", h)
		}
	}
}

// Poll sends a Receive with ID id.
func (r *Conn) Poll(id uuid.UUID) {
	h := r.Header(wire.TypeStart, wire.FlagReceive, id)
	h.Final = true
	r.WriteFrame(h, nil)
}

// Sync returns once the server has handled every frame r sent before it:
// the server reads a connection's frames in order, so its answer to a ping
// comes after it has dealt with them. It returns the headers of the frames
// that arrived before the answer.
func (r *Conn) Sync() []wire.Header {
	r.t.Helper()
	id := uuid.New()
	h := r.Header(wire.TypeStart, wire.FlagPing, id)
	h.Final = true
	r.WriteFrame(h, nil)
	var before []wire.Header
	for {
		h, _, err := r.ReadFrame()
		if err != nil {
			r.t.Fatalf("waiting for the pong: %v", err)
		}
		if h.Flags == wire.FlagPing && h.Type == wire.TypeEnd && h.RequestID == id {
			return before
		}
		if h.Flags != wire.FlagPing {
			before = append(before, h)
		}
	}
}

// Request is a request as a raw receiver saw it.
type Request struct {
	ID, From uuid.UUID
	PollID   uuid.UUID // the Receive it answered
	Body     []byte
}

// Receive reads one delivered request, start to end.
func (r *Conn) Receive() Request {
	r.t.Helper()
	h, p := r.Read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || len(p) != 16 {
		r.t.Fatalf("got %v with %d bytes, want a delivered request's start frame with the 16-byte receive ID", h, len(p))
	}
	req := Request{ID: h.RequestID, From: h.ClientID, PollID: uuid.UUID(p)}
	for seq := uint32(1); ; seq++ {
		h, p := r.Read()
		if h.RequestID != req.ID || h.Flags != wire.FlagReceive || h.Sequence != seq {
			r.t.Fatalf("got %v, want frame %d of request %x's body", h, seq, req.ID[:4])
		}
		if h.Type == wire.TypeEnd {
			return req
		}
		req.Body = append(req.Body, p...)
	}
}

// Respond answers request id with body in one chunk.
func (r *Conn) Respond(id uuid.UUID, body []byte) {
	r.t.Helper()
	r.WriteFrame(r.Header(wire.TypeStart, wire.FlagResponse, id), nil)
	chunk := r.Header(wire.TypeChunk, wire.FlagResponse, id)
	chunk.Sequence = 1
	r.WriteFrame(chunk, body)
	end := r.Header(wire.TypeEnd, wire.FlagResponse, id)
	end.Sequence, end.Final = 2, true
	r.WriteFrame(end, nil)
}
