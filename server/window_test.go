package server_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestStreamWindowAnnounced: the join's acknowledgement carries the
// connection's stream window at offset 12: 1 MiB by default, the
// configured one, never under the protocol's implicit 256 KiB, and at
// most a 32nd of MaxMemory.
func TestStreamWindowAnnounced(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  server.Config
		want uint32
	}{
		{"default", server.Config{}, 1 << 20},
		{"configured", server.Config{StreamWindow: 512 << 10}, 512 << 10},
		{"under the implicit window", server.Config{StreamWindow: 4 << 10}, wire.StreamWindow},
		{"a small memory budget", server.Config{MaxMemory: 16 << 20}, 512 << 10},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, addr := testpeer.StartServer(t, c.cfg)
			p := testpeer.Join(t, addr, uuid.New())
			defer p.Close()
			if len(p.Settings) < 16 {
				t.Fatalf("join acknowledgement of %d bytes; want at least 16", len(p.Settings))
			}
			if got := binary.BigEndian.Uint32(p.Settings[12:]); got != c.want {
				t.Fatalf("announced stream window %d, want %d", got, c.want)
			}
		})
	}
}

// TestStreamWindowGrants: a receiver may hold the announced window of a
// request body, beyond the implicit 256 KiB, and the server relays that
// much once it is granted; a grant past the window is a protocol error.
// With a window of 256 KiB, the same grant is refused.
func TestStreamWindowGrants(t *testing.T) {
	const window = 1 << 20
	for _, announced := range []int{window, wire.StreamWindow} {
		_, addr := testpeer.StartServer(t, server.Config{StreamWindow: announced})
		channel := uuid.New()
		recv := testpeer.Join(t, addr, channel)
		recv.Poll(uuid.New())
		recv.Sync() // the poll is in before the request
		sender := testpeer.DialClient(t, addr, channel)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		body := bytes.Repeat([]byte("w"), 3<<20)
		sent := make(chan error, 1)
		go func() { sent <- sender.Send(ctx, bytes.NewReader(body), nil) }()

		h, _ := recv.Read()
		if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive {
			t.Fatalf("window %d: got %v, want the delivery", announced, h)
		}
		id := h.RequestID
		got := readBody(t, recv, wire.StreamWindow) // the implicit credit
		grant := func(n uint32) {
			g := recv.Header(wire.TypeChunk, wire.FlagReceive|wire.FlagCredit, id)
			recv.WriteFrame(g, wire.AppendCredit(nil, n))
		}
		grant(window) // all of it was used: the whole window again
		if announced == wire.StreamWindow {
			if _, code, err := recv.Refusal(); err != nil || code != wire.CodeProtocol {
				t.Fatalf("window %d: a grant of %d: got %v, %v; want a protocol error", announced, window, code, err)
			}
		} else {
			got += readBody(t, recv, window)
			if got != wire.StreamWindow+window {
				t.Fatalf("read %d bytes of body, want %d", got, wire.StreamWindow+window)
			}
			grant(window + 1) // all of it was used: one byte past the window
			if code := refusalAfterChunks(t, recv); code != wire.CodeProtocol {
				t.Fatalf("window %d: a grant past it: got %v; want a protocol error", announced, code)
			}
		}
		if err := <-sent; err == nil {
			t.Fatalf("window %d: Send to a receiver thrown out for a protocol error succeeded", announced)
		}
		cancel()
		sender.Close()
		recv.Close()
	}
}

// refusalAfterChunks reads the body chunks still on their way, then the
// error frame that closes the connection, and returns its code.
func refusalAfterChunks(t *testing.T, p *testpeer.Conn) wire.Code {
	t.Helper()
	for {
		h, payload, err := p.Next()
		if err != nil {
			t.Fatalf("waiting for the error frame: %v", err)
		}
		if h.Type == wire.TypeChunk && h.Flags == wire.FlagReceive {
			continue
		}
		if h.Type != wire.TypeError {
			t.Fatalf("got %v, want an error frame", h)
		}
		e, err := wire.ParseErrorVersion(h.Version, payload, wire.MaxHeaderBlock)
		if err != nil {
			t.Fatalf("error frame payload: %v", err)
		}
		return e.Code
	}
}

// readBody reads request-body chunks until n bytes have come, and fails
// the test on anything else or on more.
func readBody(t *testing.T, p *testpeer.Conn, n int) int {
	t.Helper()
	got := 0
	for got < n {
		h, payload := p.Read()
		if h.Type != wire.TypeChunk || h.Flags != wire.FlagReceive {
			t.Fatalf("after %d bytes of body: got %v, want a chunk", got, h)
		}
		got += len(payload)
	}
	if got != n {
		t.Fatalf("read %d bytes of body, want exactly %d", got, n)
	}
	return got
}
