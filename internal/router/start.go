package router

import (
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// The start of a request, in the steps every request takes: the start
// frame is checked (checkStartLocked), the request admitted or refused
// (admitLocked, refuseLocked), made and charged (newRequestLocked), opened
// with its deadline (openLocked), and its whole body kept when it came in
// the start frame (keepWholeLocked). startRequestLocked then places an
// ordinary request; startGatherLocked (gather.go) fans a gather out.

// startFrame is what checkStartLocked learned of a request's start frame.
type startFrame struct {
	hlen     int  // bytes of the header block at the payload's front (v3)
	whole    bool // the body is the rest of the payload (v2 and v3)
	tooLarge bool // the header block is over the server's MaxHeaderBytes
}

// checkStartLocked checks a request's start frame against the protocol:
// anything wrong here is a protocol error, which closes the connection.
func (m *Member) checkStartLocked(f *frame.Frame) (startFrame, error) {
	h := &f.Header
	s := startFrame{whole: m.v2() && h.Final}
	var err error
	if s.hlen, s.tooLarge, err = m.headerBlockLen(f.Payload); err != nil {
		return s, err
	}
	bodyLen := len(f.Payload) - s.hlen
	switch {
	case h.Sequence != 0:
		return s, protocolErrorf("a request start frame has sequence 0")
	case s.whole && bodyLen > wire.InitialRequestCredit:
		return s, protocolErrorf("a whole request of %d bytes is over the initial credit of %d", bodyLen, wire.InitialRequestCredit)
	case !s.whole && (h.Final || bodyLen != 0):
		return s, protocolErrorf("a request start frame has sequence 0, no final bit and no payload but its header block")
	}
	// An ID that any member still holds as a tombstone is in use too: its
	// holder may still send frames for the request that ended, and they
	// must not be taken for frames of a new one handed to it. A closing
	// router hands nothing to anyone (admitLocked refuses it), and its
	// refusal lets another node's request go back to its origin (a
	// request a draining node failed while it was pushed to a receiver
	// here, re-sent by its sender on that node).
	_, live := m.ch.requests[h.RequestID]
	if live || m.ended.has(h.RequestID) || m.ch.ended.has(h.RequestID) && !m.r.closed.Load() {
		return s, protocolErrorf("request ID %x is already in use", h.RequestID)
	}
	return s, nil
}

// admitLocked says why the request f starts must be refused, if it must:
// the router is closing, its headers or whole body are too large, it has
// no peer, or its sender has too many requests open. ok is false then.
func (m *Member) admitLocked(f *frame.Frame, s startFrame) (code wire.Code, msg string, ok bool) {
	r := m.r
	switch {
	case r.closed.Load():
		return wire.CodeServerClosed, "server is shutting down", false
	case s.tooLarge:
		return wire.CodeTooLarge, "request headers of " + itoa(int64(s.hlen-wire.HeaderBlockLenSize)) + " bytes exceed the server's limit of " + itoa(int64(r.cfg.maxHeaderBytes())), false
	case !m.ch.hasPeerLocked(m):
		return wire.CodeNoPeers, "no other client is joined to this channel", false
	// A remote sender carries a whole node's requests: its account's
	// share of the memory budget bounds it, not the per-client limit.
	case r.cfg.MaxInFlightPerClient > 0 && m.remote == 0 && len(m.sent) >= r.cfg.MaxInFlightPerClient:
		return wire.CodeLimit, "too many requests in flight on this connection", false
	case s.whole && r.cfg.MaxMessageBytes > 0 && int64(len(f.Payload)-s.hlen) > r.cfg.MaxMessageBytes:
		return wire.CodeTooLarge, "request body exceeds the server's limit of " + itoa(r.cfg.MaxMessageBytes) + " bytes", false
	}
	return 0, "", true
}

// refuseLocked refuses the request id m started, with code; the
// connection stays up. A remote sender's request is given back to its
// origin instead (returned), unless it is too large anywhere.
func (m *Member) refuseLocked(id wire.ID, code wire.Code, msg string) error {
	ch := m.ch
	if m.remote == RemoteSender && code != wire.CodeTooLarge {
		code = wire.CodeReturned // not claimed: the origin requeues it (remote.go)
	}
	if code != wire.CodeReturned {
		m.r.counts[outcomeOf(code)].Add(1)
		ch.counts[outcomeOf(code)].Add(1)
	}
	ch.send(m, errorFrame(ch, m, id, wire.FlagRequest, code, msg))
	ch.tombstoneLocked(m, id) // the rest of the stream may already be on its way
	return nil
}

// errMemoryShort is the refusal of a request the memory budget cannot
// hold.
const errMemoryShort = "the server's memory budget is short; try again later"

// newRequestLocked makes the request m starts under id, keeping its header
// block, and charges what its initial credit lets the sender send before
// anyone reads it. It returns nil when the budget cannot hold that.
func (m *Member) newRequestLocked(id, from wire.ID, block []byte) *request {
	ch := m.ch
	req := &request{id: id, ch: ch, sender: m, from: from}
	req.to(reqQueued)
	req.body.upOutstanding = wire.InitialRequestCredit
	if !ch.keepRequestHeadersLocked(req, block) {
		return nil
	}
	if !ch.commitLocked(req, false, 0) {
		ch.releaseRequestHeadersLocked(req)
		return nil
	}
	return req
}

// timeoutOf is the timeout a start frame asks for: the server's default
// for 0, and at most 365 days.
func (c *Config) timeoutOf(millis uint64) time.Duration {
	if millis == 0 {
		return c.DefaultTimeout
	}
	return time.Duration(min(millis, uint64(365*24*time.Hour/time.Millisecond))) * time.Millisecond
}

// openLocked makes an admitted request live: in the channel's and its
// sender's tables, counted, with its timer running.
func (ch *channel) openLocked(req *request, timeout time.Duration) {
	r := ch.r
	now := time.Now()
	req.started, req.deadline = now, now.Add(timeout)
	req.body.nextSeq, req.body.downSeq = 1, 1
	ch.requests[req.id] = req
	req.sender.sent[req.id] = req
	req.sender.started++
	r.inFlight.Add(1)
	r.started.Add(1)
	req.timer = time.AfterFunc(timeout, func() {
		ch.mu.Lock()
		defer ch.mu.Unlock()
		if req.state != reqEnded {
			ch.failLocked(req, wire.CodeTimeout, "the request timed out after "+timeout.String())
		}
	})
}

// keepWholeLocked keeps the body that came whole in f's payload, after
// its hlen bytes of header block, as a chunk and an end frame: it waits
// as a v1 body would, and goes to a v2 receiver in one frame again.
func (ch *channel) keepWholeLocked(req *request, f *frame.Frame, hlen int) {
	m := req.sender
	f.Payload = cutFront(f.Payload, hlen)
	n := len(f.Payload)
	rl := &req.body
	rl.chunks, rl.bytes, rl.ended, rl.nextSeq = 1, int64(n), true, 3
	chunk := take(f)
	chunk.Header = header(ch, m, wire.TypeChunk, wire.FlagReceive, req.id)
	chunk.Header.Sequence = 1
	end := header(ch, m, wire.TypeEnd, wire.FlagReceive, req.id)
	end.Sequence, end.Final = 2, true
	rl.pending = append(rl.pending, chunk, frame.Frame{Header: end})
	rl.pendingBytes = n
}
