package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// What the server logs (Config.Logger), and the counters behind the
// refusals and cuts in Stats. A connection that joins logs one info line
// when it joins and one when it ends; a connection the server cuts or
// refuses logs one warning instead, rate-limited per source (warnLimiter).

// Why a connection was refused or cut, as logs and Stats name it.
const (
	reasonProtocol     = "protocol"      // a malformed frame or join (Stats.ProtocolErrors has the code)
	reasonUnauthorized = "unauthorized"  // Authenticate refused the join
	reasonLimit        = "limit"         // MaxConnections, or the memory budget, refused the connection or join
	reasonJoinTimeout  = "join_timeout"  // no complete TLS handshake and join within JoinTimeout
	reasonConflict     = "conflict"      // the client ID is already connected to the channel
	reasonTLS          = "tls"           // the TLS handshake failed
	reasonHTTP         = "http"          // an HTTP request on the bus port
	reasonSlowConsumer = "slow_consumer" // too much queued for a peer that does not read, or a write timed out
	reasonKeepalive    = "keepalive"     // two keepalive pings went unanswered
	reasonFrameTimeout = "frame_timeout" // a frame did not arrive whole within FrameReadTimeout
	reasonMemory       = "memory"        // cut because the memory budget passed its high-water mark
	reasonInternal     = "internal"      // the server failed handling the connection's frames (Stats.InternalErrors)
)

// opsCounters counts refusals and cuts. Its maps are small (a few reasons,
// a few codes) and touched once per refused or cut connection.
type opsCounters struct {
	mu             sync.Mutex
	refusals       map[string]int64
	cuts           map[string]int64
	protocolErrors map[string]int64
}

func (o *opsCounters) count(m *map[string]int64, key string) {
	o.mu.Lock()
	if *m == nil {
		*m = make(map[string]int64)
	}
	(*m)[key]++
	o.mu.Unlock()
}

// snapshot fills st's counters.
func (o *opsCounters) snapshot(st *Stats) {
	o.mu.Lock()
	defer o.mu.Unlock()
	st.Refusals = maps(o.refusals)
	st.Cuts = maps(o.cuts)
	st.ProtocolErrors = maps(o.protocolErrors)
}

