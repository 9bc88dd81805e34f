package server

import (
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/testhook"
	"github.com/socketbus/socketbus/internal/wire"
)

// serverConn is one client connection on the server. Its run goroutine
// performs the join; after that frameconn's reader goroutine owns member
// and calls handle, and other goroutines reach the connection only through
// conn.Enqueue (as a router.Peer) and conn.Close. s.mu guards conn and nc
// swaps during the join.
type serverConn struct {
	s      *Server
	nc     net.Conn
	conn   *frameconn.Conn // nil until joined
	member *router.Member

	// Set before the connection is shared, or by run before it joins.
	remote   string       // the remote address
	accepted time.Time    // when it was accepted
	tls      bool         // it speaks TLS
	ws       bool         // it came through ServeWebSocket: TLS, if any, is below the WebSocket
	name     string       // its channel's name, when known
	join     *wire.Header // its join's header, once read

	lastRead atomic.Int64 // when a frame last arrived from the client, in Unix nanoseconds

	handling wire.Header // the frame being handled; the reader goroutine's
}

// startConn registers an accepted connection and serves it.
func (s *Server) startConn(nc net.Conn) { s.startConnAs(&serverConn{s: s, nc: nc}) }

// startConnAs registers c, a connection just accepted, and serves it.
func (s *Server) startConnAs(c *serverConn) {
	nc := c.nc
	c.remote, c.accepted = nc.RemoteAddr().String(), time.Now()
	s.accepted.Add(1)
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		nc.Close()
		return
	}
	var refusal *wire.Error
	switch {
	case len(s.conns) >= s.cfg.MaxConnections:
		refusal = wire.Errorf(wire.CodeLimit, "the server is at its limit of %d connections", s.cfg.MaxConnections)
	case !s.memory.TryCharge(connFixedCost):
		refusal = wire.Errorf(wire.CodeLimit, "the server's memory budget is short")
	default:
		s.conns[c] = struct{}{}
	}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.run(refusal)
}

// run joins the connection and then waits for it to end.
func (c *serverConn) run(refusal *wire.Error) {
	s := c.s
	defer s.wg.Done()
	defer c.done()
	if refusal != nil {
		c.refuse(nil, refusal)
		c.logRefusal(refusal)
		return
	}
	defer s.memory.Release(connFixedCost)
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		if c.conn != nil {
			s.retired.add(c.conn)
		}
		s.mu.Unlock()
	}()
	join, err := c.handshake()
	if err != nil {
		c.join = join
		var werr *wire.Error
		if errors.As(err, &werr) {
			c.refuse(join, werr)
		} else {
			c.nc.Close()
		}
		c.logRefusal(err)
		return
	}
	s.joined.Add(1)
	c.logJoined()
	c.conn.Serve(c.handle) // this goroutine reads
	c.logClosed()
}

// done tells a test watching the server that c is gone.
func (c *serverConn) done() {
	if hooks := testhook.For(c.s); hooks != nil && hooks.ConnDone != nil {
		hooks.ConnDone()
	}
}

// refuse answers a connection that may not join with an error frame and
// closes it.
func (c *serverConn) refuse(join *wire.Header, werr *wire.Error) {
	h := wire.Header{Flags: wire.FlagJoin}
	if join != nil {
		h.RequestID, h.ClientID, h.ChannelID = join.RequestID, join.ClientID, join.ChannelID
		if join.Version == wire.Version2 || join.Version == wire.Version3 {
			h.Version = join.Version // answered in the version it asked for
		}
	}
	if werr.Code == wire.CodeProtocol || werr.Code == wire.CodeBadVersion || werr.Code == wire.CodeTooLarge {
		h.Flags = 0 // the connection itself was at fault
	}
	f := frame.ErrorFrame(h, werr.Code, werr.Message)
	f.Header.Length = uint32(len(f.Payload))
	buf := append(wire.AppendHeader(nil, &f.Header), f.Payload...)
	frame.PutBuffer(f.Payload)
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.nc.Write(buf)
	// Close gracefully: stop sending, then drain what the client sent (its
	// join, say) for a moment, so the error frame is read rather than lost
	// to a reset.
	if tc, ok := c.nc.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(time.Second))
		io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
	c.nc.Close()
}

