package socketbus

import (
	"bufio"
	"io"
	"net"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestInStreamOpensTheAnnouncedWindow: a body read on a connection whose
// server announced a stream window larger than the implicit 256 KiB is
// granted the difference with its first grant, once a piece is consumed;
// on a connection with the implicit window, the first grant waits for
// half of it to be consumed, as before the window was announced.
func TestInStreamOpensTheAnnouncedWindow(t *testing.T) {
	const piece = 64 << 10
	for _, c := range []struct {
		window int
		want   []uint32 // the grants, one per piece consumed (0: none)
	}{
		{1 << 20, []uint32{1<<20 - wire.StreamWindow + piece, 0, 0, 0, 0, 0, 0, 0, 8 * piece}},
		{wire.StreamWindow, []uint32{0, 2 * piece, 0, 2 * piece}},
	} {
		near, far := net.Pipe()
		cl := &Client{id: uuid.New(), channel: uuid.New()}
		cl.opts.version = wire.Version
		cc := &clientConn{conn: frameconn.New(near, frameconn.Config{Version: wire.Version}), window: c.window}
		cc.conn.Start(func(f frame.Frame) error { f.Release(); return nil })
		grants := make(chan uint32, 16)
		go readCredits(far, grants)

		id := uuid.New()
		s := newInStream(cl, wire.FlagResponse, id)
		s.setConn(cc, true)
		for i, want := range c.want {
			f := frame.Frame{Header: cl.header(wire.TypeChunk, wire.FlagResponse, id), Payload: frame.GetBuffer(piece), Pooled: true}
			f.Header.Sequence = uint32(i + 1)
			if err := s.push(f); err != nil {
				t.Fatalf("window %d: push %d: %v", c.window, i+1, err)
			}
			p, err := s.next(t.Context())
			if err != nil || len(p) != piece {
				t.Fatalf("window %d: next: %d bytes, %v", c.window, len(p), err)
			}
			s.consume(len(p))
			// A ping after whatever the consume granted: frames go out in order.
			if err := cc.conn.Enqueue(frame.Frame{Header: cl.header(wire.TypeStart, wire.FlagPing, uuid.New())}); err != nil {
				t.Fatalf("window %d: the marker: %v", c.window, err)
			}
			got := <-grants
			if got != marker {
				if m := <-grants; m != marker {
					t.Fatalf("window %d: after piece %d, two grants: %d and %d", c.window, i+1, got, m)
				}
			} else {
				got = 0
			}
			if got != want {
				t.Fatalf("window %d: after piece %d, granted %d; want %d", c.window, i+1, got, want)
			}
		}
		s.abandon(errAttemptOver)
		cc.conn.Close(nil)
		cc.conn.Wait()
		far.Close()
	}
}

// marker stands for a ping in readCredits' results.
const marker = ^uint32(0)

// readCredits reads frames from the far end of a pipe and sends, for each
// credit frame, its increment, and for each ping, marker.
func readCredits(nc net.Conn, grants chan<- uint32) {
	br := bufio.NewReader(nc)
	for {
		var hdr [wire.HeaderSize]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			close(grants)
			return
		}
		h, _, _ := wire.ParseHeader(hdr[:])
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(br, p); err != nil {
			close(grants)
			return
		}
		switch {
		case h.Flags.Has(wire.FlagCredit):
			n, _ := wire.ParseCredit(p)
			grants <- n
		case h.Flags == wire.FlagPing:
			grants <- marker
		}
	}
}
