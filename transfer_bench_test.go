package socketbus_test

import (
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"

	"github.com/socketbus/socketbus/internal/heapsample"
)

// BenchmarkTransfer256MiB sends a 256 MiB request body through a live
// loopback server to a receiver that discards it, and reports MB/s and the
// peak live heap of the whole process (client and server together).
//
//	go test -run '^$' -bench Transfer256MiB -benchtime 3x .
func BenchmarkTransfer256MiB(b *testing.B) {
	const size = 256 << 20
	_, addr := startServer(b, server.Config{})
	ch := socketbus.ChannelFromName("bench-transfer")
	a := dial(b, addr, ch)
	r := dial(b, addr, ch)
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		for {
			req, err := r.Receive(ctx)
			if err != nil {
				done <- nil
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				done <- err
				return
			}
			if err := req.Respond(nil); err != nil {
				done <- err
				return
			}
		}
	}()
	runtime.GC()
	s := heapsample.Start(time.Millisecond)
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		if err := a.Send(ctx, io.LimitReader(zeroReader{}, size), io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	peak := s.Stop()
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	r.Close()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

// zeroReader is an endless source of zero bytes that costs nothing to read.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
