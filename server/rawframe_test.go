package server_test

import (
	"context"
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
