package socketbus_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
)

// rawConn speaks the wire protocol by hand, frame by frame, to test what
// the server does with input no Client would send.
type rawConn struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	id      socketbus.ID
	channel socketbus.ID
}

// dialRaw opens a TCP connection to addr without joining. Every read and
// write on it fails after 30 s rather than hang the test.
func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc), id: uuid.New()}
}

// joinRaw dials addr and joins channel with a hand-made join frame.
func joinRaw(t testing.TB, addr string, channel socketbus.ID) *rawConn {
	t.Helper()
	r := dialRaw(t, addr)
	r.channel = channel
	join := r.header(wire.TypeStart, wire.FlagJoin, uuid.New())
	join.Final = true
	r.write(join, nil)
	h, _ := r.read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin || h.RequestID != join.RequestID {
		t.Fatalf("join answer: got %v, want a join acknowledgement for %x", h, join.RequestID[:4])
	}
	return r
}

// header returns a header from r for request id.
func (r *rawConn) header(typ wire.FrameType, flags wire.Flags, id socketbus.ID) wire.Header {
	return wire.Header{Version: wire.Version, Type: typ, Flags: flags, RequestID: id, ClientID: r.id, ChannelID: r.channel}
}

// write sends h and payload. h.Length is sent as it is, so a test can lie.
func (r *rawConn) write(h wire.Header, payload []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(append(wire.AppendHeader(nil, &h), payload...)); err != nil {
		r.t.Fatalf("raw write of %v: %v", h, err)
	}
}

// writeFrame sends h with payload, setting h.Length to match.
func (r *rawConn) writeFrame(h wire.Header, payload []byte) {
	r.t.Helper()
	h.Length = uint32(len(payload))
	r.write(h, payload)
}

// readFrame reads one frame.
func (r *rawConn) readFrame() (wire.Header, []byte, error) { return readWireFrame(r.br) }

// readWireFrame reads one frame from a raw connection's reader.
func readWireFrame(r io.Reader) (wire.Header, []byte, error) {
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

// read reads one frame, skipping keepalive pings, and fails the test on
// any error.
func (r *rawConn) read() (wire.Header, []byte) {
	r.t.Helper()
	for {
		h, p, err := r.readFrame()
		if err != nil {
			r.t.Fatalf("raw read: %v", err)
		}
		if h.Flags == wire.FlagPing {
			continue
		}
		return h, p
	}
}

// readError reads frames until an error frame and returns its payload.
func (r *rawConn) readError() (wire.Header, *wire.Error) {
	r.t.Helper()
	for {
		h, p := r.read()
		if h.Type != wire.TypeError {
			continue
		}
		e, err := wire.ParseError(p)
		if err != nil {
			r.t.Fatalf("error frame payload: %v", err)
		}
		return h, e
	}
}

// expectEOF reads until the server closes the connection and fails the
// test if it sends anything but pings first or the read fails otherwise.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	for {
		h, _, err := r.readFrame()
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

// poll sends a Receive with ID id.
func (r *rawConn) poll(id socketbus.ID) {
	h := r.header(wire.TypeStart, wire.FlagReceive, id)
	h.Final = true
	r.writeFrame(h, nil)
}

// sync returns once the server has handled every frame r sent before it:
// the server reads a connection's frames in order, so its answer to a ping
// comes after it has dealt with them. It returns the headers of the frames
// that arrived before the answer.
func (r *rawConn) sync() []wire.Header {
	r.t.Helper()
	id := uuid.New()
	h := r.header(wire.TypeStart, wire.FlagPing, id)
	h.Final = true
	r.writeFrame(h, nil)
	var before []wire.Header
	for {
		h, _, err := r.readFrame()
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

// rawRequest is a request as a raw receiver saw it.
type rawRequest struct {
	id, from socketbus.ID
	pollID   socketbus.ID
	body     []byte
}

// receive reads one delivered request, start to end.
func (r *rawConn) receive() rawRequest {
	r.t.Helper()
	h, p := r.read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || len(p) != 16 {
		r.t.Fatalf("got %v with %d bytes, want a delivered request's start frame with the 16-byte receive ID", h, len(p))
	}
	req := rawRequest{id: h.RequestID, from: h.ClientID, pollID: socketbus.ID(p)}
	for seq := uint32(1); ; seq++ {
		h, p := r.read()
		if h.RequestID != req.id || h.Flags != wire.FlagReceive || h.Sequence != seq {
			r.t.Fatalf("got %v, want frame %d of request %x's body", h, seq, req.id[:4])
		}
		if h.Type == wire.TypeEnd {
			return req
		}
		req.body = append(req.body, p...)
	}
}

// respond answers request id with body in one chunk.
func (r *rawConn) respond(id socketbus.ID, body []byte) {
	r.t.Helper()
	r.writeFrame(r.header(wire.TypeStart, wire.FlagResponse, id), nil)
	chunk := r.header(wire.TypeChunk, wire.FlagResponse, id)
	chunk.Sequence = 1
	r.writeFrame(chunk, body)
	end := r.header(wire.TypeEnd, wire.FlagResponse, id)
	end.Sequence, end.Final = 2, true
	r.writeFrame(end, nil)
}

// backgroundPair keeps two Clients doing round trips on their own channel
// until stop is called. stop waits for at least one round trip to have
// completed, then reports how many did and the first error.
func backgroundPair(t *testing.T, addr string) (stop func() (int, error)) {
	ch := socketbus.ChannelFromName("background-" + t.Name())
	a := dial(t, addr, ch)
	b := dial(t, addr, ch)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	done := 0
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	firstDone := make(chan struct{}) // closed after the first round trip
	senderExited := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			req, err := b.Receive(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("Receive: %w", err))
				}
				return
			}
			// Once stop has cancelled the sender, the request in
			// flight may fail here: that is no error of the pair's.
			body, err := io.ReadAll(req.Body)
			if err == nil {
				err = req.Respond(bytes.NewReader(upper(body)))
			}
			if err != nil {
				if ctx.Err() == nil {
					fail(fmt.Errorf("receiver: %w", err))
				}
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer close(senderExited)
		for i := 0; ctx.Err() == nil; i++ {
			want := fmt.Sprintf("round trip %d", i)
			got, err := roundTrip(ctx, a, []byte(want))
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				fail(fmt.Errorf("Send %d: %w", i, err))
				return
			}
			if string(got) != string(upper([]byte(want))) {
				fail(fmt.Errorf("round trip %d: got %q, want %q", i, got, upper([]byte(want))))
				return
			}
			mu.Lock()
			done++
			mu.Unlock()
			if i == 0 {
				close(firstDone)
			}
		}
	}()
	return func() (int, error) {
		select {
		case <-firstDone:
		case <-senderExited:
		case <-time.After(10 * time.Second):
		}
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return done, firstErr
	}
}

