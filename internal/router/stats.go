package router

import (
	"bytes"
	"slices"

	"github.com/socketbus/socketbus/internal/wire"
)

// ChannelStats is a snapshot of one channel.
type ChannelStats struct {
	ID               wire.ID
	Clients          int // joined connections (remote members of a cluster are not counted)
	ReceiversWaiting int // Receive calls waiting for a request
	Queued           int // requests waiting for a receiver
	InFlight         int // requests taken by a receiver and not yet ended
	QueuedBytes      int64
	Outcomes         [numOutcomes]int64 // ended requests by outcome, since the channel was created
}

// Stats is a snapshot of the router.
type Stats struct {
	Channels []ChannelStats // sorted by ID
	Started  int64          // requests accepted since start
	Outcomes [numOutcomes]int64
	InFlight int64
	Latency  LatencySnapshot

	// Gathers and Publishes count those accepted; GatherReplies their
	// members' outcomes (completed: answered, or for a publish taken).
	Gathers, Publishes int64
	GatherReplies      [numOutcomes]int64
}

// Stats takes a snapshot. It locks each channel briefly, one at a time.
func (r *Router) Stats() Stats {
	r.mu.Lock()
	chans := make([]*channel, 0, len(r.channels))
	for _, ch := range r.channels {
		chans = append(chans, ch)
	}
	r.mu.Unlock()
	var s Stats
	for _, ch := range chans {
		ch.mu.Lock()
		cs := ChannelStats{
			ID:               ch.id,
			Clients:          ch.localMembersLocked(),
			ReceiversWaiting: ch.readyLocked(),
			Queued:           ch.queue.n,
			InFlight:         len(ch.requests) - ch.queue.n,
		}
		for req := ch.queue.head; req != nil; req = req.next {
			cs.QueuedBytes += int64(req.body.pendingBytes)
		}
		for i := range cs.Outcomes {
			cs.Outcomes[i] = ch.counts[i].Load()
		}
		ch.mu.Unlock()
		s.Channels = append(s.Channels, cs)
	}
	slices.SortFunc(s.Channels, func(a, b ChannelStats) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	s.Started = r.started.Load()
	for i := range s.Outcomes {
		s.Outcomes[i] = r.counts[i].Load()
	}
	s.InFlight = r.inFlight.Load()
	s.Latency = r.latency.snapshot()
	s.Gathers, s.Publishes = r.gathers.Load(), r.publishes.Load()
	for i := range s.GatherReplies {
		s.GatherReplies[i] = r.gatherReplies[i].Load()
	}
	return s
}
