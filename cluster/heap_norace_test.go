//go:build !race

package cluster_test

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/socketbus/socketbus/internal/heapsample"
	"github.com/socketbus/socketbus/server"
)

// TestCrossNodeLargeBodiesBoundedHeap: 64 MiB each way between nodes of a
// three-node bus in this process, through slow readers, while the live
// heap of all three nodes (and their embedded NATS servers) together is
// sampled. The bodies stream: the heap grows by a small part of one body.
// Without the race detector, whose shadow memory is not the program's.
func TestCrossNodeLargeBodiesBoundedHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	b := newTestBus(t, 3, server.Config{})
	runtime.GC()
	base := heapsample.Start(5 * time.Millisecond).Stop()
	s := heapsample.Start(5 * time.Millisecond)
	crossNodeTransfer(t, b, 64<<20, 20*time.Microsecond)
	peak := s.Stop()
	grew := int64(peak) - int64(base)
	t.Logf("live heap: %.1f MiB before, peak %.1f MiB during (+%.1f MiB) for 64 MiB each way",
		float64(base)/(1<<20), float64(peak)/(1<<20), float64(grew)/(1<<20))
	if grew > 24<<20 {
		t.Fatalf("the heap grew by %.1f MiB for a 64 MiB body: the bodies are not streaming", float64(grew)/(1<<20))
	}
}
