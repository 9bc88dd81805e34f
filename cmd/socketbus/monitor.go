package main

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// statusReport is the JSON of the monitor's /status, which socketbus
// status prints.
type statusReport struct {
	Version         string           `json:"version"`
	Revision        string           `json:"revision,omitempty"`
	GoVersion       string           `json:"go_version"`
	StartTime       time.Time        `json:"start_time"`
	UptimeSeconds   float64          `json:"uptime_seconds"`
	Draining        bool             `json:"draining"`
	Connections     int              `json:"connections"`
	InFlight        int64            `json:"in_flight"`
	RequestsStarted int64            `json:"requests_started"`
	Requests        map[string]int64 `json:"requests"`       // ended requests by outcome
	Gathers         int64            `json:"gathers"`        // gathers accepted (each also one request)
	Publishes       int64            `json:"publishes"`      // publishes accepted (each also one request)
	GatherReplies   map[string]int64 `json:"gather_replies"` // the outcomes of their members
	FramesIn        int64            `json:"frames_in"`
	FramesOut       int64            `json:"frames_out"`
	BytesIn         int64            `json:"bytes_in"`
	BytesOut        int64            `json:"bytes_out"`
	// Refused counts connections that did not join, Cut joined ones the
	// server cut, by reason; ProtocolErrors the protocol errors among
	// both, by code.
	Refused         map[string]int64 `json:"refused"`
	Cut             map[string]int64 `json:"cut"`
	ProtocolErrors  map[string]int64 `json:"protocol_errors"`
	MemoryBytes     int64            `json:"memory_bytes"`
	MemoryPeakBytes int64            `json:"memory_peak_bytes"`
	MemoryLimit     int64            `json:"memory_limit_bytes"`
	MemoryCuts      int64            `json:"memory_cuts"`
	Accepted        int64            `json:"connections_accepted"`
	Joined          int64            `json:"joins"`
	Reloads         int64            `json:"reloads"`         // SIGHUPs handled
	ReloadFailures  int64            `json:"reload_failures"` // those where a file failed to load
	LastReload      *reloadResult    `json:"last_reload,omitempty"`
	InternalErrors  int64            `json:"internal_errors"`
	Nodes           int              `json:"nodes"`                // nodes of the bus this server sees, itself included
	NodeNames       []string         `json:"node_names,omitempty"` // their names, this node first
	Channels        []channelReport  `json:"channels"`
}

// channelReport is one channel of a statusReport.
type channelReport struct {
	ID               string           `json:"id"`
	Name             string           `json:"name,omitempty"` // from serve --tokens or a client's join
	Clients          int              `json:"clients"`
	ReceiversWaiting int              `json:"receivers_waiting"`
	Queued           int              `json:"queued"`
	QueuedBytes      int64            `json:"queued_bytes"`
	InFlight         int              `json:"in_flight"`
	Requests         map[string]int64 `json:"requests"` // ended requests by outcome, since the channel was created
	// RemoteClients counts the channel's clients on the other nodes of
	// the bus, by node name.
	RemoteClients map[string]int `json:"remote_clients,omitempty"`
}

// newStatusReport builds the report of a Stats snapshot; name gives the
// names of the channels it knows that Stats does not name.
func newStatusReport(st server.Stats, draining bool, name func(socketbus.ID) string) statusReport {
	b := readBuildInfo()
	r := statusReport{
		Version:         b.version,
		Revision:        b.revision,
		GoVersion:       b.goVer,
		StartTime:       st.StartTime,
		UptimeSeconds:   time.Since(st.StartTime).Seconds(),
		Refused:         st.Refusals,
		Cut:             st.Cuts,
		ProtocolErrors:  st.ProtocolErrors,
		MemoryBytes:     st.MemoryBytes,
		MemoryPeakBytes: st.MemoryPeakBytes,
		MemoryLimit:     st.MemoryLimit,
		MemoryCuts:      st.MemoryCuts,
		Accepted:        st.Accepted,
		Joined:          st.Joined,
		InternalErrors:  st.InternalErrors,
		Nodes:           st.Nodes,
		NodeNames:       st.NodeNames,
		Draining:        draining,
		Connections:     st.Connections,
		InFlight:        st.InFlight,
		RequestsStarted: st.RequestsStarted,
		Requests:        st.Requests,
		Gathers:         st.Gathers,
		Publishes:       st.Publishes,
		GatherReplies:   st.GatherReplies,
		FramesIn:        st.FramesIn,
		FramesOut:       st.FramesOut,
		BytesIn:         st.BytesIn,
		BytesOut:        st.BytesOut,
		Channels:        make([]channelReport, 0, len(st.Channels)),
	}
	for _, c := range st.Channels {
		n := c.Name
		if n == "" {
			n = name(c.ID)
		}
		r.Channels = append(r.Channels, channelReport{
			ID: c.ID.String(), Name: n, Clients: c.Clients, ReceiversWaiting: c.ReceiversWaiting,
			Queued: c.Queued, QueuedBytes: c.QueuedBytes, InFlight: c.InFlight, Requests: c.Requests,
			RemoteClients: c.Remote,
		})
	}
	return r
}

