// Package testpeer is the one raw-protocol peer the tests share: it speaks
// the wire protocol frame by frame over a real connection, to test what a
// server does with input no Client would send. Only tests import it.
//
// peer.go has the connection (Conn: dial, join, write, read) and talk.go
// the exchanges built on it (ping, refusal, receive, respond); watch.go
// wakes a test on a server's events (internal/testhook) so that it never
// polls Stats. The other files are helpers for tests that use Clients:
// servers and clients (bus.go, pair.go, websocket.go, cert.go), log
// capture, run counters, pattern bodies and a stalled receiver.
package testpeer

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/internal/wsconn"
)

// Conn is a raw connection to a server. Two kinds of method share it: the
// error-returning ones (Open, JoinChannel, Put, Flush, Send, ReadFrame,
// Next, Ping, Refusal, ReadEOF, ReceiveRequest), which any goroutine may
// call, and the ones that fail the test on an unexpected error (Dial, Join,
// Write, WriteFrame, Read, Sync, ReadError, ExpectEOF, Poll, Receive,
// Respond), which need a Conn from Dial or Join and the test's goroutine.
// One goroutine at a time may write, and one read.
type Conn struct {
	t   testing.TB    // the test to fail; nil for a Conn from Open
	NC  net.Conn      // the connection, for tests that close or stall it
	br  *bufio.Reader // reads NC
	out []byte        // frames Put and Flush has not written yet

	ID      uuid.UUID // the client ID the headers carry
	Channel uuid.UUID // the channel the headers carry, once joined
	Version uint8     // the protocol version the headers carry: wire.Version unless a test sets it
	// Settings is the payload of the join's acknowledgement, once
	// joined (docs/PROTOCOL.md section 7).
	Settings []byte
}

// ioTimeout bounds every read and write, so that a broken test fails
// instead of hanging.
const ioTimeout = 30 * time.Second

// Options say how Open dials. The zero value dials TCP with a 30 s
// deadline.
type Options struct {
	// Deadline bounds the dial and every read and write on the
	// connection; zero means 30 s from now.
	Deadline time.Time
	// Dialer opens the connection; nil means a net.Dialer with Deadline.
	// An address starting with "ws://" is reached over WebSocket through
	// it.
	Dialer *net.Dialer
	// ReaderSize is the size of the read buffer; zero means bufio's
	// default. Tests holding thousands of connections make it small.
	ReaderSize int
}

// Open opens a connection to addr without joining. It fails no test, so
// worker goroutines may use it; the caller closes the connection.
func Open(addr string, o Options) (*Conn, error) {
	if o.Deadline.IsZero() {
		o.Deadline = time.Now().Add(ioTimeout)
	}
	d := o.Dialer
	if d == nil {
		d = &net.Dialer{Deadline: o.Deadline}
	}
	var nc net.Conn
	var err error
	if strings.HasPrefix(addr, "ws://") {
		// Over WebSocket: the same frames, in binary messages.
		ctx, cancel := context.WithDeadline(context.Background(), o.Deadline)
		nc, err = wsconn.Dial(ctx, addr, wsconn.DialOptions{Dialer: d})
		cancel()
	} else {
		nc, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(o.Deadline)
	br := bufio.NewReader(nc)
	if o.ReaderSize > 0 {
		br = bufio.NewReaderSize(nc, o.ReaderSize)
	}
	return &Conn{NC: nc, br: br, ID: uuid.New(), Version: wire.Version}, nil
}

// Dial opens a TCP connection to addr without joining. Every read and
// write on it fails after 30 s rather than hang the test; the test's
// cleanup closes it.
func Dial(t testing.TB, addr string) *Conn {
	t.Helper()
	r, err := Open(addr, Options{})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	r.t = t
	t.Cleanup(func() { r.NC.Close() })
	return r
}

// Join dials addr and joins channel with a hand-made join frame.
func Join(t testing.TB, addr string, channel uuid.UUID) *Conn {
	t.Helper()
	r := Dial(t, addr)
	if err := r.JoinChannel(channel, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// JoinChannel sends a join frame for channel with token as its payload and
// reads the answer: nil for the join's acknowledgement in r.Version, an
// error wrapping the *wire.Error for a refusal. It sets r.Channel.
func (r *Conn) JoinChannel(channel uuid.UUID, token []byte) error {
	r.Channel = channel
	join := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
	join.Final = true
	if err := r.Send(join, token); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	h, p, err := r.ReadFrame()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if h.Type == wire.TypeError {
		if e, perr := wire.ParseErrorVersion(h.Version, p, wire.MaxHeaderBlock); perr == nil {
			return fmt.Errorf("join refused: %w", e)
		}
	}
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin || h.RequestID != join.RequestID || h.Version != r.Version {
		return fmt.Errorf("join answer: got %v, want a version %d join acknowledgement for %x", h, r.Version, join.RequestID[:4])
	}
	r.Settings = p
	return nil
}

// Header returns a header from r for request id, in r.Version.
func (r *Conn) Header(typ wire.FrameType, flags wire.Flags, id uuid.UUID) wire.Header {
	return wire.Header{Version: r.Version, Type: typ, Flags: flags, RequestID: id, ClientID: r.ID, ChannelID: r.Channel}
}

// Put adds h and payload to the frames Flush writes, with h.Length set to
// len(payload) -- unless h.Length is over wire.MaxFramePayload: that lie
// is kept, for tests of a server refusing a frame from its header alone.
func (r *Conn) Put(h wire.Header, payload []byte) {
	if h.Length <= wire.MaxFramePayload {
		h.Length = uint32(len(payload))
	}
	r.out = append(wire.AppendHeader(r.out, &h), payload...)
}

// Pending returns how many bytes of frames Put has gathered that Flush has
// not written.
func (r *Conn) Pending() int { return len(r.out) }

// Flush writes the frames Put gathered, in one write.
func (r *Conn) Flush() error {
	if len(r.out) == 0 {
		return nil
	}
	_, err := r.NC.Write(r.out)
	r.out = r.out[:0]
	return err
}

// Send writes one frame at once: Put, then Flush.
func (r *Conn) Send(h wire.Header, payload []byte) error {
	r.Put(h, payload)
	return r.Flush()
}

// test returns the test a Conn from Dial or Join fails; the methods that
// fail a test cannot be used on a Conn from Open.
func (r *Conn) test() testing.TB {
	if r.t == nil {
		panic("testpeer: a method that fails the test, on a Conn from Open: use its error-returning form")
	}
	return r.t
}

// Write sends h and payload. h.Length is sent as it is, so a test can lie.
func (r *Conn) Write(h wire.Header, payload []byte) {
	t := r.test()
	t.Helper()
	if _, err := r.NC.Write(append(wire.AppendHeader(nil, &h), payload...)); err != nil {
		t.Fatalf("raw write of %v: %v", h, err)
	}
}

// WriteFrame sends h with payload, setting h.Length to match.
func (r *Conn) WriteFrame(h wire.Header, payload []byte) {
	r.test().Helper()
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

// Next reads one frame, skipping keepalive pings.
func (r *Conn) Next() (wire.Header, []byte, error) {
	for {
		h, p, err := r.ReadFrame()
		if err != nil || h.Flags != wire.FlagPing {
			return h, p, err
		}
	}
}

// Read reads one frame, skipping keepalive pings.
func (r *Conn) Read() (wire.Header, []byte) {
	t := r.test()
	t.Helper()
	h, p, err := r.Next()
	if err != nil {
		t.Fatalf("raw read: %v", err)
	}
	return h, p
}

// Close closes the connection.
func (r *Conn) Close() error { return r.NC.Close() }