func maps(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// refusal classifies why a connection failed to join: a reason, and the
// protocol error code when the reason is protocol. ok is false for a
// connection that simply went away (or the server shutting down), which is
// not worth a warning.
func refusal(err error) (reason string, code wire.Code, ok bool) {
	var werr *wire.Error
	switch {
	case errors.Is(err, errHTTPClient):
		return reasonHTTP, 0, true
	case errors.Is(err, errTLSHandshake):
		if frameconn.IsTimeout(err) {
			return reasonJoinTimeout, 0, true
		}
		return reasonTLS, 0, true
	case errors.As(err, &werr):
		switch werr.Code {
		case wire.CodeUnauthorized:
			return reasonUnauthorized, 0, true
		case wire.CodeLimit:
			return reasonLimit, 0, true
		case wire.CodeIdle:
			return reasonJoinTimeout, 0, true
		case wire.CodeConflict:
			return reasonConflict, 0, true
		case wire.CodeServerClosed:
			return "", 0, false
		}
		return reasonProtocol, werr.Code, true
	}
	return "", 0, false
}

// cut classifies why a joined connection ended: the reason, the protocol
// error code when it is protocol, and whether the server cut it (a
// warning) rather than the client or a shutdown ending it.
func cut(err error) (reason string, code wire.Code, byServer bool) {
	var werr *wire.Error
	switch {
	case err == nil, errors.Is(err, wire.ErrServerClosed):
		return "server shutting down", 0, false
	case errors.Is(err, frameconn.ErrSlowConsumer):
		return reasonSlowConsumer, 0, true
	case errors.Is(err, frameconn.ErrIdle):
		return reasonKeepalive, 0, true
	case errors.Is(err, errMemoryCut):
		return reasonMemory, 0, true
	case errors.As(err, &werr) && werr.Code == wire.CodeIdle:
		return reasonFrameTimeout, 0, true
	case errors.As(err, &werr) && werr.Code == wire.CodeInternal:
		return reasonInternal, 0, true
	case errors.As(err, &werr):
		return reasonProtocol, werr.Code, true
	case frameconn.IsTimeout(err):
		// Read timeouts are frame_timeout (above): this one is a write's,
		// the WriteTimeout of a client that does not read.
		return reasonSlowConsumer, 0, true
	case errors.Is(err, errClientErrorFrame):
		return "client sent an error frame", 0, false
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		return "client closed", 0, false
	}
	return "connection failed", 0, false
}

// errClientErrorFrame is why a connection ends when its client sends a
// connection-level error frame.
var errClientErrorFrame = errors.New("socketbus: client closed the connection with an error frame")

// errTLSHandshake marks a failed TLS handshake.
var errTLSHandshake = errors.New("socketbus: TLS handshake")

// The warning limiter's bounds: per window, each source (remote IP and
// reason) logs at most warnBurst warnings and all sources together at most
// warnMax; the rest are counted and logged as one "warnings suppressed"
// line when the window ends (or the server stops). At most warnSources
// sources are told apart in a window; the others share the source "other".
const (
	warnWindow  = 10 * time.Second
	warnBurst   = 5
	warnMax     = 50
	warnSources = 256
)

// warnLimiter rate-limits the server's warnings about connections, so that
// a flood of bad connections cannot flood the log.
type warnLimiter struct {
	log    *slog.Logger
	window time.Duration

	mu         sync.Mutex
	start      time.Time // of the current window
	logged     int       // warnings logged in the window
	sources    map[warnSource]*warnCount
	suppressed int64
	timer      *time.Timer // flushes the window's suppressed count
}

type warnSource struct{ ip, reason string }

type warnCount struct{ logged, suppressed int64 }

func newWarnLimiter(log *slog.Logger) *warnLimiter {
	return &warnLimiter{log: log, window: warnWindow, sources: make(map[warnSource]*warnCount)}
}

// warn logs msg with args unless the source has used its share of the
// window, in which case it only counts it.
func (l *warnLimiter) warn(remote, reason, msg string, args ...any) {
	ip := remote
	if host, _, err := net.SplitHostPort(remote); err == nil {
		ip = host
	}
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.start) >= l.window {
		l.flushLocked()
		l.start = now
	}
	src := warnSource{ip, reason}
	n := l.sources[src]
	if n == nil {
		if len(l.sources) >= warnSources {
			src.ip = "other"
			n = l.sources[src]
		}
		if n == nil {
			n = &warnCount{}
			l.sources[src] = n
		}
	}
	if n.logged >= warnBurst || l.logged >= warnMax {
		n.suppressed++
		l.suppressed++
		if l.timer == nil {
			l.timer = time.AfterFunc(l.window-now.Sub(l.start), l.flush)
		}
		l.mu.Unlock()
		return
	}
	n.logged++
	l.logged++
	l.mu.Unlock()
	l.log.Warn(msg, args...)
}

// flush logs what the window suppressed and starts a new window.
func (l *warnLimiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
	l.start = time.Now()
}

func (l *warnLimiter) flushLocked() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.suppressed > 0 {
		type top struct {
			src warnSource
			n   int64
		}
		var tops []top
		for src, n := range l.sources {
			if n.suppressed > 0 {
				tops = append(tops, top{src, n.suppressed})
			}
		}
		slices.SortFunc(tops, func(a, b top) int { return int(b.n - a.n) })
		var b strings.Builder
		for i, t := range tops[:min(len(tops), 5)] {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s: %d", t.src.ip, t.src.reason, t.n)
		}
		l.log.Warn("warnings suppressed", "count", l.suppressed, "sources", len(tops), "top", b.String(),
			"since", l.start.Format(time.RFC3339))
	}
	l.logged = 0
	l.suppressed = 0
	clear(l.sources)
}

