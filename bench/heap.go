package main

import (
	"runtime/metrics"
	"time"
)

// heapMetric is the runtime's count of bytes in heap objects: live ones and
// dead ones the garbage collector has not yet freed.
const heapMetric = "/memory/classes/heap/objects:bytes"

// heapSampler records the peak of heapMetric, read by its own goroutine
// every interval until Stop.
type heapSampler struct {
	stop chan struct{}
	done chan uint64
}

// startHeapSampler starts sampling at once and then every interval.
func startHeapSampler(interval time.Duration) *heapSampler {
	s := &heapSampler{stop: make(chan struct{}), done: make(chan uint64, 1)}
	go s.run(interval)
	return s
}

func (s *heapSampler) run(interval time.Duration) {
	sample := []metrics.Sample{{Name: heapMetric}}
	read := func() uint64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return sample[0].Value.Uint64()
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	peak := read()
	for {
		select {
		case <-t.C:
			peak = max(peak, read())
		case <-s.stop:
			s.done <- max(peak, read())
			return
		}
	}
}

// Stop ends sampling and returns the peak seen, in bytes.
func (s *heapSampler) Stop() uint64 {
	close(s.stop)
	return <-s.done
}
