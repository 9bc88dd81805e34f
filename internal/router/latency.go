package router

import (
	"sync/atomic"
	"time"
)

// latencyBounds are the upper bounds of the latency histogram's buckets.
var latencyBounds = []time.Duration{
	100 * time.Microsecond, 250 * time.Microsecond, 500 * time.Microsecond,
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
	10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
	100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
}

// latency is a lock-free histogram of request durations.
type latency struct {
	counts [18]atomic.Int64 // len(latencyBounds)+1
	sum    atomic.Int64     // nanoseconds
}

func (l *latency) observe(d time.Duration) {
	i := 0
	for i < len(latencyBounds) && d > latencyBounds[i] {
		i++
	}
	l.counts[i].Add(1)
	l.sum.Add(int64(d))
}

// LatencySnapshot is a copy of the histogram.
type LatencySnapshot struct {
	Bounds []time.Duration
	Counts []int64
	Sum    time.Duration
}

func (l *latency) snapshot() LatencySnapshot {
	s := LatencySnapshot{Bounds: append([]time.Duration(nil), latencyBounds...), Counts: make([]int64, len(l.counts))}
	for i := range l.counts {
		s.Counts[i] = l.counts[i].Load()
	}
	s.Sum = time.Duration(l.sum.Load())
	return s
}
