package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

func TestRawFrames(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	stop := testpeer.BackgroundPair(t, addr)
	channel := socketbus.ChannelFromName("raw")
	peer := dial(t, addr, channel) // a peer on the channel, so requests are not refused for lack of one

	tests := []struct {
		name string
		code wire.Code
		send func(r *testpeer.Conn)
	}{
		{"spoofed client ID", wire.CodeProtocol, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagRequest, uuid.New())
			h.ClientID = peer.ID()
			r.WriteFrame(h, nil)
		}},
		{"another channel", wire.CodeProtocol, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagRequest, uuid.New())
			h.ChannelID = socketbus.ChannelFromName("background-" + t.Name())
			r.WriteFrame(h, nil)
		}},
		{"bad version", wire.CodeBadVersion, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagRequest, uuid.New())
			h.Version = 2
			r.WriteFrame(h, nil)
		}},
		{"payload length over MaxFramePayload", wire.CodeTooLarge, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			h.Length = wire.MaxFramePayload + 1
			r.Write(h, nil) // the header alone: the server must not wait for the payload
		}},
		{"payload length 2^32-1", wire.CodeTooLarge, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			h.Length = 1<<32 - 1
			r.Write(h, nil)
		}},
		{"response for a request not held", wire.CodeProtocol, func(r *testpeer.Conn) {
			r.WriteFrame(r.Header(wire.TypeStart, wire.FlagResponse, uuid.New()), nil)
		}},
		{"chunk of a request never started", wire.CodeProtocol, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			r.WriteFrame(h, []byte("orphan"))
		}},
		{"unknown flag", wire.CodeProtocol, func(r *testpeer.Conn) {
			r.WriteFrame(r.Header(wire.TypeStart, wire.FlagRequest|0x0100, uuid.New()), nil)
		}},
		{"unknown type", wire.CodeProtocol, func(r *testpeer.Conn) {
			r.WriteFrame(r.Header(7, wire.FlagRequest, uuid.New()), nil)
		}},
		{"end without final bit", wire.CodeProtocol, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeEnd, wire.FlagRequest, uuid.New())
			h.Sequence = 2
			r.WriteFrame(h, nil)
		}},
		{"second join", wire.CodeProtocol, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.Final = true
			r.WriteFrame(h, nil)
		}},
		{"sequence gap", wire.CodeProtocol, func(r *testpeer.Conn) {
			id := uuid.New()
			r.WriteFrame(r.Header(wire.TypeStart, wire.FlagRequest, id), nil)
			h := r.Header(wire.TypeChunk, wire.FlagRequest, id)
			h.Sequence = 2
			r.WriteFrame(h, []byte("skipped one"))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testpeer.Join(t, addr, channel)
			tc.send(r)
			h, e := r.ReadError()
			if e.Code != tc.code {
				t.Fatalf("error frame code: got %v (%q), want %v", e.Code, e.Message, tc.code)
			}
			if e.Message == "" {
				t.Fatalf("error frame message: got none, want an explanation")
			}
			if h.Flags != 0 {
				t.Errorf("error frame flags: got %v, want none (a connection-level error)", h.Flags)
			}
			r.ExpectEOF()
		})
	}

	// Before the join.
	preJoin := []struct {
		name string
		code wire.Code
		send func(r *testpeer.Conn)
	}{
		{"first frame not a join", wire.CodeProtocol, func(r *testpeer.Conn) {
			r.WriteFrame(r.Header(wire.TypeStart, wire.FlagRequest, uuid.New()), nil)
		}},
		{"join with bad version", wire.CodeBadVersion, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.Version, h.Final = 9, true
			r.WriteFrame(h, nil)
		}},
		{"join with length over MaxFramePayload", wire.CodeTooLarge, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.Final, h.Length = true, wire.MaxFramePayload+1
			r.Write(h, nil)
		}},
		{"join with the nil client ID", wire.CodeProtocol, func(r *testpeer.Conn) {
			h := r.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
			h.ClientID, h.Final = socketbus.ID{}, true
			r.WriteFrame(h, nil)
		}},
	}
	for _, tc := range preJoin {
		t.Run(tc.name, func(t *testing.T) {
			r := testpeer.Dial(t, addr)
			r.Channel = channel
			tc.send(r)
			_, e := r.ReadError()
			if e.Code != tc.code {
				t.Fatalf("error frame code: got %v (%q), want %v", e.Code, e.Message, tc.code)
			}
			r.ExpectEOF()
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
	_, addr := startServer(t, server.Config{})
	channel := socketbus.ChannelFromName("raw-abort")
	a := dial(t, addr, channel)
	r := testpeer.Join(t, addr, channel)
	r.Poll(uuid.New())
	if early := r.Sync(); len(early) != 0 { // the poll is registered before the request arrives
		t.Fatalf("frames before any request: got %v, want none", early)
	}

	errBoom := errors.New("boom")
	body := io.MultiReader(bytes.NewReader(make([]byte, 1000)), &failingReader{err: errBoom})
	err := a.Send(context.Background(), body, nil)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Send: got %v, want an error wrapping the reader's", err)
	}

	h, p := r.Read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive {
		t.Fatalf("got %v, want the delivered request's start", h)
	}
	id := h.RequestID
	var got int
	for {
		h, p = r.Read()
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