// handshake runs the TLS handshake, if configured, and the join, all within
// JoinTimeout. On success the connection is a member of its channel and
// c.conn is ready to start.
func (c *serverConn) handshake() (*wire.Header, error) {
	s := c.s
	deadline := time.Now().Add(s.cfg.JoinTimeout)
	c.nc.SetDeadline(deadline)
	if c.ws {
		// ServeWebSocket has done the TLS handshake and the upgrade.
	} else if err := c.sniff(); err != nil {
		return nil, err
	}
	if s.cfg.TLSConfig != nil && !c.ws {
		tc := tls.Server(c.nc, serverTLS(s.cfg.TLSConfig))
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("%w: %w", errTLSHandshake, err)
		}
		s.mu.Lock()
		c.nc = tc
		c.tls = true
		s.mu.Unlock()
	}
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(c.nc, hdr[:]); err != nil {
		if frameconn.IsTimeout(err) {
			return nil, wire.Errorf(wire.CodeIdle, "no join within %s", s.cfg.JoinTimeout)
		}
		return nil, err
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil {
		return nil, err
	}
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin {
		return &h, wire.Errorf(wire.CodeProtocol, "the first frame must be a join (start, flags join), not %s %s", h.Type, h.Flags)
	}
	if h.Sequence != 0 || !h.Final || h.TimeoutMillis != 0 {
		return &h, wire.Errorf(wire.CodeProtocol, "a join is a lone start frame: sequence 0, final, timeout 0")
	}
	if !s.memory.TryCharge(int64(h.Length)) {
		return &h, wire.Errorf(wire.CodeLimit, "the server's memory budget is short")
	}
	defer s.memory.Release(int64(h.Length))
	token := make([]byte, h.Length)
	if _, err := io.ReadFull(c.nc, token); err != nil {
		if frameconn.IsTimeout(err) {
			return &h, wire.Errorf(wire.CodeIdle, "no join within %s", s.cfg.JoinTimeout)
		}
		return &h, err
	}
	tok, name, key, err := wire.ParseJoinPayload(token, h.ChannelID)
	if err != nil {
		return &h, err
	}
	c.name = name
	if auth := s.cfg.Authenticate; auth != nil {
		if err := auth(h.ClientID, h.ChannelID, tok); err != nil {
			return &h, wire.Errorf(wire.CodeUnauthorized, "join refused: %v", err)
		}
	}
	c.nc.SetDeadline(time.Time{})

	conn := frameconn.New(c.nc, frameconn.Config{
		WriteTimeout:    s.cfg.WriteTimeout,
		FrameDeadline:   s.cfg.FrameReadTimeout,
		PingInterval:    s.cfg.PingInterval,
		PingHeader:      wire.Header{ClientID: h.ClientID, ChannelID: h.ChannelID},
		MaxQueuedBytes:  serverQueuePause,
		MaxControlBytes: serverControlLimit,
		Version:         h.Version, // the join's version is the connection's
		InlineWrites:    true,      // a reader's burst is written by the reader, when it can
	})
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		return &h, wire.Errorf(wire.CodeServerClosed, "server is shutting down")
	}
	c.conn = conn
	s.mu.Unlock()
	m, err := s.router.JoinKeyed(h.ClientID, h.ChannelID, h.Version, key, c)
	if err != nil {
		return &h, err
	}
	conn.SetAccount(m.Account())
	// Every node of the bus sees the client before its Dial returns, and
	// none has its ID (docs/PROTOCOL.md section 21.5).
	if err := s.admit(m); err != nil {
		m.LeaveRefused()
		return &h, err
	}
	if c.name == "" {
		c.name = s.channelName(h.ChannelID)
	}
	c.lastRead.Store(time.Now().UnixNano())
	s.mu.Lock()
	c.member = m
	s.mu.Unlock()
	// The acknowledgement carries the server's settings: its body limit,
	// its limit on a connection's polls, held requests and push credit,
	// and its stream window (docs/PROTOCOL.md section 7).
	ack := wire.Header{Version: h.Version, Type: wire.TypeStart, Flags: wire.FlagJoin, RequestID: h.RequestID,
		ClientID: h.ClientID, ChannelID: h.ChannelID, Final: true}
	settings := binary.BigEndian.AppendUint64(frame.GetBuffer(16)[:0], uint64(max(s.cfg.MaxMessageBytes, 0)))
	settings = binary.BigEndian.AppendUint32(settings, uint32(min(max(s.cfg.MaxInFlightPerClient, 0), 1<<31)))
	settings = binary.BigEndian.AppendUint32(settings, uint32(s.cfg.StreamWindow))
	conn.Enqueue(frame.Frame{Header: ack, Payload: settings, Pooled: true})
	if name != "" {
		s.names.hold(h.ChannelID, name)
	}
	// The server may have closed the connection already (Close, Shutdown):
	// SetOnClose then runs at once, and the member leaves either way.
	conn.SetOnClose(func(error) {
		m.Leave()
		if name != "" {
			s.names.release(h.ChannelID)
		}
	})
	return &h, nil
}

