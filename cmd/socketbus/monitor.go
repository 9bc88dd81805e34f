package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/socketbus/socketbus"
)

// statusReport is the JSON of the monitor's /status, which socketbus
// status prints.
type statusReport struct {
	Draining        bool             `json:"draining"`
	Connections     int              `json:"connections"`
	InFlight        int64            `json:"in_flight"`
	RequestsStarted int64            `json:"requests_started"`
	Requests        map[string]int64 `json:"requests"` // ended requests by outcome
	FramesIn        int64            `json:"frames_in"`
	FramesOut       int64            `json:"frames_out"`
	BytesIn         int64            `json:"bytes_in"`
	BytesOut        int64            `json:"bytes_out"`
	Channels        []channelReport  `json:"channels"`
}

// channelReport is one channel of a statusReport.
type channelReport struct {
	ID               string `json:"id"`
	Name             string `json:"name,omitempty"` // known from serve --tokens
	Clients          int    `json:"clients"`
	ReceiversWaiting int    `json:"receivers_waiting"`
	Queued           int    `json:"queued"`
	QueuedBytes      int64  `json:"queued_bytes"`
	InFlight         int    `json:"in_flight"`
}

// newStatusReport builds the report of a Stats snapshot; name gives the
// names of the channels it knows.
func newStatusReport(st socketbus.Stats, draining bool, name func(socketbus.ID) string) statusReport {
	r := statusReport{
		Draining:        draining,
		Connections:     st.Connections,
		InFlight:        st.InFlight,
		RequestsStarted: st.RequestsStarted,
		Requests:        st.Requests,
		FramesIn:        st.FramesIn,
		FramesOut:       st.FramesOut,
		BytesIn:         st.BytesIn,
		BytesOut:        st.BytesOut,
		Channels:        make([]channelReport, 0, len(st.Channels)),
	}
	for _, c := range st.Channels {
		r.Channels = append(r.Channels, channelReport{
			ID: c.ID.String(), Name: name(c.ID), Clients: c.Clients, ReceiversWaiting: c.ReceiversWaiting,
			Queued: c.Queued, QueuedBytes: c.QueuedBytes, InFlight: c.InFlight,
		})
	}
	return r
}

// monitor is serve's monitoring HTTP endpoint: /metrics for Prometheus,
// /healthz for load balancers and /status for socketbus status.
type monitor struct {
	srv      *socketbus.Server
	names    func(socketbus.ID) string
	draining atomic.Bool // set when the server starts shutting down
	http     *http.Server
	done     chan error // receives Serve's result
}

// startMonitor serves the monitoring endpoint on ln for srv, whose bus
// listens on bus.
func startMonitor(ln net.Listener, srv *socketbus.Server, bus string, names func(socketbus.ID) string, log *slog.Logger) *monitor {
	m := &monitor{srv: srv, names: names, done: make(chan error, 1)}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newStatsCollector(srv.Stats),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /healthz", m.healthz)
	mux.HandleFunc("GET /status", m.status)
	m.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() { m.done <- m.http.Serve(&monitorListener{Listener: ln, bus: bus}) }()
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
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// An error here means the client went away; there is no one to tell.
	_ = enc.Encode(rep)
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