func TestRawFrames(t *testing.T) {
	_, addr := startServer(t, socketbus.ServerConfig{})
	stop := backgroundPair(t, addr)
	channel := socketbus.ChannelFromName("raw")
	peer := dial(t, addr, channel) // a peer on the channel, so requests are not refused for lack of one

	tests := []struct {
		name string
		code wire.Code
		send func(r *rawConn)
	}{
		{"spoofed client ID", wire.CodeProtocol, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagRequest, uuid.New())
			h.ClientID = peer.ID()
			r.writeFrame(h, nil)
		}},
		{"another channel", wire.CodeProtocol, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagRequest, uuid.New())
			h.ChannelID = socketbus.ChannelFromName("background-" + t.Name())
			r.writeFrame(h, nil)
		}},
		{"bad version", wire.CodeBadVersion, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagRequest, uuid.New())
			h.Version = 2
			r.writeFrame(h, nil)
		}},
		{"payload length over MaxFramePayload", wire.CodeTooLarge, func(r *rawConn) {
			h := r.header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			h.Length = wire.MaxFramePayload + 1
			r.write(h, nil) // the header alone: the server must not wait for the payload
		}},
		{"payload length 2^32-1", wire.CodeTooLarge, func(r *rawConn) {
			h := r.header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			h.Length = 1<<32 - 1
			r.write(h, nil)
		}},
		{"response for a request not held", wire.CodeProtocol, func(r *rawConn) {
			r.writeFrame(r.header(wire.TypeStart, wire.FlagResponse, uuid.New()), nil)
		}},
		{"chunk of a request never started", wire.CodeProtocol, func(r *rawConn) {
			h := r.header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			r.writeFrame(h, []byte("orphan"))
		}},
		{"unknown flag", wire.CodeProtocol, func(r *rawConn) {
			r.writeFrame(r.header(wire.TypeStart, wire.FlagRequest|0x0100, uuid.New()), nil)
		}},
		{"unknown type", wire.CodeProtocol, func(r *rawConn) {
			r.writeFrame(r.header(7, wire.FlagRequest, uuid.New()), nil)
		}},
		{"end without final bit", wire.CodeProtocol, func(r *rawConn) {
			h := r.header(wire.TypeEnd, wire.FlagRequest, uuid.New())
			h.Sequence = 2
			r.writeFrame(h, nil)
		}},
		{"second join", wire.CodeProtocol, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.Final = true
			r.writeFrame(h, nil)
		}},
		{"sequence gap", wire.CodeProtocol, func(r *rawConn) {
			id := uuid.New()
			r.writeFrame(r.header(wire.TypeStart, wire.FlagRequest, id), nil)
			h := r.header(wire.TypeChunk, wire.FlagRequest, id)
			h.Sequence = 2
			r.writeFrame(h, []byte("skipped one"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := joinRaw(t, addr, channel)
			tc.send(r)
			h, e := r.readError()
			if e.Code != tc.code {
				t.Fatalf("error frame code: got %v (%q), want %v", e.Code, e.Message, tc.code)
			}
			if e.Message == "" {
				t.Fatalf("error frame message: got none, want an explanation")
			}
			if h.Flags != 0 {
				t.Errorf("error frame flags: got %v, want none (a connection-level error)", h.Flags)
			}
			r.expectEOF()
		})
	}

	// Before the join.
	preJoin := []struct {
		name string
		code wire.Code
		send func(r *rawConn)
	}{
		{"first frame not a join", wire.CodeProtocol, func(r *rawConn) {
			r.writeFrame(r.header(wire.TypeStart, wire.FlagRequest, uuid.New()), nil)
		}},
		{"join with bad version", wire.CodeBadVersion, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.Version, h.Final = 9, true
			r.writeFrame(h, nil)
		}},
		{"join with length over MaxFramePayload", wire.CodeTooLarge, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.Final, h.Length = true, wire.MaxFramePayload+1
			r.write(h, nil)
		}},
		{"join with the nil client ID", wire.CodeProtocol, func(r *rawConn) {
			h := r.header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.ClientID, h.Final = socketbus.ID{}, true
			r.writeFrame(h, nil)
		}},
	}
	for _, tc := range preJoin {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, addr)
			r.channel = channel
			tc.send(r)
			_, e := r.readError()
			if e.Code != tc.code {
				t.Fatalf("error frame code: got %v (%q), want %v", e.Code, e.Message, tc.code)
			}
			r.expectEOF()
		})
	}

	n, err := stop()
	if err != nil {
		t.Fatalf("background pair: %v", err)
	}
	if n == 0 {
		t.Fatalf("background pair completed %d round trips, want > 0", n)
	}
	// The channel the raw connections were on still works.
	other := dial(t, addr, channel)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- serveN(ctx, peer, 1, upper) }()
	got, err := roundTrip(ctx, other, []byte("still here"))
	if err != nil || string(got) != "STILL HERE" {
		t.Fatalf("round trip after the raw tests: got %q, %v; want %q, nil", got, err, "STILL HERE")
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver: %v", err)
	}
}

