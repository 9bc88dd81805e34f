// Package frametest runs a package's tests in package frame's test mode:
// every pooled buffer is tracked, a second release panics, and the suite
// fails if a buffer is still out of the pool once every goroutine has
// ended (goleak checks that first). Only tests import it.
//
// A run with -test.bench leaves the test mode off: tracking takes a global
// lock and allocates a stack for every buffer, which a benchmark would
// measure as the library's own cost (it was 30% of the allocations of
// BenchmarkRoundTrip128).
package frametest

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/socketbus/socketbus/internal/frame"
)

// Main is a TestMain: it runs m with buffers tracked, then checks that no
// goroutine leaked and that every buffer went back to the pool.
func Main(m *testing.M, opts ...goleak.Option) {
	flag.Parse()
	frame.Track(!benchmarking()) // untracked, Outstanding is 0
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		} else if n := frame.Outstanding(); n != 0 {
			fmt.Fprintf(os.Stderr, "frame: %d pooled buffers were never released\n%s", n, frame.OutstandingStacks())
			code = 1
		}
	}
	os.Exit(code)
}

// benchmarking reports whether the test binary was asked to run
// benchmarks.
func benchmarking() bool {
	f := flag.Lookup("test.bench")
	return f != nil && f.Value.String() != ""
}
