package socketbus

import (
	"errors"
	"net"
	"sync/atomic"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// serverConn is one client connection on the server.
//
// The reader goroutine (frameconn's) owns member and calls handle; other
// goroutines reach the connection only through conn.Enqueue (as a
// router.Peer) and conn.Close.
type serverConn struct {
	s        *Server
	conn     *frameconn.Conn
	member   *router.Member
	joined   atomic.Bool
	counters connCounters
}

// connCounters are one connection's traffic counters.
type connCounters struct {
	framesIn, bytesIn atomic.Int64
}

func (s *Server) startConn(nc net.Conn) {
	c := &serverConn{s: s}
	c.conn = frameconn.New(nc, frameconn.Config{WriteTimeout: s.cfg.WriteTimeout})
	s.mu.Lock()
	if s.shutdown {
		s.mu.Unlock()
		nc.Close()
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	c.conn.OnClose = func(error) { c.closed() }
	c.conn.Start(c.handle)
	go func() {
		defer s.wg.Done()
		c.conn.Wait()
	}()
}

// closed runs once when the connection has closed.
func (c *serverConn) closed() {
	if c.joined.Load() {
		c.member.Leave()
	}
	s := c.s
	s.mu.Lock()
	delete(s.conns, c)
	s.retired.add(c.conn)
	s.mu.Unlock()
}

// Send implements router.Peer.
func (c *serverConn) Send(f frameconn.Frame) { _ = c.conn.Enqueue(f) }

// handle is the reader goroutine's frame handler.
func (c *serverConn) handle(f frameconn.Frame) error {
	if !c.joined.Load() {
		return c.join(f)
	}
	h := &f.Header
	switch {
	case h.Flags == 0: // the client reports a connection-level error and leaves
		if f.Pooled {
			frameconn.PutBuffer(f.Payload)
		}
		return errors.New("socketbus: client closed the connection with an error frame")
	case h.Flags == wire.FlagPing && h.Type == wire.TypeStart:
		h.Type = wire.TypeEnd
		h.Final = true
		c.Send(f)
		return nil
	case h.Flags == wire.FlagPing:
		if f.Pooled {
			frameconn.PutBuffer(f.Payload)
		}
		return nil
	}
	return c.member.Handle(f)
}

// join handles the first frame of a connection, which must be a join.
func (c *serverConn) join(f frameconn.Frame) error {
	h := f.Header
	if f.Pooled {
		frameconn.PutBuffer(f.Payload)
	}
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin {
		return wire.Errorf(wire.CodeProtocol, "the first frame must be a join (start, flags join), not %s %s", h.Type, h.Flags)
	}
	m, err := c.s.router.Join(h.ClientID, h.ChannelID, c)
	if err != nil {
		var werr *wire.Error
		errors.As(err, &werr)
		c.conn.CloseAfterFlush(frameconn.ErrorFrame(wire.Header{Flags: wire.FlagJoin, RequestID: h.RequestID, ClientID: h.ClientID, ChannelID: h.ChannelID}, werr.Code, werr.Message), err)
		return err
	}
	c.member = m
	c.joined.Store(true)
	select {
	case <-c.conn.Done():
		m.Leave() // closed while joining: closed() may have missed the member
		return nil
	default:
	}
	ack := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagJoin, RequestID: h.RequestID,
		ClientID: h.ClientID, ChannelID: h.ChannelID, Final: true}
	c.Send(frameconn.Frame{Header: ack})
	return nil
}