// serverTLS returns cfg with TLS 1.2 as the minimum version.
func serverTLS(cfg *tls.Config) *tls.Config {
	cfg = cfg.Clone()
	if cfg.MinVersion < tls.VersionTLS12 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// Send implements router.Peer.
func (c *serverConn) Send(f frame.Frame, b *frame.Batch) { _ = c.conn.EnqueueIn(f, b) }

// handle is the reader goroutine's frame handler. A panic while handling
// one frame closes this connection with an internal error, is logged with
// its stack and counted, and leaves every other connection serving.
//
// Recovering is safe only because nothing this path reaches leaves state
// half-changed under a lock it would keep: Member.Handle and Member.Pong
// release the channel lock in a defer, and the router takes no other lock
// across a call that can panic. (Member.Leave does not use defers and runs
// outside this path, when the connection has closed.) The requests this
// connection was part of end as its Leave ends them: senders it held get
// ErrPeerGone, receivers of its requests a cancel.
func (c *serverConn) handle(f frame.Frame) (err error) {
	c.handling = f.Header // for the log, should the frame panic
	defer c.recoverFrame(&err)
	if hooks := testhook.For(c.s); hooks != nil {
		h := f.Header // a copy: f itself must not escape to the hooks
		if hooks.Handle != nil {
			hooks.Handle(&h)
		}
		if hooks.Handled != nil {
			defer hooks.Handled(&h)
		}
	}
	return c.handleFrame(f)
}

// recoverFrame turns a panic in handle into an internal error for this
// connection. It is a method, not a closure, so that the frame does not
// escape to the heap on every call.
func (c *serverConn) recoverFrame(err *error) {
	p := recover()
	if p == nil {
		return
	}
	c.s.internalErrors.Add(1)
	c.s.logger().Error("internal error handling a frame; closing the connection",
		"remote", c.nc.RemoteAddr().String(), "client", fmt.Sprintf("%x", c.member.ID()), "channel", fmt.Sprintf("%x", c.member.Channel()),
		"frame", c.handling.String(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	*err = wire.Errorf(wire.CodeInternal, "the server failed handling this connection's frames")
}

func (c *serverConn) handleFrame(f frame.Frame) error {
	h := &f.Header
	c.lastRead.Store(time.Now().UnixNano())
	if c.s.debug {
		c.logFrame(h)
	}
	if h.Flags == 0 { // the client reports a connection-level error and leaves
		f.Release()
		return errClientErrorFrame
	}
	if h.ClientID != c.member.ID() || h.ChannelID != c.member.Channel() {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "frame names client %x on channel %x; this connection joined as %x on %x",
			h.ClientID, h.ChannelID, c.member.ID(), c.member.Channel())
	}
	switch {
	case h.Flags == wire.FlagPing && len(f.Payload) > 8:
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "ping payload of %d bytes; at most 8", len(f.Payload))
	case h.Flags == wire.FlagPing && h.Type == wire.TypeStart:
		h.Type = wire.TypeEnd
		h.Final = true
		c.Send(f, c.conn.ReadBatch())
		return nil
	case h.Flags == wire.FlagPing:
		f.Release()
		if gen, ok := router.PongGeneration(h.RequestID); ok {
			c.member.Pong(gen) // the client has read the ends that ping followed
		}
		return nil
	case h.Flags == wire.FlagJoin:
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "this connection has already joined")
	}
	return c.member.Handle(f, c.conn.ReadBatch())
}