// connzReport is the JSON of the monitor's /connz: the open connections,
// oldest first.
type connzReport struct {
	Now         time.Time    `json:"now"`
	Total       int          `json:"total"` // open connections, however many ?limit= lists
	Connections []connReport `json:"connections"`
}

// connReport is one connection of a connzReport. Durations are in seconds.
type connReport struct {
	Remote      string  `json:"remote"`
	TLS         bool    `json:"tls"`
	Joined      bool    `json:"joined"` // false while in its TLS handshake or join
	Client      string  `json:"client,omitempty"`
	Channel     string  `json:"channel,omitempty"`
	ChannelName string  `json:"channel_name,omitempty"`
	AgeSeconds  float64 `json:"age_seconds"`
	IdleSeconds float64 `json:"idle_seconds"` // since the client last sent a frame
	Sending     int     `json:"sending"`      // requests it sent, not yet ended
	Receiving   int     `json:"receiving"`    // requests it took as a receiver, not yet ended
	Polls       int     `json:"polls"`        // Receive calls waiting
	Sent        int64   `json:"sent"`         // requests it sent
	Received    int64   `json:"received"`     // requests it took
	FramesIn    int64   `json:"frames_in"`
	FramesOut   int64   `json:"frames_out"`
	BytesIn     int64   `json:"bytes_in"`
	BytesOut    int64   `json:"bytes_out"`
	QueuedBytes int64   `json:"queued_bytes"` // queued for the client, not yet written
	MemoryBytes int64   `json:"memory_bytes"` // held on its account
}

// newConnzReport builds the report of a Conns snapshot; name names the
// channels the snapshot does not.
func newConnzReport(conns []server.ConnStats, name func(socketbus.ID) string) connzReport {
	r := connzReport{Now: time.Now(), Connections: make([]connReport, 0, len(conns))}
	for _, c := range conns {
		cr := connReport{Remote: c.RemoteAddr, TLS: c.TLS, Joined: c.Joined, AgeSeconds: c.Age.Seconds()}
		if c.Joined {
			cr.Client, cr.Channel, cr.ChannelName = c.ClientID.String(), c.Channel.String(), c.ChannelName
			if cr.ChannelName == "" {
				cr.ChannelName = name(c.Channel)
			}
			cr.IdleSeconds = c.Idle.Seconds()
			cr.Sending, cr.Receiving, cr.Polls, cr.Sent, cr.Received = c.Sending, c.Receiving, c.Polls, c.Sent, c.Received
			cr.FramesIn, cr.FramesOut, cr.BytesIn, cr.BytesOut = c.FramesIn, c.FramesOut, c.BytesIn, c.BytesOut
			cr.QueuedBytes, cr.MemoryBytes = c.QueuedBytes, c.MemoryBytes
		}
		r.Connections = append(r.Connections, cr)
	}
	return r
}

// monitor is serve's monitoring HTTP endpoint: /metrics for Prometheus,
// /healthz for load balancers, /status and /connz for socketbus status.
// It has no authentication: it listens on loopback unless told otherwise
// (SECURITY.md).
type monitor struct {
	srv      *server.Server
	files    *reloadable
	names    func(socketbus.ID) string
	draining atomic.Bool // set when the server starts shutting down
	http     *http.Server
	done     chan error   // receives Serve's result
	scrapes  *scrapeLimit // bounds the snapshots taken at once (monitor_limit.go)
}

// startMonitor serves the monitoring endpoint on ln for srv, whose bus
// listens on bus.
func startMonitor(ln net.Listener, srv *server.Server, bus string, files *reloadable, maxChannels int, log *slog.Logger) *monitor {
	m := &monitor{srv: srv, files: files, names: files.name, done: make(chan error, 1), scrapes: newScrapeLimit()}
	reg := prometheus.NewRegistry()
	stats := newStatsCollector(srv.Stats)
	stats.maxChannels = maxChannels
	reg.MustRegister(
		stats,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "socketbus_reloads_total", Help: "SIGHUP reloads of the tokens and the certificate."},
			func() float64 { return float64(files.reloads.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "socketbus_reload_failures_total", Help: "Reloads in which a file failed to load (its old settings were kept)."},
			func() float64 { return float64(files.failures.Load()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.scrapes.limit(promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	})))
	mux.HandleFunc("GET /healthz", m.healthz) // constant cost: not limited
	mux.Handle("GET /status", m.scrapes.limit(http.HandlerFunc(m.status)))
	mux.Handle("GET /connz", m.scrapes.limit(http.HandlerFunc(m.connz)))
	m.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       monitorIdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	limited := &connLimitListener{Listener: ln, max: maxMonitorConns}
	go func() { m.done <- m.http.Serve(&monitorListener{Listener: limited, bus: bus}) }()
	return m
}

