package main

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// statsCollector is a prometheus.Collector that reads Server.Stats when
// scraped and only then: the server counts for itself, and metrics cost
// its hot path nothing.
type statsCollector struct {
	stats func() server.Stats
	build buildInfo

	// maxChannels caps the channels that get series of their own; the
	// others add up in the series labelled channel="other". A channel
	// keeps its series while it exists; a new one gets one while fewer
	// than maxChannels have theirs.
	maxChannels int
	mu          sync.Mutex
	own         map[socketbus.ID]bool // channels with series of their own; guarded by mu

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
	gathers          *prometheus.Desc
	gatherReplies    *prometheus.Desc

	buildInfo      *prometheus.Desc
	startTime      *prometheus.Desc
	uptime         *prometheus.Desc
	refused        *prometheus.Desc
	cut            *prometheus.Desc
	protocolErrors *prometheus.Desc
	memory         *prometheus.Desc
	memoryPeak     *prometheus.Desc
	memoryLimit    *prometheus.Desc
	memoryCuts     *prometheus.Desc
	internalErrors *prometheus.Desc
	accepted       *prometheus.Desc
	joined         *prometheus.Desc
	chClients      *prometheus.Desc
	chQueued       *prometheus.Desc
	chQueuedBytes  *prometheus.Desc
	chInFlight     *prometheus.Desc
	chReceivers    *prometheus.Desc
	chRequests     *prometheus.Desc
	channelsFolded *prometheus.Desc
}

// defaultMetricsChannels is how many channels get series of their own
// unless serve --metrics-channels says otherwise.
const defaultMetricsChannels = 100

// otherChannel labels the series that add up the channels past the cap.
const otherChannel = "other"

// The reasons and codes Stats counts refusals, cuts and protocol errors
// by: each gets a series from the start, so that rate() sees the first.
var (
	refusalReasons = []string{"protocol", "unauthorized", "limit", "join_timeout", "conflict", "tls", "http"}
	cutReasons     = []string{"protocol", "slow_consumer", "keepalive", "frame_timeout", "memory", "internal"}
	protocolCodes  = []string{"protocol", "bad_version", "too_large"}
)

// newStatsCollector returns a collector of the snapshots stats returns
// (a Server's Stats method).
func newStatsCollector(stats func() server.Stats) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("socketbus_"+name, help, labels, nil)
	}
	return &statsCollector{
		stats:            stats,
		build:            readBuildInfo(),
		maxChannels:      defaultMetricsChannels,
		own:              make(map[socketbus.ID]bool),
		buildInfo:        d("build_info", "Always 1; its labels say the server's version, commit and Go version.", "version", "revision", "go_version"),
		startTime:        d("start_time_seconds", "When the server started, in seconds since the Unix epoch."),
		uptime:           d("uptime_seconds", "Seconds since the server started."),
		refused:          d("connections_refused_total", "Connections that did not join, by reason: protocol, unauthorized, limit (connections or memory), join_timeout, conflict, tls, http.", "reason"),
		cut:              d("connections_cut_total", "Joined connections the server cut, by reason: protocol, slow_consumer, keepalive, frame_timeout, memory, internal.", "reason"),
		protocolErrors:   d("protocol_errors_total", "Protocol errors that refused or cut a connection, by code.", "code"),
		memory:           d("memory_bytes", "Memory the server holds for frames now, as its budget counts it."),
		memoryPeak:       d("memory_peak_bytes", "The most memory the server has held for frames."),
		memoryLimit:      d("memory_limit_bytes", "The memory budget, --max-memory."),
		memoryCuts:       d("memory_cuts_total", "Connections cut because the memory budget passed its high-water mark."),
		accepted:         d("connections_accepted_total", "Connections accepted, whether they joined or not."),
		joined:           d("joins_total", "Connections that joined a channel."),
		internalErrors:   d("internal_errors_total", "Panics recovered while handling a connection's frames; each closed that connection alone."),
		chClients:        d("channel_clients", "Joined connections per channel (channel=\"other\": the channels past --metrics-channels).", "channel"),
		chQueued:         d("channel_queued_requests", "Requests waiting for a receiver, per channel.", "channel"),
		chQueuedBytes:    d("channel_queued_bytes", "Request-body bytes held for queued requests, per channel.", "channel"),
		chInFlight:       d("channel_requests_in_flight", "Requests taken by a receiver and not yet ended, per channel.", "channel"),
		chReceivers:      d("channel_receivers_waiting", "Receive calls waiting for a request, per channel.", "channel"),
		chRequests:       d("channel_requests_total", "Requests that ended, per channel and outcome, since the channel was created (a channel whose last client leaves starts again from zero).", "channel", "outcome"),
		channelsFolded:   d("channels_aggregated", "Channels past --metrics-channels, whose series add up under channel=\"other\"."),
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
		gathers:          d("gathers_total", "Gathers and publishes accepted, by kind: gather or publish (each also counts as one request).", "kind"),
		gatherReplies:    d("gather_replies_total", "Outcomes of the members of gathers and publishes, by outcome (completed: answered, or for a publish took it).", "outcome"),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.connections, c.channels, c.inFlight, c.queued, c.queuedBytes, c.receiversWaiting,
		c.started, c.requests, c.framesIn, c.framesOut, c.bytesIn, c.bytesOut, c.latency,
		c.gathers, c.gatherReplies,
		c.buildInfo, c.startTime, c.uptime, c.refused, c.cut, c.protocolErrors,
		c.memory, c.memoryPeak, c.memoryLimit, c.memoryCuts, c.internalErrors, c.accepted, c.joined,
		c.chClients, c.chQueued, c.chQueuedBytes, c.chInFlight, c.chReceivers, c.chRequests, c.channelsFolded,
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
	counter(c.gathers, st.Gathers, "gather")
	counter(c.gathers, st.Publishes, "publish")
	for _, o := range slices.Sorted(maps.Keys(st.GatherReplies)) {
		counter(c.gatherReplies, st.GatherReplies[o], o)
	}
	counter(c.framesIn, st.FramesIn)
	counter(c.framesOut, st.FramesOut)
	counter(c.bytesIn, st.BytesIn)
	counter(c.bytesOut, st.BytesOut)

	ch <- latencyHistogram(c.latency, st.Latency)

	ch <- prometheus.MustNewConstMetric(c.buildInfo, prometheus.GaugeValue, 1, c.build.version, c.build.revision, c.build.goVer)
	if !st.StartTime.IsZero() {
		gauge(c.startTime, float64(st.StartTime.UnixNano())/1e9)
		gauge(c.uptime, time.Since(st.StartTime).Seconds())
	}
	labelled := func(d *prometheus.Desc, known []string, counts map[string]int64) {
		for _, k := range known {
			counter(d, counts[k], k)
		}
		var extra []string
		for k := range counts {
			if !slices.Contains(known, k) {
				extra = append(extra, k)
			}
		}
		slices.Sort(extra)
		for _, k := range extra {
			counter(d, counts[k], k)
		}
	}
	labelled(c.refused, refusalReasons, st.Refusals)
	labelled(c.cut, cutReasons, st.Cuts)
	labelled(c.protocolErrors, protocolCodes, st.ProtocolErrors)
	gauge(c.memory, float64(st.MemoryBytes))
	gauge(c.memoryPeak, float64(st.MemoryPeakBytes))
	gauge(c.memoryLimit, float64(st.MemoryLimit))
	counter(c.memoryCuts, st.MemoryCuts)
	counter(c.internalErrors, st.InternalErrors)
	counter(c.accepted, st.Accepted)
	counter(c.joined, st.Joined)

	c.collectChannels(ch, st.Channels)
}

