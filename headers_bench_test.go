package socketbus_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// BenchmarkRoundTripVersions measures BenchmarkRoundTrip128's round trip
// with both clients on protocol v2, on v3, and on v3 with three small
// request headers (a trace context, a tenant, a request ID), the responder
// on Serve: what version 3 and its headers cost in the same build. Run the
// three one after another, several times over, and compare medians
// (BENCHMARKS.md).
func BenchmarkRoundTripVersions(b *testing.B) {
	h := socketbus.Header{}
	h.Set("Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.Set("Tenant", "acme-prod")
	h.Set("Request-Id", "7f3c2b1e-9d4a-4c1f-8e2b-5a6d7c8e9f01")
	for _, bc := range []struct {
		name    string
		version uint8
		header  socketbus.Header
	}{
		{"v2", 2, nil},
		{"v3", 3, nil},
		{"v3+3h", 3, h},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkRoundTripVersion(b, bc.version, bc.header)
		})
	}
}

// benchmarkRoundTripVersion measures round trips of 128 bytes each way
// between two clients on protocol version, each request with header (none
// when it is nil).
func benchmarkRoundTripVersion(b *testing.B, version uint8, header socketbus.Header) {
	var opts []socketbus.CallOption
	if header != nil {
		opts = append(opts, socketbus.WithHeader(header))
	}
	_, addr := startServer(b, server.Config{})
	ch := socketbus.ChannelFromName("bench-versions")
	v := socketbus.WithProtocolVersion(version)
	responder, c := dial(b, addr, ch, v), dial(b, addr, ch, v)
	answer := bytes.Repeat([]byte{'r'}, benchBodySize)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- responder.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				b.Errorf("reading request body: %v", err)
			}
			if len(req.Header) != len(header) {
				b.Errorf("request with %d header(s), want %d", len(req.Header), len(header))
			}
			if err := req.Respond(bytes.NewReader(answer)); err != nil && ctx.Err() == nil {
				b.Errorf("Respond: %v", err)
			}
		}))
	}()
	// Cleanups run last-registered first: Serve ends before the clients
	// and the server close.
	b.Cleanup(func() {
		cancel()
		<-served
	})
	body := bytes.Repeat([]byte{'q'}, benchBodySize)
	var req bytes.Reader
	var resp byteCounter

	b.ReportAllocs()
	b.SetBytes(2 * benchBodySize)
	for b.Loop() {
		req.Reset(body)
		resp = 0
		if err := c.Send(context.Background(), &req, &resp, opts...); err != nil {
			b.Fatalf("Send: %v", err)
		}
		if resp != benchBodySize {
			b.Fatalf("response of %d bytes, want %d", resp, benchBodySize)
		}
	}
}
