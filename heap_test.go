//go:build !race

// The heap bound is measured without the race detector, whose shadow
// memory is not the program's.

package socketbus_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/socketbus/socketbus/internal/heapsample"
)

func TestTransfer1GiBBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB each way; skipped with -short")
	}
	runtime.GC()
	s := heapsample.Start(5 * time.Millisecond)
	start := time.Now()
	transfer(t, 1<<30)
	elapsed := time.Since(start)
	peak := s.Stop()
	t.Logf("1 GiB request + 1 GiB response: %.0f MB/s (both directions), peak live heap %.1f MiB",
		float64(2<<30)/1e6/elapsed.Seconds(), float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Fatalf("peak live heap %d MiB, want under 64 MiB", peak>>20)
	}
}