// collectChannels sends the per-channel series: one set for each of the
// first maxChannels channels, and one set, labelled "other", adding up
// the rest.
func (c *statsCollector) collectChannels(ch chan<- prometheus.Metric, channels []server.ChannelStats) {
	c.mu.Lock()
	present := make(map[socketbus.ID]bool, len(channels))
	for _, cs := range channels {
		present[cs.ID] = true
	}
	for id := range c.own {
		if !present[id] {
			delete(c.own, id) // gone: its slot is free
		}
	}
	for _, cs := range channels {
		if !c.own[cs.ID] && len(c.own) < c.maxChannels {
			c.own[cs.ID] = true
		}
	}
	own := make(map[socketbus.ID]bool, len(c.own))
	for id := range c.own {
		own[id] = true
	}
	c.mu.Unlock()

	other := server.ChannelStats{Requests: make(map[string]int64)}
	folded := 0
	send := func(label string, cs server.ChannelStats) {
		gaugeL := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
		}
		gaugeL(c.chClients, float64(cs.Clients))
		gaugeL(c.chQueued, float64(cs.Queued))
		gaugeL(c.chQueuedBytes, float64(cs.QueuedBytes))
		gaugeL(c.chInFlight, float64(cs.InFlight))
		gaugeL(c.chReceivers, float64(cs.ReceiversWaiting))
		outcomes := make([]string, 0, len(cs.Requests))
		for o := range cs.Requests {
			outcomes = append(outcomes, o)
		}
		slices.Sort(outcomes)
		for _, o := range outcomes {
			ch <- prometheus.MustNewConstMetric(c.chRequests, prometheus.CounterValue, float64(cs.Requests[o]), label, o)
		}
	}
	for _, cs := range channels {
		if !own[cs.ID] {
			folded++
			other.Clients += cs.Clients
			other.Queued += cs.Queued
			other.QueuedBytes += cs.QueuedBytes
			other.InFlight += cs.InFlight
			other.ReceiversWaiting += cs.ReceiversWaiting
			for o, n := range cs.Requests {
				other.Requests[o] += n
			}
			continue
		}
		label := cs.Name
		if label == "" || label == otherChannel {
			label = cs.ID.String()
		}
		send(label, cs)
	}
	send(otherChannel, other)
	ch <- prometheus.MustNewConstMetric(c.channelsFolded, prometheus.GaugeValue, float64(folded))
}

// latencyHistogram turns the server's per-bucket counts into Prometheus's
// cumulative buckets; requests slower than every bound count only in the
// total (the +Inf bucket).
func latencyHistogram(d *prometheus.Desc, h server.LatencyHistogram) prometheus.Metric {
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
