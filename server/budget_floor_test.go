package server_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestSmallBudgetStillStreams: a budget under MinMaxMemory is raised to
// it, and there a body of 20 MB, far more than the budget, streams
// through. (At 4 MiB a connection's sixteenth could not hold one window:
// the send waited out its timeout without a word.)
func TestSmallBudgetStillStreams(t *testing.T) {
	srv, addr := startServer(t, server.Config{MaxMemory: 4 << 20})
	if got := srv.Stats().MemoryLimit; got != server.MinMaxMemory {
		t.Fatalf("MemoryLimit %d with MaxMemory 4 MiB, want MinMaxMemory %d", got, server.MinMaxMemory)
	}
	ch := socketbus.ChannelFromName("small-budget")
	requester, responder := dial(t, addr, ch), dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go responder.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
		n, _ := io.Copy(io.Discard, req.Body)
		req.Respond(bytes.NewReader([]byte{byte(n >> 20)}))
	}))
	var out bytes.Buffer
	if err := requester.Send(ctx, bytes.NewReader(make([]byte, 20<<20)), &out); err != nil || out.String() != "\x14" {
		t.Fatalf("a 20 MiB body through an 8 MiB budget: %v, response %q; want the body's MiB count, 20", err, out.String())
	}
}
