package socketbus_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// BenchmarkServe measures 128-byte echo round trips through one responder
// client running Serve with 1, 4, 16, 64 and 256 handlers at once, called by 64
// concurrent callers on four requester clients over loopback. It is how
// Serve's default concurrency was chosen.
func BenchmarkServe(b *testing.B) {
	for _, n := range []int{1, 4, 16, 64, 256} {
		b.Run(fmt.Sprintf("concurrency=%d", n), func(b *testing.B) {
			_, addr := startServer(b, server.Config{})
			ch := socketbus.ChannelFromName("bench-serve")
			responder := dial(b, addr, ch)
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- responder.Serve(ctx, echoUpper, socketbus.WithConcurrency(n)) }()
			defer func() {
				cancel()
				<-served
			}()
			requesters := make([]*socketbus.Client, 4)
			for i := range requesters {
				requesters[i] = dial(b, addr, ch)
			}
			body := bytes.Repeat([]byte{'q'}, benchBodySize)
			var next atomic.Int64

			b.ReportAllocs()
			b.SetBytes(2 * benchBodySize)
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0))) // 64 callers
			b.RunParallel(func(pb *testing.PB) {
				c := requesters[next.Add(1)%int64(len(requesters))]
				for pb.Next() {
					got, err := c.Call(context.Background(), body)
					if err != nil || len(got) != benchBodySize {
						b.Errorf("Call: %d bytes, %v; want %d bytes", len(got), err, benchBodySize)
						return
					}
				}
			})
		})
	}
}
