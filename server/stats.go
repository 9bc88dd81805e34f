package server

import (
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/router"
)

// Stats is a snapshot of a server's state and counters, from Server.Stats.
// Counters count from the server's start.
type Stats struct {
	Connections int            // open connections, joined or not
	Channels    []ChannelStats // channels with at least one client, by ID
	InFlight    int64          // requests queued or taken, not yet ended

	RequestsStarted int64 // requests accepted (not refused at once)
	// Requests counts requests that ended, by outcome: completed,
	// remote_error, timeout, cancelled, peer_gone, no_peers, too_large,
	// server_closed, rejected. Refusals (no_peers, server_closed, rejected)
	// are counted here without counting in RequestsStarted.
	Requests map[string]int64

	// Gathers and Publishes count the gathers and publishes accepted
	// (each also counts once in RequestsStarted and Requests).
	// GatherReplies counts their members' outcomes, by the outcomes of
	// Requests: completed is a member that answered (for a publish, one
	// that took it), remote_error one that failed, peer_gone one that
	// left, timeout one the deadline passed for.
	Gathers, Publishes int64
	GatherReplies      map[string]int64

	FramesIn, FramesOut int64 // frames read and written on all connections
	BytesIn, BytesOut   int64 // bytes read and written, headers included

	// Latency is the distribution of the time from a request's start frame
	// to its end, over requests that ended after being started.
	Latency LatencyHistogram

	// MemoryBytes is the memory the server holds for frames now, as its
	// budget counts it; MemoryPeakBytes the most it has held; MemoryLimit
	// is Config.MaxMemory. MemoryCuts counts connections cut because
	// the budget passed its high-water mark.
	MemoryBytes, MemoryPeakBytes, MemoryLimit int64
	MemoryCuts                                int64

	// Nodes counts the nodes of the bus this server sees, itself
	// included: 1 when it is not clustered (Config.Cluster).
	// NodeNames names them, this node first (nil when not clustered).
	Nodes     int
	NodeNames []string

	// StartTime is when the server was created (New).
	StartTime time.Time
	// Accepted counts connections accepted, Joined those that joined.
	Accepted, Joined int64
	// Refusals counts connections that did not join, by reason:
	// protocol, unauthorized, limit (MaxConnections or memory),
	// join_timeout, conflict, tls, http. Cuts counts joined connections
	// the server cut, by reason: protocol, slow_consumer, keepalive,
	// frame_timeout, memory, internal. ProtocolErrors counts the protocol errors
	// among both, by wire code (protocol, bad_version, too_large). A
	// reason or code that has not happened is absent.
	Refusals, Cuts, ProtocolErrors map[string]int64
	// InternalErrors counts panics recovered while handling a
	// connection's frames; each closed that connection alone.
	InternalErrors int64
}

// ChannelStats describes one channel.
type ChannelStats struct {
	ID      uuid.UUID
	Name    string // the channel's name when the server knows it (Config.ChannelName, or a client's join)
	Clients int    // joined connections to this server
	// Remote counts the channel's clients on the other nodes of the bus,
	// by node name, as this node last heard (nil when not clustered).
	Remote           map[string]int
	ReceiversWaiting int   // Receive calls waiting for a request
	Queued           int   // requests waiting for a receiver
	InFlight         int   // requests taken by a receiver and not yet ended
	QueuedBytes      int64 // request-body bytes the server holds for queued requests
	// Requests counts the channel's ended requests by outcome (the names
	// of Stats.Requests) since the channel was created: a channel whose
	// last client leaves is removed, and counts from zero when joined
	// again.
	Requests map[string]int64
}

// Channel returns the stats of the channel id, or a zero ChannelStats when
// the channel has no client.
func (s Stats) Channel(id uuid.UUID) ChannelStats {
	for _, c := range s.Channels {
		if c.ID == id {
			return c
		}
	}
	return ChannelStats{}
}

// LatencyHistogram is a cumulative-free histogram: Counts[i] requests took
// at most Bounds[i] (and more than Bounds[i-1]); the last count is for
// requests slower than every bound.
type LatencyHistogram struct {
	Bounds []time.Duration
	Counts []int64 // len(Bounds)+1
	Sum    time.Duration
}

// Stats returns a snapshot of the server's state. It is cheap enough to
// call every second: it takes each channel's lock briefly, one at a time.
func (s *Server) Stats() Stats {
	rs := s.router.Stats()
	st := Stats{
		InFlight:        rs.InFlight,
		RequestsStarted: rs.Started,
		Requests:        make(map[string]int64, len(rs.Outcomes)),
	}
	st.Gathers, st.Publishes = rs.Gathers, rs.Publishes
	st.GatherReplies = make(map[string]int64, len(rs.GatherReplies))
	for _, o := range router.Outcomes() {
		st.Requests[o.String()] = rs.Outcomes[o]
		st.GatherReplies[o.String()] = rs.GatherReplies[o]
	}
	for _, c := range rs.Channels {
		cs := ChannelStats{
			ID: c.ID, Name: s.channelName(c.ID), Clients: c.Clients, ReceiversWaiting: c.ReceiversWaiting,
			Queued: c.Queued, InFlight: c.InFlight, QueuedBytes: c.QueuedBytes,
			Requests: make(map[string]int64, len(c.Outcomes)),
		}
		for _, o := range router.Outcomes() {
			cs.Requests[o.String()] = c.Outcomes[o]
		}
		if s.cluster != nil {
			cs.Remote = s.cluster.ChannelMembers(c.ID)
		}
		st.Channels = append(st.Channels, cs)
	}
	st.Latency = LatencyHistogram{Bounds: rs.Latency.Bounds, Counts: rs.Latency.Counts, Sum: rs.Latency.Sum}

	s.mu.Lock()
	st.Connections = len(s.conns)
	t := s.retired
	for c := range s.conns {
		if c.conn != nil { // nil while the connection is still joining
			t.add(c.conn)
		}
	}
	s.mu.Unlock()
	st.FramesIn, st.FramesOut, st.BytesIn, st.BytesOut = t.framesIn, t.framesOut, t.bytesIn, t.bytesOut
	st.MemoryBytes, st.MemoryPeakBytes, st.MemoryLimit = s.memory.Used(), s.memory.Peak(), s.memory.Limit()
	st.MemoryCuts = s.reaper.cuts.Load()
	st.StartTime = s.started
	st.Accepted, st.Joined = s.accepted.Load(), s.joined.Load()
	s.ops.snapshot(&st)
	st.InternalErrors = s.internalErrors.Load()
	st.Nodes = 1
	if s.cluster != nil {
		st.Nodes = s.cluster.Nodes()
		st.NodeNames = s.cluster.NodeNames()
	}
	return st
}

// traffic sums connections' counters.
type traffic struct {
	framesIn, framesOut, bytesIn, bytesOut int64
}

func (t *traffic) add(c *frameconn.Conn) {
	t.framesIn += c.FramesIn.Load()
	t.framesOut += c.FramesOut.Load()
	t.bytesIn += c.BytesIn.Load()
	t.bytesOut += c.BytesOut.Load()
}
