package server

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// ConnStats describes one open connection, from Server.Conns.
type ConnStats struct {
	RemoteAddr string // the client's address
	TLS        bool   // the connection speaks TLS
	// Joined is false while the connection is still in its TLS handshake
	// or join; the fields below RemoteAddr and TLS are then zero.
	Joined      bool
	ClientID    uuid.UUID
	Channel     uuid.UUID
	ChannelName string // the channel's name when the server knows it (Config.ChannelName)

	Age  time.Duration // since the connection was accepted
	Idle time.Duration // since a frame last arrived from the client (since the join if none has)

	Sending   int   // requests it sent that have not ended
	Receiving int   // requests it took as a receiver that have not ended
	Polls     int   // its Receive calls waiting for a request
	Sent      int64 // requests it sent that the server accepted
	Received  int64 // requests it took as a receiver

	FramesIn, FramesOut int64 // frames read from and written to the client
	BytesIn, BytesOut   int64 // bytes read and written, headers included
	QueuedBytes         int64 // memory of the frames queued for the client, not yet written
	MemoryBytes         int64 // memory the server holds on the connection's account: its streams and write queue
}

// Conns returns a snapshot of every open connection, oldest first. Like
// Stats it is meant for monitoring: it takes the server's lock once and
// each connection's channel lock briefly, one at a time.
func (s *Server) Conns() []ConnStats {
	s.mu.Lock()
	conns := make([]*serverConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	type joined struct {
		c   *serverConn
		tls bool
		ok  bool
	}
	snap := make([]joined, len(conns))
	for i, c := range conns {
		snap[i] = joined{c, c.tls, c.conn != nil && c.member != nil}
	}
	s.mu.Unlock()

	now := time.Now()
	out := make([]ConnStats, 0, len(snap))
	for _, j := range snap {
		c := j.c
		cs := ConnStats{RemoteAddr: c.remote, TLS: j.tls, Age: now.Sub(c.accepted)}
		if j.ok {
			ms := c.member.Stats()
			cs.Joined = true
			cs.ClientID, cs.Channel, cs.ChannelName = c.member.ID(), c.member.Channel(), c.name
			cs.Sending, cs.Receiving, cs.Polls, cs.Sent, cs.Received = ms.Sending, ms.Receiving, ms.Polls, ms.Sent, ms.Received
			cs.Idle = now.Sub(time.Unix(0, c.lastRead.Load()))
			cs.FramesIn, cs.FramesOut = c.conn.FramesIn.Load(), c.conn.FramesOut.Load()
			cs.BytesIn, cs.BytesOut = c.conn.BytesIn.Load(), c.conn.BytesOut.Load()
			cs.QueuedBytes = c.conn.QueuedBytes()
			cs.MemoryBytes = c.member.Account().Used()
		}
		out = append(out, cs)
	}
	slices.SortFunc(out, func(a, b ConnStats) int {
		if c := cmp.Compare(b.Age, a.Age); c != 0 { // oldest first
			return c
		}
		return bytes.Compare(a.ClientID[:], b.ClientID[:])
	})
	return out
}

// channelNames holds the names of channels that clients gave when joining
// (PROTOCOL.md §7), for as long as a connection that gave the name is open.
type channelNames struct {
	mu    sync.Mutex
	names map[uuid.UUID]*namedChannel
}

type namedChannel struct {
	name string
	refs int
}

// hold records that a connection on channel gave name.
func (n *channelNames) hold(channel uuid.UUID, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.names == nil {
		n.names = make(map[uuid.UUID]*namedChannel)
	}
	e := n.names[channel]
	if e == nil {
		e = &namedChannel{name: name}
		n.names[channel] = e
	}
	e.refs++
}

// release undoes a hold.
func (n *channelNames) release(channel uuid.UUID) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.names[channel]; e != nil {
		if e.refs--; e.refs == 0 {
			delete(n.names, channel)
		}
	}
}

// lookup returns the name a client gave channel, or "".
func (n *channelNames) lookup(channel uuid.UUID) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if e := n.names[channel]; e != nil {
		return e.name
	}
	return ""
}

// channelName returns channel's name: the one a client gave, or else the
// one Config.ChannelName knows, or "".
func (s *Server) channelName(channel uuid.UUID) string {
	if name := s.names.lookup(channel); name != "" {
		return name
	}
	if s.cfg.ChannelName != nil {
		return s.cfg.ChannelName(channel)
	}
	return ""
}
