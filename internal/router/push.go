package router

import (
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Pushed requests (protocol v2, docs/PROTOCOL.md section 20). A v2 member
// states how many requests it can take with a push credit frame
// (start|receive, the zero ID, a 4-byte count); its units wait in the
// channel's FIFO of waiting receivers, so pushes and Receive polls of every
// member are served in the order they came. Units granted one after
// another, with no other receiver between them, are one entry of that FIFO
// (a run: poll.units), so credit costs the server an entry per grant, not
// per unit. A member's credit is the number of its handlers that are idle,
// so a busy member holds nothing it is not running.
//
// A pushed request may go back to the queue (a return: error|receive
// returned) as long as the member has not taken it: it has not granted
// credit for its body nor started a response. Until then the server keeps
// a copy of every body byte it forwarded (retained, charged to the
// member's account), so that the request can be delivered again whole.

// maxPushCredit bounds a member's push credit whatever the limits.
const maxPushCredit = 1 << 16

// MaxReturns bounds how many times receivers may return one request. A
// return hands the request to another receiver, which is what it is for
// (a Serve that stops gives back what its handlers did not take), but two
// receivers that return everything could bounce a request between them
// until its timeout, tens of thousands of times a second. The return past
// this many fails the request at its sender with limit instead: no
// handler took it, so the sender may send it again. An honest request is
// returned about once per receiver that stops while holding it.
const MaxReturns = 32

// handlePushLocked handles v2's receive frames with the zero ID (push
// credit and stop) and returns.
func (m *Member) handlePushLocked(f *frame.Frame) error {
	h := &f.Header
	ch := m.ch
	switch h.Type {
	case wire.TypeStart:
		if !h.Final || h.Sequence != 0 {
			return protocolErrorf("push credit is a lone start frame: sequence 0, final")
		}
		n, err := wire.ParseCredit(f.Payload)
		if err != nil {
			return err
		}
		if m.r.closed.Load() {
			ch.send(m, errorFrame(ch, m, wire.ID{}, wire.FlagReceive, wire.CodeServerClosed, "server is shutting down"))
			return nil
		}
		// Credit past the per-client limit is not granted: the member is
		// pushed fewer requests than it asked for, never more.
		grant := int(min(n, maxPushCredit))
		if limit := m.r.cfg.MaxPollsPerClient; limit > 0 {
			grant = min(grant, max(limit-len(m.polls)-len(m.held)-m.pushCredit, 0))
		}
		grant = min(grant, maxPushCredit-m.pushCredit) // even without a limit configured
		for ; grant > 0 && m.targeted.head != nil; grant-- {
			ch.pushLocked(m.targeted.head, m) // gathers' requests for m alone
		}
		for ; grant > 0; grant-- {
			var req *request
			for q := ch.queue.head; q != nil; q = q.next {
				if q.sender != m {
					req = q
					break
				}
			}
			if req == nil {
				break
			}
			ch.pushLocked(req, m)
		}
		ch.addPushCreditLocked(m, grant)
		return nil
	case wire.TypeEnd:
		if !h.Final || h.Sequence != 0 || h.Length != 0 {
			return protocolErrorf("a push stop is a lone end frame: sequence 0, final, no payload")
		}
		// Stop: no more pushes. The answer, the same frame back, follows
		// every push made before it on the connection.
		ch.dropPushCreditLocked(m)
		stop := header(ch, m, wire.TypeEnd, wire.FlagReceive, wire.ID{})
		stop.Final = true
		ch.send(m, frame.Frame{Header: stop})
		return nil
	case wire.TypeError:
		e, err := m.parseError(f)
		if err != nil {
			return err
		}
		if e.Code != wire.CodeReturned {
			return protocolErrorf("a receiver's error|receive gives a pushed request back with code returned, not %s", e.Code)
		}
		req := m.held[h.RequestID]
		if req == nil {
			// The request ended (timed out, cancelled) while the return
			// was on its way, like a sender's late cancel.
			return nil
		}
		if req.state != reqPushed {
			return protocolErrorf("request %x was not pushed to this connection or was taken; it cannot be returned", h.RequestID)
		}
		if req.returns >= MaxReturns {
			// The receiver has let it go: the failure goes to the sender
			// alone.
			ch.dropRetainedLocked(req)
			delete(m.held, req.id)
			req.receiver = nil
			req.to(reqQueued)
			ch.failLocked(req, wire.CodeLimit, "the request was returned by receivers "+itoa(MaxReturns+1)+" times; no handler took it")
			return nil
		}
		req.returns++
		ch.requeueLocked(req)
		return nil
	}
	return protocolErrorf("a client may not send a %s frame with the receive flag and the zero ID", h.Type)
}

// dropPushCreditLocked removes all of m's push credit from the channel's
// waiting receivers and reports whether it had any.
func (ch *channel) dropPushCreditLocked(m *Member) bool {
	if m.pushCredit == 0 {
		return false
	}
	for p := ch.polls.head; p != nil && m.pushCredit > 0; {
		next := p.next
		if p.pushed && p.m == m {
			ch.polls.remove(p)
			m.pushCredit -= p.units
			ch.extraUnits -= p.units - 1
			ch.freePushPollLocked(p)
		}
		p = next
	}
	m.pushCredit = 0
	return true
}

// addPushCreditLocked adds n units of m's push credit behind the channel's
// waiting receivers: to the last entry when it is a run of m's, in a new
// run otherwise.
func (ch *channel) addPushCreditLocked(m *Member, n int) {
	if n <= 0 {
		return
	}
	m.pushCredit += n
	if t := ch.polls.tail; t != nil && t.pushed && t.m == m {
		t.units += n
		ch.extraUnits += n
		return
	}
	p := ch.newPushPollLocked(m)
	p.units = n
	ch.extraUnits += n - 1
	ch.polls.push(p)
}

// takePollLocked takes one waiting receiver from p, which is about to be
// handed a request: p itself, or one unit of its run. It reports whether p
// left the channel's waiting receivers (a run of several units stays, one
// shorter).
func (ch *channel) takePollLocked(p *poll) (removed bool) {
	if !p.pushed {
		ch.polls.remove(p)
		delete(p.m.polls, p.id)
		return true
	}
	p.m.pushCredit--
	if p.units > 1 {
		p.units--
		ch.extraUnits--
		return false
	}
	ch.polls.remove(p)
	return true
}

// readyLocked returns how many receivers wait on the channel: Receive
// polls and units of push credit.
func (ch *channel) readyLocked() int { return ch.polls.n + ch.extraUnits }

// maxFreePolls bounds the channel's free list of push-credit entries.
const maxFreePolls = 1024

// newPushPollLocked returns an entry for a run of m's push credit, from
// the channel's free list when it has one.
func (ch *channel) newPushPollLocked(m *Member) *poll {
	if k := len(ch.freePolls); k > 0 {
		p := ch.freePolls[k-1]
		ch.freePolls[k-1] = nil
		ch.freePolls = ch.freePolls[:k-1]
		p.m = m
		return p
	}
	return &poll{m: m, pushed: true}
}

// freePushPollLocked keeps a used run of push credit for reuse.
func (ch *channel) freePushPollLocked(p *poll) {
	if len(ch.freePolls) < maxFreePolls {
		p.m, p.units = nil, 0
		ch.freePolls = append(ch.freePolls, p)
	}
}

// placeLocked hands req to p (a poll, or a unit of a run of push credit).
func (ch *channel) placeLocked(req *request, p *poll) {
	removed := ch.takePollLocked(p)
	if p.pushed {
		m := p.m
		if removed {
			ch.freePushPollLocked(p)
		}
		ch.pushLocked(req, m)
		return
	}
	ch.assignLocked(req, p.m, p.id)
}

// pushLocked hands req to m without a poll, returnable until taken.
func (ch *channel) pushLocked(req *request, m *Member) {
	req.to(reqPushed)
	ch.assignLocked(req, m, wire.ID{})
}

// takeLocked records that req's receiver has taken it: it can no longer be
// returned, and the copies kept for a return are released.
func (ch *channel) takeLocked(req *request) {
	if req.state != reqPushed {
		return
	}
	req.to(reqDelivered)
	ch.dropRetainedLocked(req)
}

// retainLocked keeps a copy of a body frame forwarded to the receiver of
// a pushed request that has not been taken.
func (ch *channel) retainLocked(req *request, f *frame.Frame) {
	kept := frame.Frame{Header: f.Header}
	if len(f.Payload) > 0 {
		kept.Payload = frame.GetBuffer(len(f.Payload))
		copy(kept.Payload, f.Payload)
		kept.Pooled = true
	}
	ch.keepRetainedLocked(req, kept)
}

// keepRetainedLocked adds f to req's retained frames, charging it to the
// receiver, who holds the request.
func (ch *channel) keepRetainedLocked(req *request, f frame.Frame) {
	cost := frame.Cost(&f)
	req.receiver.acct.Charge(cost)
	req.retainedCost += cost
	req.retainedBytes += len(f.Payload)
	if req.retained == nil {
		req.retained = req.retainedArr[:0]
	}
	req.retained = append(req.retained, f)
}

// dropRetainedLocked releases req's retained frames and their charge.
func (ch *channel) dropRetainedLocked(req *request) {
	for i := range req.retained {
		req.retained[i].Release()
	}
	clear(req.retainedArr[:])
	req.retained, req.retainedBytes = nil, 0
	if req.retainedCost > 0 {
		req.receiver.acct.Release(req.retainedCost)
		req.retainedCost = 0
		ch.r.memoryFreed()
	}
}

// requeueLocked puts a returned request back at the head of the queue,
// with the body frames its receiver was sent restored from the retained
// copies, and hands it to the next waiting receiver if there is one.
func (ch *channel) requeueLocked(req *request) {
	m := req.receiver
	delete(m.held, req.id)
	rl := &req.body
	// A new slice: retained may be the request's own array, which the
	// next push fills again.
	restored := make([]frame.Frame, 0, len(req.retained)+len(rl.pending))
	restored = append(append(restored, req.retained...), rl.pending...)
	clear(req.retainedArr[:])
	rl.pendingBytes += req.retainedBytes
	req.retained, req.retainedBytes = nil, 0
	if req.retainedCost > 0 {
		m.acct.Release(req.retainedCost)
		req.retainedCost = 0
	}
	rl.pending = restored
	rl.downSeq, rl.downCredit, rl.endForwarded = 1, 0, false
	req.receiver = nil
	req.to(reqQueued)
	ch.chargeLocked(req, false) // the sender pays for the restored frames
	ch.r.memoryFreed()
	if ch.r.closed.Load() {
		// Shutting down: queued requests fail, and so does this one.
		ch.failLocked(req, wire.CodeServerClosed, "server is shutting down")
		return
	}
	if req.target != nil {
		ch.targetLocked(req) // a gather's: for its member alone
		return
	}
	ch.queue.pushFront(req)
	for p := ch.polls.head; p != nil; p = p.next {
		if p.m != req.sender {
			ch.placeLocked(req, p)
			return
		}
	}
	ch.offerRemoteLocked(req)
}
