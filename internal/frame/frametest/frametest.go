// Package frametest runs a package's tests in package frame's test mode:
// every pooled buffer is tracked, a second release panics, and the suite
// fails if a buffer is still out of the pool once every goroutine has
// ended (goleak checks that first). Only tests import it.
package frametest

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/socketbus/socketbus/internal/frame"
)

// Main is a TestMain: it runs m with buffers tracked, then checks that no
// goroutine leaked and that every buffer went back to the pool.
func Main(m *testing.M, opts ...goleak.Option) {
	frame.Track(true)
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
