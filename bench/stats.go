package main

import (
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 1) of sorted by the
// nearest-rank method: the smallest sample at least p of all samples do not
// exceed. It returns 0 for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p*float64(len(sorted))+0.999999999) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// median returns the median of xs (the mean of the two middle values for an
// even count), or 0 for none. It does not modify xs.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	mid := len(s) / 2
	if len(s)%2 == 1 {
		return s[mid]
	}
	return (s[mid-1] + s[mid]) / 2
}

// micros converts d to microseconds.
func micros(d time.Duration) float64 {
	return float64(d) / float64(time.Microsecond)
}
