package router

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Router is the registry of channels and their members.
type Router struct {
	cfg   Config
	epoch time.Time // sinceEpoch's start: monotonic, and a test bubble's own

	mu       sync.Mutex // guards channels and keys; closed is set under it
	channels map[wire.ID]*channel
	keys     keyring     // departed clients' keys (keys.go)
	closed   atomic.Bool // set once by Refuse or Close; read under channel locks too
	shut     bool        // Close has run; guarded by mu
	observer Observer    // set before the first join (observe.go)

	inFlight atomic.Int64  // live requests, queued or taken
	idle     chan struct{} // signalled when inFlight drops to zero while closing
	counts   [numOutcomes]atomic.Int64
	started  atomic.Int64
	latency  latency

	// Gathers and publishes accepted, and their members' outcomes.
	gathers, publishes atomic.Int64
	gatherReplies      [numOutcomes]atomic.Int64

	// Grants held back for memory (memory.go): the channels that have
	// some, and whether a retry pass is running or owed.
	starveMu sync.Mutex
	starved  map[*channel]struct{}
	starvedN atomic.Int64
	freed    atomic.Bool
	retrying atomic.Bool
}

// New returns an empty router.
func New(cfg Config) *Router {
	if cfg.Window <= 0 {
		cfg.Window = wire.StreamWindow
	}
	r := &Router{
		cfg:      cfg,
		epoch:    time.Now(),
		channels: make(map[wire.ID]*channel),
		idle:     make(chan struct{}, 1),
	}
	cfg.Memory.OnRelease(r.memoryFreed)
	return r
}

// sinceEpoch is the time since the router was made, on the monotonic
// clock.
func (r *Router) sinceEpoch() time.Duration { return time.Since(r.epoch) }

// channel is one channel's state. mu guards every field below it and the
// mutable state of its members and requests.
type channel struct {
	r    *Router
	id   wire.ID
	acct *budget.Account // the channel's share of the memory budget

	mu       sync.Mutex
	members  map[wire.ID]*Member
	requests map[wire.ID]*request
	// ended counts, for each request ID, the members holding it as a
	// tombstone (tombstones.go): the ID stays in use on the channel until
	// none does.
	ended endedIDs
	queue requestList // requests waiting for a receiver, oldest first
	polls pollList    // receivers waiting for a request, oldest first
	// reserved is the credit granted to queued requests beyond their
	// initial credit; it is bounded by Config.MaxChannelQueueBytes.
	reserved int64
	starved  bool       // some queued request is waiting for reserved credit
	memWait  []*request // requests with a grant held back for memory
	// nonPeers counts the members that are not peers to senders: remote
	// senders and drained remote receivers (remote.go). remoteN counts
	// remote members, and remotes lists the remote receivers with credit.
	nonPeers int
	remoteN  int
	remotes  []*Member
	// seenMembers and seenReady are the local member and waiting receiver
	// counts the observer was last told about (observe.go).
	seenMembers, seenReady int
	// freePolls are used entries for runs of push credit, kept for reuse
	// (push.go); extraUnits counts the units of the waiting runs past
	// their first, so that polls.n + extraUnits is the receivers waiting.
	freePolls  []*poll
	extraUnits int
	// batch is the write batch of the connection whose frame is being
	// handled, nil outside Member.Handle (timers, write notifications).
	batch *frame.Batch

	// counts counts the channel's ended requests by outcome, refusals
	// included, from the channel's creation: a channel whose last member
	// leaves is removed, and one joined again later counts from zero.
	counts [numOutcomes]atomic.Int64
}

// Join registers a connection as client clientID on channel channelID. It
// fails with a *wire.Error (CodeConflict) when the client ID is already
// connected to that channel, or CodeServerClosed when the router is
// closing. Client IDs are unique per channel, not server-wide: a client of
// one channel cannot lock a client of another out by taking its ID.
func (r *Router) Join(clientID, channelID wire.ID, p Peer) (*Member, error) {
	return r.JoinVersion(clientID, channelID, wire.Version, p)
}

// JoinVersion is Join for a connection that speaks protocol version
// (wire.Version or wire.Version2): the router addresses its frames to the
// member in that version and accepts version 2's frame forms from it only
// if it joined with version 2.
func (r *Router) JoinVersion(clientID, channelID wire.ID, version uint8, p Peer) (*Member, error) {
	return r.JoinKeyed(clientID, channelID, version, nil, p)
}

// JoinKeyed is JoinVersion for a client that registers key (KeySize
// bytes; nil for none) with its join: while the router remembers the
// client ID on the channel, a join with it must present the same key, or
// it fails with CodeConflict (keys.go).
func (r *Router) JoinKeyed(clientID, channelID wire.ID, version uint8, key []byte, p Peer) (*Member, error) {
	if key != nil && len(key) != KeySize {
		return nil, wire.Errorf(wire.CodeProtocol, "a client key of %d bytes; it has %d", len(key), KeySize)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return nil, wire.Errorf(wire.CodeServerClosed, "server is shutting down")
	}
	if clientID == (wire.ID{}) {
		return nil, wire.Errorf(wire.CodeProtocol, "join with the nil client ID")
	}
	ch := r.channels[channelID]
	if ch == nil {
		ch = &channel{r: r, id: channelID, acct: r.cfg.Memory.Child(r.cfg.MemoryPerChannel),
			members: make(map[wire.ID]*Member), requests: make(map[wire.ID]*request)}
		r.channels[channelID] = ch
	}
	m := &Member{r: r, ch: ch, id: clientID, peer: p, version: version,
		sent: make(map[wire.ID]*request), held: make(map[wire.ID]*request), polls: make(map[wire.ID]*poll)}
	m.ended.limit = r.cfg.tombstoneLimit()
	m.ended.channel = &ch.ended
	m.acct = ch.acct.Child(r.cfg.MemoryPerMember)
	m.ended.acct = m.acct
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if _, dup := ch.members[clientID]; dup {
		return nil, wire.Errorf(wire.CodeConflict, "client ID %x is already connected to this channel", clientID)
	}
	if err := r.admitKeyLocked(channelID, clientID, key, time.Now()); err != nil {
		if len(ch.members) == 0 && r.channels[channelID] == ch {
			delete(r.channels, channelID) // made for this join
		}
		return nil, err
	}
	if key != nil {
		m.key = new([KeySize]byte)
		copy(m.key[:], key)
	}
	ch.members[clientID] = m
	ch.noticeLocked()
	return m, nil
}

