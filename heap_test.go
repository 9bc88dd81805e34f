//go:build !race

// The heap bound is measured without the race detector, whose shadow
// memory is not the program's.

package socketbus_test

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// heapSampler records the peak live heap while it runs.
type heapSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

const liveHeapMetric = "/memory/classes/heap/objects:bytes"

func startHeapSampler(every time.Duration) *heapSampler {
	s := &heapSampler{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: liveHeapMetric}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			metrics.Read(sample)
			s.peak = max(s.peak, sample[0].Value.Uint64())
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

// Stop ends sampling and returns the peak in bytes.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak
}

func TestTransfer1GiBBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB each way; skipped with -short")
	}
	runtime.GC()
	s := startHeapSampler(5 * time.Millisecond)
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
