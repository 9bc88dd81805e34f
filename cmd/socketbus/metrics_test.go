package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// fixedStats is a snapshot with a little of everything.
func fixedStats() server.Stats {
	return server.Stats{
		Connections: 3,
		Channels: []server.ChannelStats{
			{ID: socketbus.ChannelFromName("a"), Clients: 2, ReceiversWaiting: 1, Queued: 2, QueuedBytes: 100, InFlight: 1},
			{ID: socketbus.ChannelFromName("b"), Clients: 1, Queued: 1, QueuedBytes: 50},
		},
		InFlight:        4,
		RequestsStarted: 10,
		Requests:        map[string]int64{"completed": 5, "timeout": 1, "no_peers": 2},
		Gathers:         2,
		Publishes:       1,
		GatherReplies:   map[string]int64{"completed": 6, "remote_error": 1},
		FramesIn:        7, FramesOut: 8, BytesIn: 700, BytesOut: 800,
		Latency: server.LatencyHistogram{
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
# HELP socketbus_gathers_total Gathers and publishes accepted, by kind: gather or publish (each also counts as one request).
# TYPE socketbus_gathers_total counter
socketbus_gathers_total{kind="gather"} 2
socketbus_gathers_total{kind="publish"} 1
# HELP socketbus_gather_replies_total Outcomes of the members of gathers and publishes, by outcome (completed: answered, or for a publish took it).
# TYPE socketbus_gather_replies_total counter
socketbus_gather_replies_total{outcome="completed"} 6
socketbus_gather_replies_total{outcome="remote_error"} 1
`
	names := []string{"socketbus_connections", "socketbus_queued_requests", "socketbus_queued_bytes",
		"socketbus_requests_total", "socketbus_request_duration_seconds", "socketbus_gathers_total", "socketbus_gather_replies_total"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c); n != 59 {
		t.Errorf("%d metrics collected, want 59", n)
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

// channelSeries gathers c and returns, per channel label, the value of
// the gauge socketbus_channel_clients and the counter
// socketbus_channel_requests_total{outcome="completed"}.
func channelSeries(t *testing.T, c *statsCollector) (clients, completed map[string]float64, folded float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	clients, completed = make(map[string]float64), make(map[string]float64)
	for _, f := range families {
		for _, m := range f.GetMetric() {
			labels := make(map[string]string)
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetName() {
			case "socketbus_channel_clients":
				clients[labels["channel"]] = m.GetGauge().GetValue()
			case "socketbus_channel_requests_total":
				if labels["outcome"] == "completed" {
					completed[labels["channel"]] = m.GetCounter().GetValue()
				}
			case "socketbus_channels_aggregated":
				folded = m.GetGauge().GetValue()
			}
		}
	}
	return clients, completed, folded
}

// TestChannelSeriesCap checks that only maxChannels channels get series of
// their own, that the rest add up under "other", and that a channel keeps
// its series while it exists while a new one takes a freed slot.
func TestChannelSeriesCap(t *testing.T) {
	var channels []server.ChannelStats
	for i := range 5 {
		name := string(rune('a' + i))
		channels = append(channels, server.ChannelStats{ID: socketbus.ChannelFromName(name), Name: name, Clients: i + 1,
			Requests: map[string]int64{"completed": int64(10 * (i + 1))}})
	}
	slices.SortFunc(channels, func(a, b server.ChannelStats) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	current := channels
	c := newStatsCollector(func() server.Stats { return server.Stats{Channels: current} })
	c.maxChannels = 3

	clients, completed, folded := channelSeries(t, c)
	if len(clients) != 4 || folded != 2 {
		t.Fatalf("series for %v (%d aggregated), want 3 channels and other (2 aggregated)", clients, int(folded))
	}
	var own []string
	for _, cs := range channels[:3] { // the first three in Stats order took the slots
		own = append(own, cs.Name)
		if clients[cs.Name] != float64(cs.Clients) || completed[cs.Name] != float64(cs.Requests["completed"]) {
			t.Errorf("channel %s: clients %v, completed %v; want %d, %d", cs.Name, clients[cs.Name], completed[cs.Name], cs.Clients, cs.Requests["completed"])
		}
	}
	wantOther := channels[3].Clients + channels[4].Clients
	if clients[otherChannel] != float64(wantOther) || completed[otherChannel] != float64(channels[3].Requests["completed"]+channels[4].Requests["completed"]) {
		t.Errorf("other: clients %v, completed %v; want the sum of %s and %s", clients[otherChannel], completed[otherChannel], channels[3].Name, channels[4].Name)
	}

	// The second channel goes: the fourth takes its slot, the others keep
	// theirs, and the fifth stays in other.
	current = append(slices.Clone(channels[:1]), channels[2:]...)
	clients, _, folded = channelSeries(t, c)
	for _, name := range []string{own[0], own[2], channels[3].Name, otherChannel} {
		if _, ok := clients[name]; !ok {
			t.Errorf("no series for %s after %s left: %v", name, own[1], clients)
		}
	}
	if _, ok := clients[own[1]]; ok || len(clients) != 4 || folded != 1 || clients[otherChannel] != float64(channels[4].Clients) {
		t.Errorf("after %s left: series %v (%d aggregated), want 3 channels without it, and other holding %s alone",
			own[1], clients, int(folded), channels[4].Name)
	}
}
