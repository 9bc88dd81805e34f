package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/testhook"
	"github.com/socketbus/socketbus/internal/wire"
)

// Server routes requests between the clients joined to each channel. Create
// one with New, then call Serve or ListenAndServe.
type Server struct {
	cfg    Config
	router *router.Router
	memory *budget.Account // the root of the memory budget (server_memory.go)
	reaper reaper

	log            *slog.Logger // cfg.Logger, or one that discards
	debug          bool         // log has debug enabled (checked once, by New)
	warns          *warnLimiter // rate-limits warnings about connections (server_log.go)
	ops            opsCounters  // refusals and cuts
	names          channelNames // channel names clients gave when joining
	started        time.Time
	internalErrors atomic.Int64 // panics recovered while handling frames
	cluster        Cluster      // Config.Cluster once attached (cluster.go); nil if none, or if it did not attach
	clusterErr     error        // why Config.Cluster did not attach; Serve returns it
	clusterOnce    sync.Once
	accepted       atomic.Int64 // connections accepted
	joined         atomic.Int64 // connections that joined

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	shutdown  bool
	done      chan struct{} // closed by Shutdown and Close
	retired   traffic       // traffic of closed connections

	wg sync.WaitGroup // connection goroutines
}

// New returns a server configured by cfg (zero fields take their
// defaults).
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:       cfg,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
		done:      make(chan struct{}),
		log:       cfg.Logger,
		started:   time.Now(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.debug = s.log.Enabled(context.Background(), slog.LevelDebug)
	s.warns = newWarnLimiter(s.log)
	s.memory = budget.New(cfg.MaxMemory, s.memoryPressure)
	s.router = router.New(router.Config{
		DefaultTimeout:              cfg.DefaultTimeout,
		MaxMessageBytes:             cfg.MaxMessageBytes,
		MaxHeaderBytes:              cfg.MaxHeaderBytes,
		MaxGatherMembers:            cfg.MaxGatherMembers,
		Window:                      cfg.StreamWindow,
		MaxChannelQueueBytes:        cfg.MaxChannelQueueBytes,
		MaxInFlightPerClient:        cfg.MaxInFlightPerClient,
		MaxQueuedRequestsPerChannel: cfg.MaxQueuedRequestsPerChannel,
		MaxPollsPerClient:           cfg.MaxInFlightPerClient,
		Memory:                      s.memory,
		MemoryPerChannel:            cfg.MaxMemory / 4,
		MemoryPerMember:             cfg.MaxMemory / 16,
	})
	s.attachCluster()
	return s
}

// ListenAndServe listens on the TCP address addr and serves it. It always
// returns a non-nil error; after Shutdown or Close, an error matching
// socketbus.ErrServerClosed; at once, when Config.Cluster did not attach,
// that error, as Serve.
func (s *Server) ListenAndServe(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("socketbus: listen: %w", err)
	}
	return s.Serve(ln)
}

// track registers ln, for Shutdown and Close to close, unless the server
// is shut down already (wire.ErrServerClosed) or its Cluster did not
// attach (that error): then it closes ln and returns the error.
func (s *Server) track(ln net.Listener) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.shutdown:
		ln.Close()
		return wire.ErrServerClosed
	case s.clusterErr != nil:
		ln.Close()
		return s.clusterErr
	}
	s.listeners[ln] = struct{}{}
	return nil
}

// untrack forgets ln and closes it: its Serve has returned.
func (s *Server) untrack(ln net.Listener) {
	s.mu.Lock()
	delete(s.listeners, ln)
	s.mu.Unlock()
	ln.Close()
}

// Serve accepts connections on ln and serves each in its own goroutines.
// It closes ln when it returns. It always returns a non-nil error; after
// Shutdown or Close, an error matching socketbus.ErrServerClosed; at once,
// when Config.Cluster did not attach, that error (one matching
// ErrClusterInUse if the Cluster serves another Server).
func (s *Server) Serve(ln net.Listener) error {
	if err := s.track(ln); err != nil {
		return err
	}
	defer s.untrack(ln)

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return wire.ErrServerClosed
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Out of file descriptors and the like: wait a little, as
				// net/http does, instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				t := time.NewTimer(backoff)
				select {
				case <-t.C:
				case <-s.done:
					t.Stop()
					return wire.ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("socketbus: accept: %w", err)
		}
		backoff = 0
		s.startConn(nc)
	}
}

