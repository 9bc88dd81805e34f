package main

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socketbus/socketbus"
)

// fixedStats is a snapshot with a little of everything.
func fixedStats() socketbus.Stats {
	return socketbus.Stats{
		Connections: 3,
		Channels: []socketbus.ChannelStats{
			{ID: socketbus.ChannelFromName("a"), Clients: 2, ReceiversWaiting: 1, Queued: 2, QueuedBytes: 100, InFlight: 1},
			{ID: socketbus.ChannelFromName("b"), Clients: 1, Queued: 1, QueuedBytes: 50},
		},
		InFlight:        4,
		RequestsStarted: 10,
		Requests:        map[string]int64{"completed": 5, "timeout": 1, "no_peers": 2},
		FramesIn:        7, FramesOut: 8, BytesIn: 700, BytesOut: 800,
		Latency: socketbus.LatencyHistogram{
			Bounds: []time.Duration{time.Millisecond, 10 * time.Millisecond},
			Counts: []int64{3, 2, 1},
			Sum:    50 * time.Millisecond,
		},
	}
}

func TestStatsCollector(t *testing.T) {
	c := newStatsCollector(fixedStats)
	problems, err := testutil.CollectAndLint(c)
	if err != nil {
		t.Fatalf("CollectAndLint: %v", err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
	const want = `
# HELP socketbus_connections Open connections, joined or not.
# TYPE socketbus_connections gauge
socketbus_connections 3
# HELP socketbus_queued_requests Requests waiting for a receiver, over all channels.
# TYPE socketbus_queued_requests gauge
socketbus_queued_requests 3
# HELP socketbus_queued_bytes Request-body bytes held for queued requests, over all channels.
# TYPE socketbus_queued_bytes gauge
socketbus_queued_bytes 150
# HELP socketbus_requests_total Requests that ended, by outcome; refusals count here without counting as started.
# TYPE socketbus_requests_total counter
socketbus_requests_total{outcome="completed"} 5
socketbus_requests_total{outcome="no_peers"} 2
socketbus_requests_total{outcome="timeout"} 1
# HELP socketbus_request_duration_seconds Time from a request's start to its end, over requests that were started.
# TYPE socketbus_request_duration_seconds histogram
socketbus_request_duration_seconds_bucket{le="0.001"} 3
socketbus_request_duration_seconds_bucket{le="0.01"} 5
socketbus_request_duration_seconds_bucket{le="+Inf"} 6
socketbus_request_duration_seconds_sum 0.05
socketbus_request_duration_seconds_count 6
`
	names := []string{"socketbus_connections", "socketbus_queued_requests", "socketbus_queued_bytes",
		"socketbus_requests_total", "socketbus_request_duration_seconds"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 15 {
		t.Errorf("%d metrics collected, want 15", n)
	}
}

// TestStatsCollectorRegisters checks the collector's descriptions agree
// with what it collects, as a registry requires.
func TestStatsCollectorRegisters(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newStatsCollector(fixedStats))
	if _, err := reg.Gather(); err != nil {
		t.Errorf("Gather: %v", err)
	}
}
