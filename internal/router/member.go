package router

import (
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// Member is one joined connection: a client ID on a channel.
type Member struct {
	r    *Router
	ch   *channel
	id   wire.ID
	peer Peer

	// Guarded by ch.mu.
	sent  map[wire.ID]*request // live requests this member sent
	held  map[wire.ID]*request // live requests this member received
	polls map[wire.ID]*poll    // this member's waiting Receives
	ended tombstones           // requests that ended while this member could still send for them
	gone  bool
}

// ID returns the member's client ID.
func (m *Member) ID() wire.ID { return m.id }

// Channel returns the ID of the member's channel.
func (m *Member) Channel() wire.ID { return m.ch.id }

// Handle routes one frame from the member's connection and takes ownership
// of its payload. A non-nil error is a protocol violation (a *wire.Error):
// the caller sends it as an error frame and closes the connection. Frames
// the router sends in answer join batch (which may be nil); the caller
// flushes it.
func (m *Member) Handle(f frameconn.Frame, batch *frameconn.Batch) error {
	h := &f.Header
	if h.ClientID != m.id {
		release(&f)
		return protocolErrorf("frame names client %x but this connection joined as %x", h.ClientID, m.id)
	}
	if h.ChannelID != m.ch.id {
		release(&f)
		return protocolErrorf("frame names channel %x but this connection joined %x", h.ChannelID, m.ch.id)
	}
	ch := m.ch
	ch.mu.Lock()
	ch.batch = batch
	defer func() {
		ch.batch = nil
		ch.mu.Unlock()
	}()
	if m.gone {
		release(&f)
		return nil
	}
	switch h.Flags {
	case wire.FlagRequest:
		return m.handleRequestLocked(f)
	case wire.FlagReceive:
		release(&f)
		return m.handleReceiveLocked(h)
	case wire.FlagResponse:
		return m.handleResponseLocked(f)
	case wire.FlagCredit | wire.FlagReceive:
		defer release(&f)
		return m.handleCreditLocked(h, f.Payload, m.held, false)
	case wire.FlagCredit | wire.FlagResponse:
		defer release(&f)
		return m.handleCreditLocked(h, f.Payload, m.sent, true)
	}
	release(&f)
	return protocolErrorf("a client may not send a %s frame with flags %s here", h.Type, h.Flags)
}

// handleCreditLocked applies a credit grant for the downstream side of a
// stream: the receiver's window for a request body, or the sender's window
// for a response body.
func (m *Member) handleCreditLocked(h *wire.Header, payload []byte, table map[wire.ID]*request, response bool) error {
	n, err := wire.ParseCredit(payload)
	if err != nil {
		return err
	}
	req := table[h.RequestID]
	if req == nil {
		return nil // the stream ended while the grant was in flight
	}
	rl := req.relay(response)
	if int64(rl.downCredit)+int64(n) > int64(m.r.cfg.Window) {
		return protocolErrorf("credit grant of %d bytes overflows the window of %d", n, m.r.cfg.Window)
	}
	rl.downCredit += int(n)
	m.ch.pumpLocked(req, response)
	return nil
}

// handleReceiveLocked handles a Receive (start) or its cancellation (end).
func (m *Member) handleReceiveLocked(h *wire.Header) error {
	ch := m.ch
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
		if limit := m.r.cfg.MaxPollsPerClient; limit > 0 && len(m.polls) >= limit {
			ch.send(m, errorFrame(ch, m, h.RequestID, wire.FlagReceive, wire.CodeLimit, "too many Receive calls waiting on this connection"))
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
		if p := m.polls[h.RequestID]; p != nil {
			ch.polls.remove(p)
			delete(m.polls, p.id)
		}
		return nil
	}
	return protocolErrorf("a client may not send a %s frame with the receive flag", h.Type)
}