// Shutdown stops the server gracefully: it stops accepting connections and
// new requests, fails every queued request with socketbus.ErrServerClosed at its
// sender, lets requests already taken by a receiver finish, then closes
// every connection. If ctx ends first, Shutdown closes the connections at
// once and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	begun := time.Now()
	s.router.Refuse() // before the notice: nothing read after it is delivered
	s.noticeDrain()
	if hooks := testhook.For(s); hooks != nil && hooks.Noticed != nil {
		hooks.Noticed()
	}
	live := s.router.InFlight()
	s.beginShutdown()
	// beginShutdown failed the queued requests; those left are the ones
	// receivers hold, which the drain waits for.
	left := s.router.InFlight()
	s.log.Info("draining", "requests_in_flight", left, "queued_requests_failed", max(live-left, 0), "connections", s.connCount())
	defer s.warns.flush()
	var err error
	for s.router.InFlight() > 0 {
		select {
		case <-s.router.Idle():
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		left, conns := s.router.InFlight(), s.connCount()
		s.closeConnsNow()
		s.log.Warn("drain cut short: closed connections with requests still in flight",
			"requests_cut", left, "connections", conns, "waited", time.Since(begun).Round(time.Millisecond), "err", err)
	} else {
		// Let the last responses reach their senders before closing.
		s.closeConnsAfterFlush(ctx)
		err = ctx.Err()
		if err != nil {
			s.log.Warn("drain cut short while flushing the last responses", "waited", time.Since(begun).Round(time.Millisecond), "err", err)
		} else {
			s.log.Info("drained", "waited", time.Since(begun).Round(time.Millisecond))
		}
	}
	return err
}

// connCount returns the number of open connections.
func (s *Server) connCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// noticeDrain tells every joined client that the server is shutting down:
// a drain ping (docs/PROTOCOL.md section 17), which goes ahead of the
// server_closed errors for queued requests on each connection, so that
// clients re-send those elsewhere or after the restart. The router
// refuses new requests before it is sent, so that a request a client
// writes after reading it reaches no receiver.
func (s *Server) noticeDrain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.conn == nil || c.member == nil {
			continue
		}
		h := wire.Header{Version: c.conn.Version(), Type: wire.TypeStart, Flags: wire.FlagPing, Final: true,
			RequestID: wire.DrainPingID, ClientID: c.member.ID(), ChannelID: c.member.Channel()}
		_ = c.conn.Enqueue(frame.Frame{Header: h})
	}
}

// Close stops the server at once: listeners and connections are closed and
// requests in flight end with errors. Serve returns an error matching socketbus.ErrServerClosed.
func (s *Server) Close() error {
	s.beginShutdown()
	s.closeConnsNow()
	s.warns.flush()
	return nil
}

func (s *Server) beginShutdown() {
	s.mu.Lock()
	if !s.shutdown {
		s.shutdown = true
		close(s.done)
		for ln := range s.listeners {
			ln.Close()
		}
	}
	s.mu.Unlock()
	s.router.Close()
}

// closeConnsNow closes every connection at once and waits for their
// goroutines. Every connection stops taking frames before any closes, so
// a client hears of its own connection's end, not first of another's (a
// request's sender gone) on a connection about to end.
func (s *Server) closeConnsNow() {
	conns := s.connList()
	for _, c := range conns {
		s.mu.Lock()
		conn := c.conn
		s.mu.Unlock()
		if conn != nil {
			conn.Refuse(wire.ErrServerClosed)
		}
	}
	for _, c := range conns {
		s.mu.Lock()
		conn, nc := c.conn, c.nc
		s.mu.Unlock()
		if conn != nil {
			conn.Close(wire.ErrServerClosed)
		} else {
			nc.Close() // still joining
		}
	}
	s.waitConns()
}

// closeConnsAfterFlush closes every connection gracefully: each first
// writes what is queued for it (the end of a response, say) and a
// server_closed error frame. When ctx ends first, the connections still
// open close at once (closeConnsNow).
func (s *Server) closeConnsAfterFlush(ctx context.Context) {
	for _, c := range s.connList() {
		s.mu.Lock()
		conn, nc := c.conn, c.nc
		s.mu.Unlock()
		if conn != nil {
			conn.CloseAfterFlush(frame.ErrorFrame(wire.Header{Version: conn.Version()}, wire.CodeServerClosed, "server is shutting down"), wire.ErrServerClosed)
		} else {
			nc.Close() // still joining
		}
	}
	stop := context.AfterFunc(ctx, s.closeConnsNow)
	defer stop()
	s.waitConns()
}

// connList returns the connections open now.
func (s *Server) connList() []*serverConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// waitConns waits for every connection's goroutines and the reaper's, then
// closes the cluster.
func (s *Server) waitConns() {
	s.wg.Wait()
	s.reaper.wg.Wait()
	s.closeCluster()
}

// logger returns where the server logs internal errors: Config.Logger,
// or slog.Default() without one, since a recovered panic is worth seeing
// even by a server that logs nothing else.
func (s *Server) logger() *slog.Logger {
	if s.cfg.Logger != nil {
		return s.cfg.Logger
	}
	return slog.Default()
}
