//go:build !race

// The heap bound is measured without the race detector, whose shadow
// memory is not the program's.

package socketbus_test

import (
	"context"
	"crypto/sha256"
	"io"
	"runtime"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/heapsample"
	"github.com/socketbus/socketbus/server"
)

// TestGather32MiBBoundedHeap: a 32 MiB body gathered to 4 members, one of
// them reading slowly, through a server in this process: beyond the body
// the sender holds, the process's live heap stays within a few windows per
// member, however large the body.
func TestGather32MiBBoundedHeap(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-heap")
	sender := dial(t, addr, ch)
	const size = 32 << 20
	want := patternSum(3, size)
	for i := 0; i < 4; i++ {
		slow := i == 0
		serveAs(t, dial(t, addr, ch), func(r *socketbus.Request) {
			h := sha256.New()
			var src io.Reader = r.Body
			if slow {
				src = &pausingReader{r: r.Body, every: 16, pause: time.Millisecond}
			}
			if _, err := io.Copy(h, src); err != nil {
				_ = r.Fail(err)
				return
			}
			s := sum(h)
			_ = r.Respond(stringsReader(string(s[:])))
		})
	}
	body := patternBytes(3, size)
	runtime.GC()
	base := heapsample.Live()
	s := heapsample.Start(5 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	start := time.Now()
	replies, err := sender.Gather(ctx, body)
	elapsed := time.Since(start)
	peak := s.Stop()
	if err != nil || len(replies) != 4 {
		t.Fatalf("Gather: %d replies, %v", len(replies), err)
	}
	for _, r := range replies {
		if r.Err != nil || string(r.Body) != string(want[:]) {
			t.Fatalf("member %s: digest mismatch or %v", r.From, r.Err)
		}
	}
	grew := int64(peak) - int64(base)
	t.Logf("32 MiB to 4 members: %.0f MB/s of body, live heap %.1f MiB over the body's (peak %.1f MiB)",
		float64(size)/1e6/elapsed.Seconds(), float64(grew)/(1<<20), float64(peak)/(1<<20))
	if grew > 24<<20 {
		t.Fatalf("the live heap grew %d MiB past the body during the gather, want under 24 MiB", grew>>20)
	}
	runtime.KeepAlive(body)
}
