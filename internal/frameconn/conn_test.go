package frameconn_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frame/frametest"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

func TestMain(m *testing.M) { frametest.Main(m) }

// pair returns the two ends of a loopback TCP connection.
var pair = frameconn.Pair

func chunk(seq uint32, payload []byte) frame.Frame {
	p := frame.GetBuffer(len(payload))
	copy(p, payload)
	return frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagRequest, Sequence: seq},
		Payload: p, Pooled: true}
}

// readFrame reads one raw frame from r.
func readFrame(t *testing.T, r io.Reader) (wire.Header, []byte) {
	t.Helper()
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("reading a header: %v", err)
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil {
		t.Fatalf("parsing a header: %v", err)
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("reading a payload: %v", err)
	}
	return h, p
}

// TestFramesArriveInOrder: frames queued from one goroutine arrive in order
// and intact, small ones copied and large ones written in place, over real
// TCP, and the peer's reader hands them to the handler in order.
func TestFramesArriveInOrder(t *testing.T) {
	a, b := pair(t)
	sender := frameconn.New(a, frameconn.Config{})
	sender.Start(func(f frame.Frame) error { f.Release(); return nil })
	got := make(chan frame.Frame, 1000)
	receiver := frameconn.New(b, frameconn.Config{})
	receiver.Start(func(f frame.Frame) error { got <- f; return nil })

	sizes := []int{0, 1, 100, 4095, 4096, 20000, wire.MaxFramePayload}
	var want [][]byte
	for i := range 300 {
		n := sizes[i%len(sizes)]
		p := bytes.Repeat([]byte{byte(i)}, n)
		want = append(want, p)
		if err := sender.Enqueue(chunk(uint32(i), p)); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	for i, w := range want {
		f := <-got
		if f.Header.Sequence != uint32(i) || !bytes.Equal(f.Payload, w) {
			t.Fatalf("frame %d: got seq %d with %d bytes, want seq %d with %d bytes", i, f.Header.Sequence, len(f.Payload), i, len(w))
		}
		f.Release()
	}
	sender.Close(nil)
	receiver.Close(nil)
	sender.Wait()
	receiver.Wait()
}

// TestCloseAfterFlushWritesTheLastFrame: everything queued, and the last
// frame, reach the peer before the close.
func TestCloseAfterFlushWritesTheLastFrame(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{})
	c.Start(func(f frame.Frame) error { f.Release(); return nil })
	for i := range 10 {
		c.Enqueue(chunk(uint32(i), []byte("x")))
	}
	errBye := errors.New("bye")
	c.CloseAfterFlush(frame.ErrorFrame(wire.Header{}, wire.CodeServerClosed, "closing"), errBye)
	for i := range 10 {
		if h, _ := readFrame(t, b); h.Sequence != uint32(i) {
			t.Fatalf("got frame %d, want %d", h.Sequence, i)
		}
	}
	h, p := readFrame(t, b)
	e, err := wire.ParseError(p)
	if h.Type != wire.TypeError || err != nil || e.Code != wire.CodeServerClosed {
		t.Fatalf("last frame: %v %v %v, want a server_closed error frame", h, e, err)
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
	c.Wait()
	if !errors.Is(c.Err(), errBye) {
		t.Fatalf("Err = %v, want %v", c.Err(), errBye)
	}
	if err := c.Enqueue(chunk(0, nil)); !errors.Is(err, frameconn.ErrClosed) {
		t.Fatalf("Enqueue after close = %v, want ErrClosed", err)
	}
}

// TestBadHeaderGetsAnErrorFrame: a malformed header is answered with a
// connection-level error frame carrying its code, then the close.
func TestBadHeaderGetsAnErrorFrame(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{})
	handled := 0
	c.Start(func(f frame.Frame) error { f.Release(); handled++; return nil })
	h := wire.Header{Version: 9, Type: wire.TypeChunk, Flags: wire.FlagRequest}
	b.Write(wire.AppendHeader(nil, &h))
	got, p := readFrame(t, b)
	e, err := wire.ParseError(p)
	if got.Type != wire.TypeError || got.Flags != 0 || err != nil || e.Code != wire.CodeBadVersion {
		t.Fatalf("got %v (%v, %v), want a connection-level bad_version error frame", got, e, err)
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the error frame: %v, want EOF", err)
	}
	c.Wait()
	if handled != 0 {
		t.Fatalf("handler saw %d frames, want 0", handled)
	}
}

// TestFrameDeadline: a peer that sends part of a header and stalls is cut
// off once FrameDeadline passes, with an idle error frame.
func TestFrameDeadline(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{FrameDeadline: 100 * time.Millisecond})
	c.Start(func(f frame.Frame) error { f.Release(); return nil })
	b.Write(make([]byte, 40))
	h, p := readFrame(t, b)
	e, err := wire.ParseError(p)
	if h.Type != wire.TypeError || err != nil || e.Code != wire.CodeIdle {
		t.Fatalf("got %v (%v, %v), want an idle error frame", h, e, err)
	}
	c.Wait()
}

// TestKeepaliveClosesASilentPeer: a peer that never answers pings is closed
// with ErrIdle; the pings themselves reach it.
func TestKeepaliveClosesASilentPeer(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{PingInterval: 50 * time.Millisecond})
	c.Start(func(f frame.Frame) error { f.Release(); return nil })
	pings := 0
	for {
		var hdr [wire.HeaderSize]byte
		if _, err := io.ReadFull(b, hdr[:]); err != nil {
			break // closed
		}
		if h, _, err := wire.ParseHeader(hdr[:]); err == nil && h.Flags == wire.FlagPing && h.Type == wire.TypeStart {
			pings++
		}
	}
	c.Wait()
	if pings != 2 || !errors.Is(c.Err(), frameconn.ErrIdle) {
		t.Fatalf("got %d pings and Err %v, want 2 pings and ErrIdle", pings, c.Err())
	}
}

// TestDrainWritesWhatIsQueued: Drain closes once the queue is written.
func TestDrainWritesWhatIsQueued(t *testing.T) {
	a, b := pair(t)
	c := frameconn.New(a, frameconn.Config{})
	c.Start(func(f frame.Frame) error { f.Release(); return nil })
	c.Enqueue(chunk(7, []byte("last words")))
	c.Drain(frameconn.ErrClosed, time.Minute)
	if h, p := readFrame(t, b); h.Sequence != 7 || string(p) != "last words" {
		t.Fatalf("got seq %d %q, want 7 %q", h.Sequence, p, "last words")
	}
	if _, err := b.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("after the queue: %v, want EOF", err)
	}
	c.Wait()
}
