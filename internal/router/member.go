package router

import (
	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Member is one joined connection: a client ID on a channel.
type Member struct {
	r    *Router
	ch   *channel
	id   wire.ID
	peer Peer
	acct *budget.Account // pays for the streams this member sends and its connection's write queue

	version uint8          // the protocol version the connection joined with
	key     *[KeySize]byte // the key the client registered with its join, or nil (keys.go)

	// Guarded by ch.mu.
	sent  map[wire.ID]*request // live requests this member sent
	held  map[wire.ID]*request // live requests this member received
	polls map[wire.ID]*poll    // this member's waiting Receives
	ended tombstones           // requests that ended while this member could still send for them
	gone  bool
	// pushCredit is how many requests the server may still push to this
	// (version 2) member: the units of its runs among the waiting
	// receivers (push.go).
	pushCredit int

	// Remote members (remote.go): the role, whether a remote receiver is
	// drained, and its credit of requests it may be offered (offered: it
	// is on the channel's list of remote receivers with credit).
	remote       RemoteRole
	draining     bool
	offered      bool
	remoteCredit int

	// busState is where the member's client ID stands on the bus
	// (busid.go): joining until the other nodes admit it.
	busState busState

	// targeted holds the gathers' children for this member that wait
	// for one of its polls or units of push credit (gather.go).
	targeted requestList

	started  int64 // requests this member sent that were accepted
	received int64 // requests handed to this member as a receiver
}

// MemberStats is a snapshot of one member's requests.
type MemberStats struct {
	Sending   int   // requests it sent that have not ended
	Receiving int   // requests it took as a receiver that have not ended
	Polls     int   // its Receive calls waiting for a request
	Sent      int64 // requests it sent that were accepted, since it joined
	Received  int64 // requests it took as a receiver, since it joined
}

// Stats returns a snapshot of the member's requests. It takes the
// channel's lock briefly.
func (m *Member) Stats() MemberStats {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	return MemberStats{Sending: len(m.sent), Receiving: len(m.held), Polls: len(m.polls),
		Sent: m.started, Received: m.received}
}

// v2 reports whether the member speaks protocol version 2.
func (m *Member) v2() bool { return m.version >= wire.Version2 }

// ID returns the member's client ID.
func (m *Member) ID() wire.ID { return m.id }

// Account returns the member's memory account: the server charges the
// member's connection's write queue to it too.
func (m *Member) Account() *budget.Account { return m.acct }

// Channel returns the ID of the member's channel.
func (m *Member) Channel() wire.ID { return m.ch.id }

// Handle routes one frame from the member's connection. A non-nil error
// is a protocol violation (a *wire.Error): the caller sends it as an error
// frame and closes the connection. Frames the router sends in answer join
// batch (which may be nil); the caller flushes it.
//
// Handle owns f's payload, by one rule (see the package doc): a handler
// that keeps the payload moves it out with take, and whatever is left in f
// when the handler returns is released here, on every path.
func (m *Member) Handle(f frame.Frame, batch *frame.Batch) error {
	err := m.handle(&f, batch)
	f.Release()
	return err
}

func (m *Member) handle(f *frame.Frame, batch *frame.Batch) error {
	h := &f.Header
	if h.ClientID != m.id {
		return protocolErrorf("frame names client %x but this connection joined as %x", h.ClientID, m.id)
	}
	if h.ChannelID != m.ch.id {
		return protocolErrorf("frame names channel %x but this connection joined %x", h.ChannelID, m.ch.id)
	}
	ch := m.ch
	ch.mu.Lock()
	ch.batch = batch
	defer func() {
		ch.batch = nil
		ch.noticeLocked()
		ch.mu.Unlock()
	}()
	if m.gone {
		return nil
	}
	switch h.Flags {
	case wire.FlagRequest:
		return m.handleRequestLocked(f)
	case wire.FlagReceive:
		return m.handleReceiveLocked(f)
	case wire.FlagResponse:
		return m.handleResponseLocked(f)
	case wire.FlagCredit | wire.FlagReceive:
		return m.handleCreditLocked(h, f.Payload, false)
	case wire.FlagCredit | wire.FlagResponse:
		return m.handleCreditLocked(h, f.Payload, true)
	case wire.FlagRequest | wire.FlagAll, wire.FlagRequest | wire.FlagAll | wire.FlagPublish:
		if !m.v3() || h.Type != wire.TypeStart {
			break
		}
		return m.startRequestLocked(f, m.id)
	case wire.FlagCredit | wire.FlagResponse | wire.FlagAll:
		if !m.v3() {
			break
		}
		return m.handleReplyCreditLocked(h, f.Payload)
	}
	return protocolErrorf("a client may not send a %s frame with flags %s here", h.Type, h.Flags)
}

// handleCreditLocked applies a credit grant for the downstream side of a
// stream: the receiver's window for a request body it holds, or the
// sender's window for the response to its own request. A grant for a
// stream that ended while it was in flight is dropped; a grant for a
// stream this connection never had, or for a response that has not
// started, is a protocol error.
func (m *Member) handleCreditLocked(h *wire.Header, payload []byte, response bool) error {
	if h.Type != wire.TypeChunk {
		return protocolErrorf("a credit grant is a chunk frame, not %s", h.Type)
	}
	n, err := wire.ParseCredit(payload)
	if err != nil {
		return err
	}
	table := m.held
	if response {
		table = m.sent
	}
	req := table[h.RequestID]
	if req == nil {
		// The stream ended while the grant was in flight, or never was
		// this connection's: a grant cannot touch another connection's
		// streams, so it is dropped either way.
		return nil
	}
	if response && req.fan != nil {
		return protocolErrorf("credit for the replies to gather %x names no member (chunk|response|credit|all does)", h.RequestID)
	}
	return m.creditLocked(req, n, response)
}

// creditLocked applies a grant of n bytes for req's request body (as its
// receiver) or its response (as its sender).
func (m *Member) creditLocked(req *request, n uint32, response bool) error {
	if response && req.state != reqResponding {
		return protocolErrorf("credit for the response to request %x, which has not started", req.id)
	}
	rl := req.relay(response)
	if w := m.window(); int64(rl.downCredit)+int64(n) > int64(w) {
		return protocolErrorf("credit grant of %d bytes overflows the window of %d", n, w)
	}
	if !response {
		m.ch.takeLocked(req) // a receiver grants for a body only once a handler has it
	}
	rl.downCredit += int(n)
	m.ch.pumpLocked(req, response)
	if !response {
		m.ch.publishTookLocked(req, false)
	}
	return nil
}

// handleReceiveLocked handles a Receive (start) or its cancellation (end),
// and version 2's push credit, stop and return (push.go).
func (m *Member) handleReceiveLocked(f *frame.Frame) error {
	h := &f.Header
	ch := m.ch
	if m.v2() && (h.RequestID == wire.ID{} || h.Type == wire.TypeError) {
		return m.handlePushLocked(f)
	}
	switch h.Type {
	case wire.TypeStart:
		if !h.Final || h.Sequence != 0 || h.Length != 0 {
			return protocolErrorf("a receive frame is a lone start frame: sequence 0, final, no payload")
		}
		if _, dup := m.polls[h.RequestID]; dup {
			return protocolErrorf("receive ID %x is already waiting", h.RequestID)
		}
		if m.r.closed.Load() {
			ch.send(m, errorFrame(ch, m, h.RequestID, wire.FlagReceive, wire.CodeServerClosed, "server is shutting down"))
			return nil
		}
		if limit := m.r.cfg.MaxPollsPerClient; limit > 0 && len(m.polls)+len(m.held)+m.pushCredit >= limit {
			ch.send(m, errorFrame(ch, m, h.RequestID, wire.FlagReceive, wire.CodeLimit, "too many Receive calls waiting and requests held on this connection"))
			return nil
		}
		if req := m.targeted.head; req != nil {
			ch.assignLocked(req, m, h.RequestID) // a gather's, for m alone
			return nil
		}
		for req := ch.queue.head; req != nil; req = req.next {
			if req.sender != m {
				ch.assignLocked(req, m, h.RequestID)
				return nil
			}
		}
		p := &poll{id: h.RequestID, m: m}
		m.polls[p.id] = p
		ch.polls.push(p)
		return nil
	case wire.TypeEnd:
		if !h.Final || h.Sequence != 0 || h.Length != 0 {
			return protocolErrorf("a poll withdrawal is a lone end frame: sequence 0, final, no payload")
		}
		if p := m.polls[h.RequestID]; p != nil {
			ch.polls.remove(p)
			delete(m.polls, p.id)
		}
		return nil
	}
	return protocolErrorf("a client may not send a %s frame with the receive flag", h.Type)
}
