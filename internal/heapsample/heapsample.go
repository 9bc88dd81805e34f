// Package heapsample records the peak of the live heap while a test or a
// benchmark runs, for the heap bounds that tests assert (read without the
// race detector, whose shadow memory is not the program's).
package heapsample

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"time"
)

// liveHeap is the runtime metric sampled: bytes of heap objects, live or
// not yet swept.
const liveHeap = "/memory/classes/heap/objects:bytes"

// Sampler reads the live heap every interval until Stop.
type Sampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

// Start starts sampling every interval, at once first.
func Start(every time.Duration) *Sampler {
	s := &Sampler{stop: make(chan struct{})}
	sample := []metrics.Sample{{Name: liveHeap}}
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
func (s *Sampler) Stop() uint64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak
}

// Live collects garbage and returns the live heap in bytes.
func Live() uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: liveHeap}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}
