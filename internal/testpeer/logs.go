package testpeer

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus/server"
)

// LogRecord is one captured log line: its level, message and attributes
// as strings.
type LogRecord struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

func (r LogRecord) String() string { return fmt.Sprintf("%s %q %v", r.Level, r.Msg, r.Attrs) }

// Logs is a slog.Handler that keeps every record and wakes
// waiters through a capacity-1 kick channel.
type Logs struct {
	level slog.Level

	mu      sync.Mutex
	records []LogRecord
	kick    chan struct{}
}

// NewLogs returns a handler that keeps the records at level and above.
func NewLogs(level slog.Level) *Logs {
	return &Logs{level: level, kick: make(chan struct{}, 1)}
}

// Enabled, WithAttrs, WithGroup and Handle implement slog.Handler.
func (h *Logs) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *Logs) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *Logs) WithGroup(string) slog.Handler                { return h }

func (h *Logs) Handle(_ context.Context, r slog.Record) error {
	rec := LogRecord{Level: r.Level, Msg: r.Message, Attrs: make(map[string]string)}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.String()
		return true
	})
	h.mu.Lock()
	h.records = append(h.records, rec)
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
	return nil
}

// All returns a copy of the records so far.
func (h *Logs) All() []LogRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]LogRecord(nil), h.records...)
}

// Find returns the records with message msg whose attributes include want.
func (h *Logs) Find(msg string, want map[string]string) []LogRecord {
	var out []LogRecord
	for _, r := range h.All() {
		if r.Msg != msg {
			continue
		}
		match := true
		for k, v := range want {
			if r.Attrs[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, r)
		}
	}
	return out
}

// Wait blocks until a record with message msg and attributes want has
// been logged, and returns it.
func (h *Logs) Wait(t testing.TB, msg string, want map[string]string) LogRecord {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for {
		if rs := h.Find(msg, want); len(rs) > 0 {
			return rs[0]
		}
		select {
		case <-h.kick:
		case <-timer.C:
			t.Fatalf("no log line %q with %v within 30s; got:\n%v", msg, want, h.All())
		}
	}
}

// WaitCount blocks until n records with message msg and attributes want
// have been logged.
func (h *Logs) WaitCount(t testing.TB, msg string, want map[string]string, n int) {
	t.Helper()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	for len(h.Find(msg, want)) < n {
		select {
		case <-h.kick:
		case <-timer.C:
			t.Fatalf("fewer than %d log lines %q with %v within 30s; got:\n%v", n, msg, want, h.All())
		}
	}
}

// LoggedServer starts a server with cfg that logs to a capture handler.
func LoggedServer(t testing.TB, cfg server.Config) (*server.Server, string, *Logs) {
	t.Helper()
	logs := NewLogs(slog.LevelDebug)
	cfg.Logger = slog.New(logs)
	srv, addr := StartServer(t, cfg)
	return srv, addr, logs
}

// addrDialer is a DialOption that records the local address of the
