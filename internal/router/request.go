package router

import (
	"errors"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// request is one request's routing state, guarded by its channel's lock.
type request struct {
	id       wire.ID
	ch       *channel
	sender   *Member
	receiver *Member // nil while queued
	started  time.Time
	deadline time.Time
	timer    *time.Timer

	link[request]       // in ch.queue while it waits for a receiver (linked)
	reserved      int64 // credit reserved from the channel's queue budget

	state reqState // where it is in its life (state.go)

	body relay // the request body, sender -> receiver
	resp relay // the response body, receiver -> sender

	// from is the client ID of the request's true sender: the sender's
	// own, or for a request another node offered, the ID of the client
	// that sent it there (docs/PROTOCOL.md section 21).
	from wire.ID
	// headers is the request's header block (v3), encoded with its
	// length prefix; nil when it has none. headersCost is charged to the
	// sender's account for it.
	headers     []byte
	headersCost int64
	// failure is what a receiver's v3 Fail carries besides its message.
	failure *remoteFailure

	// Pushed requests (push.go): in state reqPushed while held by a
	// receiver that got it through push credit, until that receiver takes
	// it by granting credit for its body or starting its response. Until
	// then retained holds a copy of every body frame forwarded to it.
	retained      []frame.Frame
	retainedArr   [2]frame.Frame // retained's first backing array: a whole body's two frames
	retainedBytes int
	retainedCost  int64 // charged to the receiver's account
	returns       int   // times receivers returned it (MaxReturns)

	// Gathers (gather.go): fan is set on a gather's parent, the request
	// its sender streams; gather and target on each of its children, the
	// request to one member.
	fan    *gather
	gather *gather
	target *Member
}

// relay is one direction of a request: a stream from an upstream member
// (who sends it) to a downstream member (who reads it), flow-controlled on
// both hops. The server holds at most window bytes of it: credit granted
// upstream and not yet used, plus bytes waiting for downstream credit, plus
// bytes queued for the downstream socket.
type relay struct {
	nextSeq       uint32        // the sequence number the next upstream frame must carry
	chunks        int           // chunk frames received
	bytes         int64         // body bytes received
	ended         bool          // the end frame has arrived from upstream
	endForwarded  bool          // the end frame has gone to downstream
	pending       []frame.Frame // frames waiting for downstream credit or a receiver
	pendingBytes  int
	upOutstanding int    // credit granted upstream and not yet used
	downCredit    int    // bytes downstream will accept
	granted       bool   // upstream has had a grant beyond its initial credit
	downSeq       uint32 // the sequence number of the next frame forwarded downstream
	charged       int64  // memory charged to the payer's account (memory.go)
	memStarved    bool   // a grant is held back until memory is freed

	// inFlight counts bytes queued for the downstream socket and not yet
	// written; the downstream's writer decrements it without the channel
	// lock. waiting says a grant is held back until some of them are
	// written, and only then does the writer take the lock to grant.
	inFlight atomic.Int64
	waiting  atomic.Bool
}

// relay returns the request body's relay, or the response's.
func (req *request) relay(response bool) *relay {
	if response {
		return &req.resp
	}
	return &req.body
}

// bodySent and respSent receive write notifications for the two relays
// without allocating: they are the request itself under another type.
type bodySent request
type respSent request

func (s *bodySent) FrameSent(n int) { (*request)(s).frameSent(n, false) }
func (s *respSent) FrameSent(n int) { (*request)(s).frameSent(n, true) }

func (req *request) frameSent(n int, response bool) {
	rl := req.relay(response)
	rl.inFlight.Add(-int64(n))
	if !rl.waiting.Load() {
		return // nothing waits on these bytes: no lock on the writer's path
	}
	ch := req.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	rl.waiting.Store(false) // pumpLocked sets it again if it still waits
	if req.state != reqEnded {
		ch.pumpLocked(req, response)
	}
}

// handleRequestLocked handles a frame of a request stream from its sender.
func (m *Member) handleRequestLocked(f *frame.Frame) error {
	h := &f.Header
	if h.Type == wire.TypeStart {
		return m.startRequestLocked(f, m.id)
	}
	req := m.sent[h.RequestID]
	if req == nil {
		if h.Type == wire.TypeError || m.ended.has(h.RequestID) {
			// The request ended (a cancel may cross its response on the
			// wire); the sender has not heard yet.
			return nil
		}
		return protocolErrorf("%s frame for request %x, which this connection has not started", h.Type, h.RequestID)
	}
	if h.Type == wire.TypeError {
		e, err := m.parseError(f)
		if err != nil {
			return err
		}
		if e.Code != wire.CodeCancelled && e.Code != wire.CodeAborted && e.Code != wire.CodeTimeout {
			return protocolErrorf("a sender may end its request with cancelled, aborted or timeout, not %s", e.Code)
		}
		m.ch.failLocked(req, e.Code, relayedMessage(e.Message))
		return nil
	}
	h.Flags = wire.FlagReceive
	h.ClientID = m.id
	return m.ch.streamFrameLocked(req, f, false)
}

// startRequestLocked opens a request from the client from: it is refused,
// handed to a waiting receiver, or queued (start.go has the steps every
// request's start takes). In v2 a start frame with the final bit is a
// whole request: start, its body (the payload, within the initial credit)
// and end in one frame. In v3 the payload begins with the request's header
// block. A gather or publish (FlagAll) fans out instead (gather.go).
func (m *Member) startRequestLocked(f *frame.Frame, from wire.ID) error {
	h := &f.Header
	ch := m.ch
	s, err := m.checkStartLocked(f)
	if err != nil {
		return err
	}
	if code, msg, ok := m.admitLocked(f, s); !ok {
		return m.refuseLocked(h.RequestID, code, msg)
	}
	if h.Flags.Has(wire.FlagAll) {
		return m.startGatherLocked(f, s, from)
	}
	target := ch.firstReceiverLocked(m)
	if target == nil && m.remote == RemoteSender {
		return m.refuseLocked(h.RequestID, wire.CodeReturned, "no receiver is waiting on this node")
	}
	if limit := m.r.cfg.MaxQueuedRequestsPerChannel; target == nil && limit > 0 && ch.queue.n >= limit {
		return m.refuseLocked(h.RequestID, wire.CodeLimit, "the channel's request queue is full")
	}
	req := m.newRequestLocked(h.RequestID, from, f.Payload[:s.hlen])
	if req == nil {
		return m.refuseLocked(h.RequestID, wire.CodeLimit, errMemoryShort)
	}
	ch.openLocked(req, m.r.cfg.timeoutOf(h.TimeoutMillis))
	if s.whole {
		ch.keepWholeLocked(req, f, s.hlen)
		ch.shrinkLocked(req, false)
	}
	if target != nil {
		ch.placeLocked(req, target)
	} else if !ch.offerRemoteLocked(req) {
		ch.queue.push(req)
	}
	if !m.v2() {
		// v1 acknowledges the start, with no credit: a new request still
		// holds its initial credit, and grants come in credit frames once
		// it is used (a client accepts a 4-byte grant in it all the same).
		ack := frame.Frame{Header: header(ch, m, wire.TypeStart, wire.FlagRequest, req.id)}
		ack.Lazy = true // nobody waits on it: it rides with the next write
		ch.send(m, ack)
	}
	return nil
}

// firstReceiverLocked returns the oldest waiting receiver (a poll or a
// unit of push credit) that is not m's, or nil.
func (ch *channel) firstReceiverLocked(m *Member) *poll {
	for p := ch.polls.head; p != nil; p = p.next {
		if p.m != m {
			return p
		}
	}
	return nil
}

// handleResponseLocked handles a frame of a response stream from the
// member holding the request.
func (m *Member) handleResponseLocked(f *frame.Frame) error {
	h := &f.Header
	req := m.held[h.RequestID]
	if req == nil {
		if m.ended.has(h.RequestID) {
			return nil
		}
		return protocolErrorf("response for request %x, which was not handed to this connection", h.RequestID)
	}
	ch := m.ch
	if g := req.gather; g != nil && g.publish {
		// A published request wants no answer: that the member gives one
		// says it took the request, and the answer is dropped.
		ch.publishTookLocked(req, true)
		return nil
	}
	switch h.Type {
	case wire.TypeStart:
		if req.state == reqResponding {
			return protocolErrorf("second response to request %x", h.RequestID)
		}
		hlen, tooLarge, err := m.headerBlockLen(f.Payload)
		if err != nil {
			return err
		}
		if tooLarge {
			ch.failWithLocked(req, wire.CodeTooLarge, "response headers of "+itoa(int64(hlen-wire.HeaderBlockLenSize))+" bytes exceed the server's limit of "+itoa(int64(ch.r.cfg.maxHeaderBytes())), wire.FlagResponse)
			return nil
		}
		if m.v2() && h.Final && h.Sequence == 0 {
			return ch.wholeResponseLocked(req, f, hlen)
		}
		if h.Sequence != 0 || h.Final || len(f.Payload) != hlen {
			return protocolErrorf("a response start frame has sequence 0, no final bit and no payload but its header block")
		}
		ch.takeLocked(req)
		req.to(reqResponding)
		req.resp.nextSeq, req.resp.downSeq = 1, 1
		req.resp.upOutstanding = m.initialCredit()
		req.resp.downCredit = req.sender.initialCredit()
		if req.gather != nil {
			req.resp.downCredit = wire.StreamWindow // a reply's window, whoever its sender (24.5)
		}
		// A version-1 response's window is implicit: the receiver may send
		// it all without asking. It is charged whether or not the budget
		// has room, so that a shortage shows as pressure (and the reaper
		// cuts whoever holds the most) instead of refusing honest
		// responses, most of which end in the same read as they start.
		ch.chargeLocked(req, true)
		sh := header(ch, req.sender, wire.TypeStart, wire.FlagResponse, req.id)
		sh.ClientID = m.id
		start := frame.Frame{Header: sh}
		if req.sender.v3() {
			// The start frame goes on with the header block it carries.
			start = take(f)
			start.Header, start.Payer = sh, m.acct // the responder pays for its headers
			if len(start.Payload) == 0 {
				start.Payload = wire.NoHeaders // from a v1 or v2 receiver
			}
		}
		ch.toSenderLocked(req, start)
		return nil
	case wire.TypeError:
		e, err := m.parseError(f)
		var werr *wire.Error
		if errors.As(err, &werr) && werr.Code == wire.CodeTooLarge {
			ch.failWithLocked(req, wire.CodeTooLarge, "the failure's response headers exceed the server's limit of "+itoa(int64(ch.r.cfg.maxHeaderBytes()))+" bytes", wire.FlagResponse)
			return nil
		}
		if err != nil {
			return err
		}
		if e.Code != wire.CodeRemote {
			return protocolErrorf("a receiver fails a request with code remote, not %s", e.Code)
		}
		ch.takeLocked(req)
		ch.remoteFailLocked(req, e)
		return nil
	}
	if req.state != reqResponding {
		return protocolErrorf("%s frame of a response that has not started", h.Type)
	}
	h.Flags = wire.FlagResponse
	h.ClientID = m.id
	return ch.streamFrameLocked(req, f, true)
}

// streamFrameLocked checks a chunk or end frame of a body against its
// stream's sequence, credit and size limit, then relays it.
func (ch *channel) streamFrameLocked(req *request, f *frame.Frame, response bool) error {
	h := &f.Header
	rl := req.relay(response)
	if rl.ended {
		return protocolErrorf("%s frame after the final frame of stream %x", h.Type, h.RequestID)
	}
	if h.Sequence != rl.nextSeq {
		return protocolErrorf("stream %x: got sequence %d, want %d", h.RequestID, h.Sequence, rl.nextSeq)
	}
	n := len(f.Payload)
	switch h.Type {
	case wire.TypeChunk:
		if h.Final {
			return protocolErrorf("chunk frame with the final bit; a stream ends with an end frame")
		}
		if n == 0 && rl.chunks > 0 {
			return protocolErrorf("stream %x: empty chunk after the first; only an empty body has an empty chunk", h.RequestID)
		}
		if n > rl.upOutstanding {
			return protocolErrorf("stream %x: %d bytes sent with %d bytes of credit", h.RequestID, n, rl.upOutstanding)
		}
		rl.upOutstanding -= n
		rl.bytes += int64(n)
		rl.chunks++
		if max := ch.r.cfg.MaxMessageBytes; max > 0 && rl.bytes > max {
			if response {
				ch.failWithLocked(req, wire.CodeTooLarge, "response body exceeds the server's limit of "+itoa(max)+" bytes", wire.FlagResponse)
			} else {
				ch.failLocked(req, wire.CodeTooLarge, "request body exceeds the server's limit of "+itoa(max)+" bytes")
			}
			return nil
		}
	case wire.TypeEnd:
		if n != 0 {
			return protocolErrorf("end frame with a payload")
		}
		if rl.chunks == 0 {
			return protocolErrorf("stream %x ended without a chunk frame; an empty body has one empty chunk", h.RequestID)
		}
		rl.ended = true
		if !response && !req.sender.v2() {
			// Acknowledge the end: the whole body is in the server.
			ack := header(ch, req.sender, wire.TypeEnd, wire.FlagRequest, req.id)
			ack.Sequence, ack.Final = h.Sequence, true
			ch.send(req.sender, frame.Frame{Header: ack, Lazy: true})
		}
	default:
		return protocolErrorf("unexpected %s frame in stream %x", h.Type, h.RequestID)
	}
	rl.nextSeq++
	h.TimeoutMillis = 0
	rl.pendingBytes += n
	rl.keepLocked(f)
	ch.pumpLocked(req, response)
	return nil
}

// wholeResponseLocked handles a v2 whole response (start, body and end in
// one frame, any payload up to MaxFramePayload, within the response's
// implicit window) whose payload begins with hlen bytes of header block
// (v3): it goes to a v2 or v3 sender as one frame too, to a v1 sender as
// start, chunk and end, and the request is complete.
func (ch *channel) wholeResponseLocked(req *request, f *frame.Frame, hlen int) error {
	m := req.receiver
	if max := ch.r.cfg.MaxMessageBytes; max > 0 && int64(len(f.Payload)-hlen) > max {
		ch.failWithLocked(req, wire.CodeTooLarge, "response body exceeds the server's limit of "+itoa(max)+" bytes", wire.FlagResponse)
		return nil
	}
	ch.takeLocked(req)
	req.to(reqResponding)
	req.resp.ended, req.resp.endForwarded = true, true
	s := req.sender
	if !s.gone {
		// The response is bounded by the requests s sent, not by the
		// slow-consumer cap: the responder pays for it until it is
		// written (Payer), so a responder that answers a burst of
		// requests at once holds its own memory, not s's.
		sh := header(ch, s, wire.TypeStart, wire.FlagResponse, req.id)
		sh.ClientID = m.id
		fits := len(f.Payload)+wire.HeaderBlockLenSize <= wire.MaxFramePayload
		switch {
		case s.v3() && !m.v3() && fits: // from a v2 receiver: no headers
			sh.Final = true
			p := frame.GetBuffer(wire.HeaderBlockLenSize + len(f.Payload))
			copy(p, wire.NoHeaders)
			copy(p[wire.HeaderBlockLenSize:], f.Payload)
			ch.toSenderLocked(req, frame.Frame{Header: sh, Payload: p, Pooled: true, Payer: m.acct})
		case s.v2() && (m.v3() || !s.v3()):
			sh.Final = true
			w := take(f)
			w.Header, w.Payer = sh, m.acct
			if !s.v3() {
				w.Payload = cutFront(w.Payload, hlen)
			}
			ch.toSenderLocked(req, w)
		default: // to a v1 sender, or too long for a v3 sender in one frame
			ch.toSenderLocked(req, frame.Frame{Header: sh, Payload: headersFor(s, nil), Payer: m.acct})
			chunk := take(f)
			chunk.Payload = cutFront(chunk.Payload, hlen)
			chunk.Header, chunk.Payer = sh, m.acct
			chunk.Header.Type, chunk.Header.Sequence = wire.TypeChunk, 1
			ch.toSenderLocked(req, chunk)
			end := sh
			end.Type, end.Sequence, end.Final = wire.TypeEnd, 2, true
			ch.toSenderLocked(req, frame.Frame{Header: end, Payer: m.acct})
		}
	}
	ch.finishLocked(req, OutcomeCompleted)
	return nil
}
