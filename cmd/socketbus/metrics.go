package main

import (
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socketbus/socketbus"
)

// statsCollector is a prometheus.Collector that reads Server.Stats when
// scraped and only then: the server counts for itself, and metrics cost
// its hot path nothing.
type statsCollector struct {
	stats func() socketbus.Stats

	connections      *prometheus.Desc
	channels         *prometheus.Desc
	inFlight         *prometheus.Desc
	queued           *prometheus.Desc
	queuedBytes      *prometheus.Desc
	receiversWaiting *prometheus.Desc
	started          *prometheus.Desc
	requests         *prometheus.Desc
	framesIn         *prometheus.Desc
	framesOut        *prometheus.Desc
	bytesIn          *prometheus.Desc
	bytesOut         *prometheus.Desc
	latency          *prometheus.Desc
}

// newStatsCollector returns a collector of the snapshots stats returns
// (a Server's Stats method).
func newStatsCollector(stats func() socketbus.Stats) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("socketbus_"+name, help, labels, nil)
	}
	return &statsCollector{
		stats:            stats,
		connections:      d("connections", "Open connections, joined or not."),
		channels:         d("channels", "Channels with at least one client."),
		inFlight:         d("requests_in_flight", "Requests queued or taken by a receiver, not yet ended."),
		queued:           d("queued_requests", "Requests waiting for a receiver, over all channels."),
		queuedBytes:      d("queued_bytes", "Request-body bytes held for queued requests, over all channels."),
		receiversWaiting: d("receivers_waiting", "Receive calls waiting for a request, over all channels."),
		started:          d("requests_started_total", "Requests accepted (not refused at once)."),
		requests:         d("requests_total", "Requests that ended, by outcome; refusals count here without counting as started.", "outcome"),
		framesIn:         d("received_frames_total", "Frames read from all connections."),
		framesOut:        d("sent_frames_total", "Frames written to all connections."),
		bytesIn:          d("received_bytes_total", "Bytes read from all connections, frame headers included."),
		bytesOut:         d("sent_bytes_total", "Bytes written to all connections, frame headers included."),
		latency:          d("request_duration_seconds", "Time from a request's start to its end, over requests that were started."),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.connections, c.channels, c.inFlight, c.queued, c.queuedBytes, c.receiversWaiting,
		c.started, c.requests, c.framesIn, c.framesOut, c.bytesIn, c.bytesOut, c.latency,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Stats snapshot per scrape.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	var queued, receivers int
	var queuedBytes int64
	for _, chs := range st.Channels {
		queued += chs.Queued
		receivers += chs.ReceiversWaiting
		queuedBytes += chs.QueuedBytes
	}
	gauge(c.connections, float64(st.Connections))
	gauge(c.channels, float64(len(st.Channels)))
	gauge(c.inFlight, float64(st.InFlight))
	gauge(c.queued, float64(queued))
	gauge(c.queuedBytes, float64(queuedBytes))
	gauge(c.receiversWaiting, float64(receivers))

	counter(c.started, st.RequestsStarted)
	outcomes := make([]string, 0, len(st.Requests))
	for o := range st.Requests {
		outcomes = append(outcomes, o)
	}
	slices.Sort(outcomes)
	for _, o := range outcomes {
		counter(c.requests, st.Requests[o], o)
	}
	counter(c.framesIn, st.FramesIn)
	counter(c.framesOut, st.FramesOut)
	counter(c.bytesIn, st.BytesIn)
	counter(c.bytesOut, st.BytesOut)

	ch <- latencyHistogram(c.latency, st.Latency)
}

// latencyHistogram turns the server's per-bucket counts into Prometheus's
// cumulative buckets; requests slower than every bound count only in the
// total (the +Inf bucket).
func latencyHistogram(d *prometheus.Desc, h socketbus.LatencyHistogram) prometheus.Metric {
	buckets := make(map[float64]uint64, len(h.Bounds))
	var total uint64
	for i, n := range h.Counts {
		total += uint64(n)
		if i < len(h.Bounds) {
			buckets[h.Bounds[i].Seconds()] = total
		}
	}
	return prometheus.MustNewConstHistogram(d, total, h.Sum.Seconds(), buckets)
}
