package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// benchBodySize is the request and response size of the routing-path
// benchmarks: small enough that the path, not the copying, is measured.
const benchBodySize = 128

// BenchmarkRoundTrip128 measures one Send/Receive/Respond round trip of 128
// bytes each way through a live loopback server: one requester, one
// responder, one request at a time.
func BenchmarkRoundTrip128(b *testing.B) {
	_, addr := startServer(b, server.Config{})
	ch := socketbus.ChannelFromName("bench-roundtrip")
	startResponders(b, addr, ch, 1)
	c := dial(b, addr, ch)
	ctx := context.Background()
	body := bytes.Repeat([]byte{'q'}, benchBodySize)
	var req bytes.Reader
	var resp byteCounter

	b.ReportAllocs()
	b.SetBytes(2 * benchBodySize)
	for b.Loop() {
		req.Reset(body)
		resp = 0
		if err := c.Send(ctx, &req, &resp); err != nil {
			b.Fatalf("Send: %v", err)
		}
		if resp != benchBodySize {
			b.Fatalf("response of %d bytes, want %d", resp, benchBodySize)
		}
	}
}

// BenchmarkRoundTripParallel measures round trips of 128 bytes each way
// made concurrently by eight requester clients through one server to four
// responders, each answering one request at a time.
func BenchmarkRoundTripParallel(b *testing.B) {
	const requesters, responders = 8, 4
	_, addr := startServer(b, server.Config{})
	ch := socketbus.ChannelFromName("bench-parallel")
	startResponders(b, addr, ch, responders)
	clients := make([]*socketbus.Client, requesters)
	for i := range clients {
		clients[i] = dial(b, addr, ch)
	}
	body := bytes.Repeat([]byte{'q'}, benchBodySize)
	var next atomic.Int64

	b.ReportAllocs()
	b.SetBytes(2 * benchBodySize)
	b.SetParallelism((requesters + 1) / 2) // GOMAXPROCS 2 on CI: 8 goroutines
	b.RunParallel(func(pb *testing.PB) {
		c := clients[int(next.Add(1)-1)%len(clients)]
		ctx := context.Background()
		var req bytes.Reader
		var resp byteCounter
		for pb.Next() {
			req.Reset(body)
			resp = 0
			if err := c.Send(ctx, &req, &resp); err != nil {
				b.Errorf("Send: %v", err)
				return
			}
			if resp != benchBodySize {
				b.Errorf("response of %d bytes, want %d", resp, benchBodySize)
				return
			}
		}
	})
}

// startResponders joins n clients to ch, each answering every request with
// a body of benchBodySize bytes, one request at a time, until the benchmark
// ends.
func startResponders(b *testing.B, addr string, ch socketbus.ID, n int) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	answer := bytes.Repeat([]byte{'r'}, benchBodySize)
	for range n {
		c := dial(b, addr, ch)
		wg.Go(func() {
			scratch := make([]byte, 4<<10)
			var body bytes.Reader
			for {
				req, err := c.Receive(ctx)
				if err != nil {
					if ctx.Err() == nil {
						b.Errorf("Receive: %v", err)
					}
					return
				}
				if _, err := io.CopyBuffer(io.Discard, req.Body, scratch); err != nil {
					b.Errorf("reading request body: %v", err)
				}
				body.Reset(answer)
				if err := req.Respond(&body); err != nil && !errors.Is(err, socketbus.ErrClosed) {
					b.Errorf("Respond: %v", err)
				}
			}
		})
	}
	// Cleanups run last-registered first: the responders stop before their
	// clients and the server close.
	b.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// byteCounter is an io.Writer that counts the bytes written to it.
type byteCounter int

func (n *byteCounter) Write(p []byte) (int, error) {
	*n += byteCounter(len(p))
	return len(p), nil
}