// Leave removes m when its connection has ended: requests it sent are
// cancelled at their receivers, requests it held fail at their senders with
// peer_gone, and its waiting Receives are dropped. Leave is idempotent.
func (m *Member) Leave() {
	r := m.r
	ch := m.ch
	r.mu.Lock()
	ch.mu.Lock()
	if m.gone {
		ch.mu.Unlock()
		r.mu.Unlock()
		return
	}
	m.gone = true
	delete(ch.members, m.id)
	r.keepKeyLocked(m, time.Now())
	if !m.countsAsPeer() {
		ch.nonPeers--
	}
	if m.remote != 0 {
		ch.remoteN--
		ch.dropRemoteLocked(m)
	}
	empty := len(ch.members) == 0
	if empty && r.channels[ch.id] == ch {
		delete(r.channels, ch.id)
	}
	r.mu.Unlock()

	for _, req := range m.sent {
		ch.failLocked(req, wire.CodePeerGone, "the sender's connection ended")
	}
	for _, req := range m.held {
		ch.failLocked(req, wire.CodePeerGone, "the receiver's connection ended before its response was complete")
	}
	for req := m.targeted.head; req != nil; req = m.targeted.head {
		ch.failLocked(req, wire.CodePeerGone, "the member left before it was given the request")
	}
	for _, p := range m.polls {
		ch.polls.remove(p)
	}
	clear(m.polls)
	m.ended.forget() // a member gone sends nothing more: its IDs are free
	ch.dropPushCreditLocked(m)
	ch.failOrphansLocked()
	ch.noticeLocked()
	ch.mu.Unlock()
}

// failOrphansLocked fails queued requests whose sender is now the only member.
func (ch *channel) failOrphansLocked() {
	if len(ch.members)-ch.nonPeers > 1 {
		return
	}
	for req := ch.queue.head; req != nil; {
		next := req.next
		if !ch.hasPeerLocked(req.sender) {
			ch.failLocked(req, wire.CodeNoPeers, "every other client left the channel")
		}
		req = next
	}
}

func (ch *channel) hasPeerLocked(m *Member) bool {
	n := len(ch.members) - ch.nonPeers
	if _, in := ch.members[m.id]; in && m.countsAsPeer() {
		n--
	}
	return n > 0
}

// Close starts a graceful shutdown: new joins, requests and Receives are
// refused with server_closed and every queued request fails with
// server_closed. Requests already taken by a receiver go on; Idle says when
// the last has ended.
func (r *Router) Close() {
	r.mu.Lock()
	if r.shut {
		r.mu.Unlock()
		return
	}
	r.shut = true
	r.closed.Store(true)
	chans := make([]*channel, 0, len(r.channels))
	for _, ch := range r.channels {
		chans = append(chans, ch)
	}
	r.mu.Unlock()
	for _, ch := range chans {
		ch.mu.Lock()
		for req := ch.queue.head; req != nil; {
			next := req.next
			ch.failLocked(req, wire.CodeServerClosed, "server is shutting down")
			req = next
		}
		for _, m := range ch.members {
			for req := m.targeted.head; req != nil; req = m.targeted.head {
				ch.failLocked(req, wire.CodeServerClosed, "server is shutting down")
			}
		}
		for p := ch.polls.head; p != nil; {
			next := p.next
			if p.pushed {
				// One refusal for all of a member's push credit.
				m := p.m // dropping the credit frees p
				if ch.dropPushCreditLocked(m) {
					ch.send(m, errorFrame(ch, m, wire.ID{}, wire.FlagReceive, wire.CodeServerClosed, "server is shutting down"))
				}
				p = ch.polls.head // the walk removed entries: start over
				continue
			}
			ch.polls.remove(p)
			delete(p.m.polls, p.id)
			ch.send(p.m, errorFrame(ch, p.m, p.id, wire.FlagReceive, wire.CodeServerClosed, "server is shutting down"))
			p = next
		}
		for _, m := range ch.remotes {
			m.offered, m.remoteCredit = false, 0
		}
		ch.remotes = nil
		ch.noticeLocked()
		ch.mu.Unlock()
	}
	r.signalIfIdle()
}

// Refuse makes the router refuse new joins, requests and Receives with
// server_closed from now on, as Close does, but leaves what is queued for
// Close to fail. A server calls it before it tells its clients that it is
// draining: a request start it reads after that notice reaches no
// receiver, which is what lets a client send again, or fail with "not
// delivered", a request it wrote after reading the notice.
func (r *Router) Refuse() {
	r.mu.Lock()
	r.closed.Store(true)
	r.mu.Unlock()
}

// InFlight returns the number of live requests, queued or taken.
func (r *Router) InFlight() int64 { return r.inFlight.Load() }

// Idle returns a channel that receives a value whenever the router is
// closing and the last live request has ended.
func (r *Router) Idle() <-chan struct{} { return r.idle }

func (r *Router) signalIfIdle() {
	if r.closed.Load() && r.inFlight.Load() == 0 {
		select {
		case r.idle <- struct{}{}:
		default:
		}
	}
}