// healthz answers 200 while the server takes requests and 503 once it
// drains, so that a load balancer stops sending new clients.
func (m *monitor) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if m.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	fmt.Fprintln(w, "ok")
}

// status answers the statusReport as JSON.
func (m *monitor) status(w http.ResponseWriter, _ *http.Request) {
	rep := newStatusReport(m.srv.Stats(), m.draining.Load(), m.names)
	rep.Reloads, rep.ReloadFailures, rep.LastReload = m.files.reloads.Load(), m.files.failures.Load(), m.files.last.Load()
	writeJSON(w, rep)
}

// connzSorts are the orders /connz?sort= takes, each largest first, and
// age (oldest first) the default.
var connzSorts = map[string]func(a, b *server.ConnStats) int{
	"age":       func(a, b *server.ConnStats) int { return cmp.Compare(b.Age, a.Age) },
	"idle":      func(a, b *server.ConnStats) int { return cmp.Compare(b.Idle, a.Idle) },
	"bytes_in":  func(a, b *server.ConnStats) int { return cmp.Compare(b.BytesIn, a.BytesIn) },
	"bytes_out": func(a, b *server.ConnStats) int { return cmp.Compare(b.BytesOut, a.BytesOut) },
	"queued":    func(a, b *server.ConnStats) int { return cmp.Compare(b.QueuedBytes, a.QueuedBytes) },
	"memory":    func(a, b *server.ConnStats) int { return cmp.Compare(b.MemoryBytes, a.MemoryBytes) },
	"sending":   func(a, b *server.ConnStats) int { return cmp.Compare(b.Sending, a.Sending) },
	"receiving": func(a, b *server.ConnStats) int { return cmp.Compare(b.Receiving, a.Receiving) },
}

// connz answers the connzReport as JSON: ?sort= one of connzSorts,
// ?limit=N the first N only (Total still counts them all).
func (m *monitor) connz(w http.ResponseWriter, r *http.Request) {
	conns := m.srv.Conns()
	if by := r.URL.Query().Get("sort"); by != "" {
		order, ok := connzSorts[by]
		if !ok {
			http.Error(w, fmt.Sprintf("sort=%q: want one of age, idle, bytes_in, bytes_out, queued, memory, sending, receiving", by), http.StatusBadRequest)
			return
		}
		slices.SortStableFunc(conns, func(a, b server.ConnStats) int { return order(&a, &b) })
	}
	total := len(conns)
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			http.Error(w, fmt.Sprintf("limit=%q: want a count", l), http.StatusBadRequest)
			return
		}
		conns = conns[:min(n, len(conns))]
	}
	writeConnz(w, conns, total, m.names)
}

// writeConnz answers the connzReport of conns as indented JSON, encoding
// one connection at a time, so that a scrape holds the snapshot and not
// a second copy of it as a report and a third as text.
func writeConnz(w http.ResponseWriter, conns []server.ConnStats, total int, name func(socketbus.ID) string) {
	w.Header().Set("Content-Type", "application/json")
	head, _ := json.Marshal(time.Now())
	bw := bufio.NewWriterSize(w, 16<<10)
	fmt.Fprintf(bw, "{\n  \"now\": %s,\n  \"total\": %d,\n  \"connections\": [", head, total)
	for i := range conns {
		rep := newConnzReport(conns[i:i+1], name)
		b, _ := json.MarshalIndent(rep.Connections[0], "    ", "  ")
		if i > 0 {
			bw.WriteString(",")
		}
		bw.WriteString("\n    ")
		bw.Write(b)
	}
	if len(conns) > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	// An error here means the client went away; there is no one to tell.
	_ = bw.Flush()
}

// writeJSON answers v as indented JSON.
func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// An error here means the client went away; there is no one to tell.
	_ = enc.Encode(v)
}

// shutdown stops the endpoint, waiting for scrapes in progress until ctx
// ends.
func (m *monitor) shutdown(ctx context.Context) error {
	err := m.http.Shutdown(ctx)
	if serr := <-m.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	return nil
}