// logRefusal counts and logs a connection that did not join.
func (c *serverConn) logRefusal(err error) {
	s := c.s
	reason, code, ok := refusal(err)
	if !ok {
		if s.debug {
			s.log.Debug("connection closed before joining", "remote", c.remote, "err", err)
		}
		return
	}
	s.ops.count(&s.ops.refusals, reason)
	args := []any{"remote", c.remote, "reason", reason, "err", err}
	if reason == reasonProtocol {
		s.ops.count(&s.ops.protocolErrors, code.String())
		args = append(args, "code", code.String())
	}
	if c.join != nil {
		args = append(args, "client", uuid.UUID(c.join.ClientID), "channel", uuid.UUID(c.join.ChannelID))
		if name := s.channelName(c.join.ChannelID); name != "" {
			args = append(args, "channel_name", name)
		}
	}
	s.warns.warn(c.remote, reason, "connection refused", args...)
}

// logJoined logs a connection that has joined.
func (c *serverConn) logJoined() {
	args := []any{"remote", c.remote, "client", uuid.UUID(c.member.ID()), "channel", uuid.UUID(c.member.Channel())}
	if c.name != "" {
		args = append(args, "channel_name", c.name)
	}
	c.s.log.Info("connection joined", append(args, "tls", c.tls)...)
}

// logClosed counts and logs the end of a joined connection.
func (c *serverConn) logClosed() {
	s := c.s
	err := c.conn.Err()
	reason, code, byServer := cut(err)
	ms := c.member.Stats()
	args := []any{"remote", c.remote, "client", uuid.UUID(c.member.ID()), "channel", uuid.UUID(c.member.Channel())}
	if c.name != "" {
		args = append(args, "channel_name", c.name)
	}
	args = append(args, "reason", reason)
	if reason == reasonProtocol {
		args = append(args, "code", code.String())
	}
	args = append(args, "duration", time.Since(c.accepted).Round(time.Millisecond),
		"requests_sent", ms.Sent, "requests_received", ms.Received,
		"bytes_in", c.conn.BytesIn.Load(), "bytes_out", c.conn.BytesOut.Load())
	if !byServer {
		if reason == "connection failed" {
			args = append(args, "err", err)
		}
		s.log.Info("connection closed", args...)
		return
	}
	s.ops.count(&s.ops.cuts, reason)
	if reason == reasonProtocol {
		s.ops.count(&s.ops.protocolErrors, code.String())
	}
	s.warns.warn(c.remote, reason, "connection cut", append(args, "err", err)...)
}

// logFrame logs a request's lifecycle frames at debug. It is called only
// when the logger has debug enabled. A version-2 whole message (a start
// frame with the final bit) is both a stream's start and its end, and is
// logged as both, so that the log reads the same whichever version the
// client speaks.
func (c *serverConn) logFrame(h *wire.Header) {
	var what, end string
	switch {
	case h.Flags == wire.FlagRequest && h.Type == wire.TypeStart:
		what, end = "request started", "request body sent"
	case h.Flags == wire.FlagRequest && h.Type == wire.TypeEnd:
		what = "request body sent"
	case h.Flags == wire.FlagRequest && h.Type == wire.TypeError:
		what = "request cancelled"
	case h.Flags == wire.FlagReceive && h.Type == wire.TypeStart:
		what = "receive waiting"
	case h.Flags == wire.FlagResponse && h.Type == wire.TypeStart:
		what, end = "response started", "response sent"
	case h.Flags == wire.FlagResponse && h.Type == wire.TypeEnd:
		what = "response sent"
	case h.Flags == wire.FlagResponse && h.Type == wire.TypeError:
		what = "request failed by its receiver"
	default:
		return
	}
	c.logFrameLine(what, h)
	if end != "" && h.Final {
		c.logFrameLine(end, h)
	}
}

func (c *serverConn) logFrameLine(what string, h *wire.Header) {
	c.s.log.LogAttrs(context.Background(), slog.LevelDebug, what, slog.String("remote", c.remote),
		slog.String("client", uuid.UUID(h.ClientID).String()), slog.String("request", uuid.UUID(h.RequestID).String()))
}
