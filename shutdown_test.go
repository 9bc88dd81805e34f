package socketbus_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

func TestShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	srv := server.New(server.Config{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()

	ch := socketbus.ChannelFromName("shutdown")
	a, b := dial(t, addr, ch), dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// b takes one request; the next waits in the queue.
	taken := receiveOne(t, ctx, b)
	first := sendAsync(ctx, a, "taken")
	req := await(t, "Receive", taken)
	if req == nil {
		t.FailNow()
	}
	second := sendAsync(ctx, a, "queued")
	// A raw sender's request, certainly queued before the shutdown.
	raw := testpeer.Join(t, addr, ch)
	rawID := uuid.New()
	raw.WriteFrame(raw.Header(wire.TypeStart, wire.FlagRequest, rawID), nil)
	chunk := raw.Header(wire.TypeChunk, wire.FlagRequest, rawID)
	chunk.Sequence = 1
	raw.WriteFrame(chunk, []byte("raw queued"))
	raw.Sync()

	shutdown := make(chan error, 1)
	go func() { shutdown <- srv.Shutdown(ctx) }()

	if r := await(t, "queued Send", second); !errors.Is(r.err, socketbus.ErrServerClosed) {
		t.Fatalf("queued Send at Shutdown: got %v, want ErrServerClosed", r.err)
	}
	for {
		h, e := raw.ReadError()
		if h.RequestID != rawID {
			continue
		}
		if e.Code != wire.CodeServerClosed || h.Flags != wire.FlagRequest {
			t.Fatalf("raw queued request at Shutdown: got %v %v, want request server_closed", h.Flags, e)
		}
		break
	}
	// New requests are refused while the taken one finishes.
	if err := a.Send(ctx, strings.NewReader("late"), nil); !errors.Is(err, socketbus.ErrServerClosed) {
		t.Fatalf("Send during Shutdown: got %v, want ErrServerClosed", err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v with a request still taken, want it to wait", err)
	default:
	}

	body, err := io.ReadAll(req.Body)
	if err != nil || string(body) != "taken" {
		t.Fatalf("taken request's body: got %q, %v; want %q, nil", body, err, "taken")
	}
	if err := req.Respond(strings.NewReader("finished")); err != nil {
		t.Fatalf("Respond during Shutdown: got %v, want nil", err)
	}
	if r := await(t, "taken Send", first); r.err != nil || string(r.resp) != "finished" {
		t.Fatalf("taken Send during Shutdown: got %q, %v; want %q, nil", r.resp, r.err, "finished")
	}
	if err := await(t, "Shutdown", shutdown); err != nil {
		t.Fatalf("Shutdown: got %v, want nil", err)
	}
	if err := await(t, "Serve", served); !errors.Is(err, socketbus.ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: got %v, want ErrServerClosed", err)
	}
	for _, c := range []*socketbus.Client{a, b} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("client %v still open 10s after Shutdown returned", c.ID())
		}
	}
	// The connection closes, with at most a server_closed error frame first.
	for {
		h, p, err := raw.ReadFrame()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("raw connection after Shutdown: got %v, want EOF", err)
		}
		if h.Flags == wire.FlagPing {
			continue // pings may come at any time (a tombstone ping, say)
		}
		if e, _ := wire.ParseError(p); h.Type != wire.TypeError || h.Flags != 0 || e == nil || e.Code != wire.CodeServerClosed {
			t.Fatalf("raw connection after Shutdown: got frame %v, want EOF or a server_closed error frame", h)
		}
	}
	if c, err := socketbus.Dial(ctx, addr, ch); err == nil {
		c.Close()
		t.Fatalf("Dial after Shutdown: got a client, want an error")
	}
}
