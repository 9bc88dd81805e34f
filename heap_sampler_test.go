package socketbus_test

import (
	"runtime/metrics"
	"sync"
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