// TestRawRequestBodyAborted checks on the wire what a receiver sees when the
// sender's body reader fails inside the first chunk: the chunk, then an
// aborted error frame, and never an end frame.
func TestRawRequestBodyAborted(t *testing.T) {
	_, addr := startServer(t, socketbus.ServerConfig{})
	channel := socketbus.ChannelFromName("raw-abort")
	a := dial(t, addr, channel)
	r := joinRaw(t, addr, channel)
	r.poll(uuid.New())
	if early := r.sync(); len(early) != 0 { // the poll is registered before the request arrives
		t.Fatalf("frames before any request: got %v, want none", early)
	}

	errBoom := errors.New("boom")
	body := io.MultiReader(bytes.NewReader(make([]byte, 1000)), &failingReader{err: errBoom})
	err := a.Send(context.Background(), body, nil)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Send: got %v, want an error wrapping the reader's", err)
	}

	h, p := r.read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive {
		t.Fatalf("got %v, want the delivered request's start", h)
	}
	id := h.RequestID
	var got int
	for {
		h, p = r.read()
		if h.RequestID != id {
			t.Fatalf("got %v, want a frame of request %x", h, id[:4])
		}
		if h.Type == wire.TypeEnd {
			t.Fatalf("got an end frame after %d bytes: a truncated body must never end cleanly", got)
		}
		if h.Type == wire.TypeError {
			break
		}
		got += len(p)
	}
	e, err := wire.ParseError(p)
	if err != nil {
		t.Fatalf("error payload: %v", err)
	}
	if e.Code != wire.CodeAborted || h.Flags != wire.FlagReceive {
		t.Fatalf("error frame: got %v %v, want receive aborted", h.Flags, e)
	}
	if got != 1000 {
		t.Fatalf("body bytes before the error: got %d, want 1000", got)
	}
}

// failingReader returns err on every Read.
type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }
