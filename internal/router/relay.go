package router

import (
	"strconv"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// assignLocked hands a request to receiver m, answering m's Receive pollID:
// the request's start frame goes to m, carrying pollID, and its body follows
// as m's credit allows.
//
// The start frame, with the whole body when it goes whole, is not a
// control frame for m's slow-consumer cap: m asked for it with a poll or a
// unit of push credit, which bound how many m can have queued. The sender
// pays for it until it is written, as it pays for its body's relay.
func (ch *channel) assignLocked(req *request, m *Member, pollID wire.ID) {
	ch.unqueueLocked(req)
	ch.reserved -= req.reserved
	req.reserved = 0
	if req.state != reqPushed {
		req.to(reqDelivered) // handed to a poll; pushLocked has made it pushed
	}
	req.receiver = m
	m.held[req.id] = req
	m.received++
	rl := &req.body
	rl.downCredit = wire.StreamWindow // implicit (docs/PROTOCOL.md section 12)
	if req.state == reqPushed {
		// A pushed request's implicit credit is its sender's, 16 KiB: the
		// server keeps a copy of what it forwards until the receiver takes
		// the request, and that copy is what the receiver can hoard.
		rl.downCredit = wire.InitialRequestCredit
	}

	h := header(ch, m, wire.TypeStart, wire.FlagReceive, req.id)
	if g := req.gather; g != nil && g.publish && m.v3() {
		h.Flags |= wire.FlagPublish // it wants no answer
	}
	if req.isLeg() {
		// A gather's part for another node: started there as a gather,
		// whose body starts with the initial credit of any request.
		h.Flags |= wire.FlagAll
		rl.downCredit = wire.InitialRequestCredit
	}
	h.ClientID = req.from
	h.TimeoutMillis = uint64(max(time.Until(req.deadline).Milliseconds(), 1))
	headers := headersFor(m, req.headers) // v3: after the receive ID
	if m.v2() && rl.ended && rl.downSeq == 1 && rl.pendingBytes <= wire.InitialRequestCredit && len(rl.pending) == 2 {
		// v2: the whole body is here and small; it goes in one frame.
		body := rl.pending[0].Payload
		p := frame.GetBuffer(16 + len(headers) + len(body))
		copy(p, pollID[:])
		copy(p[16:], headers)
		copy(p[16+len(headers):], body)
		h.Final = true
		if req.state == reqPushed {
			for _, f := range rl.pending {
				ch.keepRetainedLocked(req, f)
			}
		} else {
			for i := range rl.pending {
				rl.pending[i].Release()
			}
		}
		clear(rl.pending)
		rl.pending = rl.pending[:0]
		rl.downCredit -= rl.pendingBytes
		rl.pendingBytes = 0
		rl.downSeq, rl.endForwarded = 3, true
		ch.shrinkLocked(req, false)
		ch.send(m, frame.Frame{Header: h, Payload: p, Pooled: true, Payer: req.sender.acct})
		ch.publishTookLocked(req, false)
		ch.regrantQueuedLocked()
		return
	}
	p := frame.GetBuffer(16 + len(headers))
	copy(p, pollID[:])
	copy(p[16:], headers)
	ch.send(m, frame.Frame{Header: h, Payload: p, Pooled: true, Payer: req.sender.acct})
	ch.pumpLocked(req, false)
	ch.regrantQueuedLocked()
}

// writesPending reports whether bytes of the relay are still queued for
// the downstream socket; if so, the downstream's writer is asked to pump
// again once they are written. A write that finishes between the two looks
// is seen either here or by the writer, which then finds waiting set.
func (rl *relay) writesPending() bool {
	if rl.inFlight.Load() == 0 {
		return false
	}
	rl.waiting.Store(true)
	return rl.inFlight.Load() > 0
}

// pumpLocked forwards a relay's pending frames while downstream credit
// lasts, then tops up the upstream's credit. A chunk whose buffer is less
// than 3/4 full (a coalescing buffer still filling) waits while earlier
// bytes of the relay are queued for the downstream socket (memory.go); the
// writer's notification pumps again once they are out.
func (ch *channel) pumpLocked(req *request, response bool) {
	if req.fan != nil && !response {
		ch.fanOutLocked(req) // a gather's body goes to its children
		return
	}
	rl := req.relay(response)
	down, notify := req.receiver, frame.SentNotifier((*bodySent)(req))
	if response {
		down, notify = req.sender, (*respSent)(req)
	}
	if down == nil {
		ch.grantLocked(req, response) // queued: credit from the channel's budget
		return
	}
	sent, held := 0, false
	for sent < len(rl.pending) {
		f := rl.pending[sent]
		n := len(f.Payload)
		if n > rl.downCredit {
			if rl.downCredit == 0 || f.Header.Type != wire.TypeChunk {
				break
			}
			// The downstream's credit ends inside this chunk. It asked
			// for bytes, not frames (docs/PROTOCOL.md section 8), and
			// may wait for all of them before it grants more: once the
			// bytes before the chunk are written (its next grant usually
			// comes with them), the chunk is cut to fill the credit.
			if held = rl.writesPending(); held {
				break // the writer pumps again when they are written
			}
			rl.splitLocked(sent, rl.downCredit)
			continue
		}
		if f.Header.Type == wire.TypeChunk && n > 0 && 4*n < 3*cap(f.Payload) {
			if held = rl.writesPending(); held {
				break // the writer pumps again when they are written
			}
		}
		rl.downCredit -= n
		rl.pendingBytes -= n
		if n > 0 {
			rl.inFlight.Add(int64(n))
			f.Sent = notify
		}
		if f.Header.Type == wire.TypeEnd {
			rl.endForwarded = true
		}
		f.Header.Sequence = rl.downSeq
		f.Header.Version = down.version
		rl.downSeq++
		if !response && req.state == reqPushed {
			ch.retainLocked(req, &f)
		}
		if response {
			ch.toSenderLocked(req, f)
		} else {
			ch.send(down, f)
		}
		rl.pending[sent] = frame.Frame{}
		sent++
	}
	if sent > 0 {
		rest := copy(rl.pending, rl.pending[sent:])
		clear(rl.pending[rest:])
		rl.pending = rl.pending[:rest]
	}
	if response && rl.endForwarded {
		ch.finishLocked(req, OutcomeCompleted)
		return
	}
	if !response && req.gather != nil && rl.endForwarded {
		ch.publishTookLocked(req, false)
		if req.state == reqEnded {
			return
		}
	}
	ch.grantHoldingLocked(req, response, held)
	ch.shrinkLocked(req, response)
}

// grantAmountLocked computes and records the credit to grant upstream now:
// whatever keeps the stream's total within one window, once at least half a
// window is free. A queued request is granted only what the channel's queue
// budget allows.
//
// hold says the relay is holding a frame back until earlier bytes are
// written, so the writer must still come back (waiting stays set) even
// when the grant needs no such wake-up.
func (ch *channel) grantAmountLocked(req *request, response, hold bool) int {
	rl := req.relay(response)
	if rl.ended || req.state == reqEnded {
		return 0
	}
	payer := req.payer(response)
	window := payer.window() // the upstream's
	if initial := payer.initialCredit(); window > initial && !payer.acct.HalfFree() {
		// A window beyond the implicit one is for when memory is
		// plentiful: past half of any of the payer's accounts, streams
		// grow no further than the protocol's, and new requests still
		// find room (TestCrossNodeMemoryBudget: 16 streams of 2 MiB on
		// one channel's 8 MiB share were refused at their start with
		// 1 MiB windows).
		window = initial
	}
	if !response && req.sender.remote == 0 {
		// A request body's window grows with what it has carried, to
		// twice its bytes so far (slow start): a body that has sent 16 KiB
		// is granted 16 KiB more, not a whole window, and is charged for
		// what it may really come to hold. A long body doubles its window
		// every grant and reaches the full one after 256 KiB. Not on the
		// hop between nodes, whose streams share one member's budget:
		// there, bodies growing their windows together stalled under
		// memory pressure (TestCrossNodeMemoryBudget, 3 runs of 6 on a
		// loaded machine), and each takes the whole window, in turn.
		window = min(window, 2*max(int(min(rl.bytes, int64(window))), wire.InitialRequestCredit))
	}
	// Grant only once the upstream is running low: half a window left, or
	// for a request body's first grant, its initial credit used up. A body
	// under its initial credit never costs a grant; a larger one waits
	// one round trip, once, for its first.
	low := window / 2
	switch {
	case !response && !rl.granted:
		low = 0
	case !rl.granted:
		// A response's first grant comes once half its implicit credit
		// is used, as with a window of that size: a window larger than
		// it (server.Config.StreamWindow) costs a short response no
		// grant, and opens for a long one at that mark.
		low = min(low, payer.initialCredit()/2)
	}
	if rl.upOutstanding > low {
		return 0
	}
	space := window - rl.upOutstanding - rl.pendingBytes - int(rl.inFlight.Load())
	if space < window/2 {
		// Ask the downstream writer to come back as bytes leave, then look
		// again: a write that finished in between is counted either here
		// or by the writer, which then sees waiting set.
		rl.waiting.Store(true)
		space = window - rl.upOutstanding - rl.pendingBytes - int(rl.inFlight.Load())
		if space < window/2 {
			return 0
		}
	}
	queued := !response && req.linked && req.target == nil // a gather's child has its own window
	if limit := ch.r.cfg.MaxChannelQueueBytes; queued && limit > 0 && ch.reserved+int64(space) > limit {
		ch.starved = true
		return 0
	}
	if !ch.commitLocked(req, response, space) {
		ch.starveLocked(req, response)
		return 0
	}
	// The writer need not take the lock for this relay's bytes any more,
	// unless a held frame waits on them.
	rl.waiting.Store(hold)
	if queued {
		ch.reserved += int64(space)
		req.reserved += int64(space)
	}
	rl.upOutstanding += space
	rl.granted = true
	return space
}

// grantLocked sends upstream whatever credit grantAmountLocked allows. The
// upstream of a response is the receiver, so a response stream exists only
// once a receiver holds the request.
func (ch *channel) grantLocked(req *request, response bool) {
	ch.grantHoldingLocked(req, response, false)
}

// grantHoldingLocked is grantLocked for pumpLocked, which may be holding a
// frame back (see grantAmountLocked).
func (ch *channel) grantHoldingLocked(req *request, response, hold bool) {
	if req.gather != nil && !response {
		// A gather's child is granted by its parent, for all of them.
		if ch.grantAmountLocked(req, false, hold) > 0 {
			ch.fanGrantLocked(req.gather)
		}
		return
	}
	up, flags := req.sender, wire.FlagRequest
	if response {
		up, flags = req.receiver, wire.FlagResponse
	}
	if up == nil {
		return
	}
	if n := ch.grantAmountLocked(req, response, hold); n > 0 {
		ch.send(up, creditFrame(ch, up, req.id, flags, n))
	}
}

// regrantQueuedLocked gives queue budget freed by a departing request to
// queued requests that were waiting for it, oldest first.
func (ch *channel) regrantQueuedLocked() {
	if !ch.starved {
		return
	}
	ch.starved = false
	for req := ch.queue.head; req != nil && !ch.starved; req = req.next {
		if req.reserved == 0 {
			ch.grantLocked(req, false)
		}
	}
}

// failLocked ends a request with an error: the sender gets an error frame
// for its request and the receiver, if any, one cancelling what it holds.
// Members that are gone are skipped.
func (ch *channel) failLocked(req *request, code wire.Code, msg string) {
	ch.failWithLocked(req, code, msg, wire.FlagReceive)
}

// failWithLocked is failLocked with the flags of the receiver's error frame:
// FlagReceive when the request is cancelled, FlagResponse when the receiver's
// own response is refused.
func (ch *channel) failWithLocked(req *request, code wire.Code, msg string, receiverFlags wire.Flags) {
	if req.state == reqEnded {
		return
	}
	if req.fan != nil {
		ch.failGatherLocked(req.fan, code, msg) // the gather ends with its last child
		return
	}
	if req.isLeg() {
		ch.failLegLocked(req, code, msg) // its node's members that have no outcome
	} else if s := req.sender; !s.gone {
		flags := wire.FlagRequest
		if code == wire.CodeRemote {
			flags = wire.FlagResponse
		}
		f := ch.errorFrameTo(s, req, flags, code, msg)
		if code == wire.CodeRemote && req.receiver != nil {
			f.Header.ClientID = req.receiver.id // like every response frame
		}
		ch.toSenderLocked(req, f)
	}
	if rcv := req.receiver; rcv != nil && !rcv.gone && code != wire.CodeRemote {
		ch.send(rcv, errorFrame(ch, rcv, req.id, receiverFlags, code, msg))
	}
	ch.finishLocked(req, outcomeOf(code))
}

// finishLocked removes a request from every table and releases what it holds.
func (ch *channel) finishLocked(req *request, outcome Outcome) {
	if req.state == reqEnded {
		return
	}
	req.to(reqEnded)
	if req.timer != nil {
		req.timer.Stop()
	}
	ch.unqueueLocked(req)
	ch.reserved -= req.reserved
	req.reserved = 0
	delete(ch.requests, req.id)
	if req.gather == nil {
		delete(req.sender.sent, req.id)
		if !req.body.ended {
			ch.tombstoneLocked(req.sender, req.id)
		}
	}
	if rcv := req.receiver; rcv != nil {
		delete(rcv.held, req.id)
		if !req.resp.ended {
			ch.tombstoneLocked(rcv, req.id)
		}
	}
	for _, rl := range []*relay{&req.body, &req.resp} {
		for i := range rl.pending {
			rl.pending[i].Release()
		}
		rl.pending = nil
		rl.pendingBytes = 0
	}
	if req.receiver != nil {
		ch.dropRetainedLocked(req)
	}
	ch.releaseChargesLocked(req)
	if req.gather != nil {
		req.headers = nil // the parent's, which it releases
		ch.r.inFlight.Add(-1)
		ch.gatherChildEndedLocked(req, outcome)
		ch.r.signalIfIdle()
		return
	}
	ch.releaseRequestHeadersLocked(req)
	ch.r.counts[outcome].Add(1)
	ch.counts[outcome].Add(1)
	ch.r.latency.observe(time.Since(req.started))
	ch.r.inFlight.Add(-1)
	ch.regrantQueuedLocked()
	ch.r.signalIfIdle()
}
