package socketbus

import (
	"fmt"
	"math/bits"
	"strings"
	"testing"
)

// This file checks the client's "at most once" rule exhaustively: a model
// of one request on one connection, with every event that bears on it —
// the client registers and queues the request, its writer takes the start
// frame, the bytes leave, the write succeeds or fails, the client's
// socket closes or the network is cut, bytes in flight arrive or are
// lost, the server reads the request and refuses it (server_closed),
// queues it, delivers it to a handler, answers, fails it from the queue,
// sends its drain notice, its goodbye or crashes, the client's reader
// reads what the server sent (in order) or sees the close, and the
// client decides. Every order of these events that respects causality is
// run, and the decisions are made by the client's own code: FrameTaken
// records the facts as the writer does, and deliveryFacts.decide
// decides, as afterLoss, the refusal handler and sendAttempt do.
//
// The invariant, in every terminal state of every order: the request was
// re-sent or reported not delivered only if no handler ever had it, a
// success was delivered, and the call has ended (nothing is stuck).

type writerState uint8

const (
	writerIdle writerState = iota
	writerWriting
	writerStopped
)

type bytesState uint8

const (
	bytesNone     bytesState = iota
	bytesInFlight            // on the wire toward the server
	bytesArrived
	bytesDropped
)

type serverReq uint8

const (
	srvNone      serverReq = iota
	srvQueued              // read and waiting for a receiver
	srvDelivered           // a handler has it
	srvEnded               // refused, failed or answered
)

type message uint8

const (
	msgNotice message = iota + 1
	msgAck
	msgRefusal
	msgResponse
	msgGoodbye
)

type outcome uint8

const (
	endNone outcome = iota
	endSuccess
	endResend
	endNotDelivered
	endSeen
)

func outcomeOf(v verdict) outcome {
	switch v {
	case resend:
		return endResend
	case notDelivered:
		return endNotDelivered
	}
	return endSeen
}

// modelState is one state of the model. It is comparable, so that the
// search visits each state once.
type modelState struct {
	registered, queued, swept bool
	inQueue                   bool // the start frame waits in the connection's queue
	writer                    writerState
	bytes                     bytesState
	closed                    bool // the client's socket is closed
	linkDown                  bool // the network is cut
	readerStopped             bool
	noticed, goodbye          bool // what the client's reader read

	// The request's deliveryFacts.
	taken, afterNotice, refused, acked, answered, drained bool
	end                                                   outcome
	written                                               bool // a write of the request succeeded (only the old rule looks)

	serverUp, srvConn, refusing bool // srvConn: the server still reads and writes this connection
	atServer                    serverReq
	delivered                   bool // a handler had the request (the ghost the invariant is about)
	toClient                    [5]message
	queuedMsgs                  uint8
}

// modelConfig is what stays fixed in one run of the model.
type modelConfig struct {
	v1        bool // the server acknowledges requests
	canResend bool // the body can be replayed and the client reconnects
	// oldRule decides as the client did before issue 17, when its reader
	// saw the close, whether or not the writer had stopped: a request was
	// re-sent unless a write of it had succeeded, or whatever was written
	// once the server had said it was draining. The check must catch it.
	oldRule bool
}

// call makes a sendCall holding the state's facts, on a client holding
// its connection's notice.
func (s *modelState) call() *sendCall {
	cc := &clientConn{}
	cc.noticed.Store(s.noticed)
	call := &sendCall{c: &Client{}, cc: cc}
	d := &call.delivery
	d.taken.Store(s.taken)
	d.afterNotice.Store(s.afterNotice)
	d.refused.Store(s.refused)
	d.acked.Store(s.acked)
	d.answered.Store(s.answered)
	d.drained.Store(s.drained)
	return call
}

// store copies the call's facts back into the state.
func (s *modelState) store(call *sendCall) {
	d := &call.delivery
	s.taken, s.afterNotice, s.refused = d.taken.Load(), d.afterNotice.Load(), d.refused.Load()
	s.acked, s.answered, s.drained = d.acked.Load(), d.answered.Load(), d.drained.Load()
}

func (s *modelState) push(m message) {
	if s.srvConn {
		s.toClient[s.queuedMsgs] = m
		s.queuedMsgs++
	}
}

type step struct {
	name string
	next modelState
}

// steps returns every event enabled in s and the state it leads to.
func (s modelState) steps(cfg modelConfig) []step {
	var out []step
	add := func(name string, f func(n *modelState)) {
		n := s
		f(&n)
		out = append(out, step{name, n})
	}
	// The client's Send.
	if !s.registered {
		add("register", func(n *modelState) { n.registered = true })
	}
	if s.registered && !s.queued && s.end == endNone {
		add("queue", func(n *modelState) {
			n.queued, n.inQueue = true, !n.closed
			if n.closed {
				// The connection had closed: nothing was queued
				// (sendAttempt's error path).
				n.end = outcomeOf(n.call().delivery.decide(cfg.canResend))
			}
		})
	}
	// The client's writer.
	if s.inQueue && s.writer == writerIdle {
		add("take", func(n *modelState) {
			n.writer, n.inQueue = writerWriting, false
			call := n.call()
			call.FrameTaken()
			n.store(call)
		})
	}
	if s.writer == writerWriting && s.bytes == bytesNone && !s.closed {
		add("bytes out", func(n *modelState) { n.bytes = bytesInFlight })
	}
	if s.writer == writerWriting && s.bytes != bytesNone {
		add("write ok", func(n *modelState) { n.writer, n.written = writerIdle, true })
	}
	if s.writer == writerWriting {
		add("write error", func(n *modelState) { n.writer, n.closed = writerIdle, true })
	}
	if s.closed && s.writer == writerIdle {
		add("writer stops", func(n *modelState) { n.writer = writerStopped })
	}
	// The network.
	if !s.closed {
		add("client closes", func(n *modelState) { n.closed = true })
	}
	if !s.linkDown {
		add("link cut", func(n *modelState) { n.linkDown = true })
	}
	if s.bytes == bytesInFlight && s.srvConn {
		add("bytes arrive", func(n *modelState) {
			n.bytes = bytesArrived
			if n.refusing {
				n.atServer = srvEnded
				n.push(msgRefusal)
				return
			}
			n.atServer = srvQueued
			if cfg.v1 {
				n.push(msgAck)
			}
		})
	}
	if s.bytes == bytesInFlight && (s.linkDown || !s.srvConn) {
		add("bytes lost", func(n *modelState) { n.bytes = bytesDropped })
	}
	// The server.
	if s.atServer == srvQueued && s.serverUp && !s.refusing {
		add("deliver", func(n *modelState) { n.atServer, n.delivered = srvDelivered, true })
	}
	if s.atServer == srvQueued && s.serverUp && s.refusing {
		add("fail from queue", func(n *modelState) {
			n.atServer = srvEnded
			n.push(msgRefusal)
		})
	}
	if s.atServer == srvDelivered && s.srvConn {
		add("respond", func(n *modelState) {
			n.atServer = srvEnded
			n.push(msgResponse)
		})
	}
	if s.serverUp && !s.refusing {
		add("drain notice", func(n *modelState) {
			n.refusing = true // Refuse, then the notice
			n.push(msgNotice)
		})
	}
	if s.serverUp && s.srvConn && s.refusing && s.atServer != srvQueued && s.atServer != srvDelivered {
		add("goodbye", func(n *modelState) {
			n.push(msgGoodbye)
			n.srvConn, n.serverUp = false, false
		})
	}
	if s.serverUp {
		add("server closes at once", func(n *modelState) { n.srvConn, n.serverUp = false, false })
	}
	if s.srvConn && (s.closed || s.linkDown) && (s.bytes != bytesInFlight || s.linkDown) {
		add("server sees the close", func(n *modelState) {
			n.srvConn = false
			if n.atServer == srvQueued {
				n.atServer = srvEnded // its sender left: it fails unseen
			}
		})
	}
	// The client's reader.
	if !s.readerStopped && s.queuedMsgs > 0 && !s.closed && !s.linkDown {
		add("read", func(n *modelState) {
			m := n.toClient[0]
			copy(n.toClient[:], n.toClient[1:])
			n.queuedMsgs--
			n.toClient[n.queuedMsgs] = 0
			live := n.registered && n.end == endNone
			switch m {
			case msgNotice:
				n.noticed = true
			case msgAck:
				if live {
					n.acked = true
				}
			case msgRefusal:
				if live {
					call := n.call()
					call.delivery.refused.Store(true)
					n.store(call)
					n.end = outcomeOf(call.delivery.decide(cfg.canResend))
				}
			case msgResponse:
				if live {
					n.answered, n.end = true, endSuccess
				}
			case msgGoodbye:
				n.goodbye = true
				n.readerStopped, n.closed = true, true
			}
		})
	}
	if !s.readerStopped && (s.closed || s.linkDown || !s.srvConn) {
		add("reader sees the close", func(n *modelState) { n.readerStopped, n.closed = true, true })
	}
	// afterLoss: once the reader and the writer have stopped.
	if !s.swept && s.readerStopped && (s.writer == writerStopped || cfg.oldRule) {
		add("decide", func(n *modelState) {
			n.swept = true
			if !n.registered || n.end != endNone {
				return
			}
			if cfg.oldRule {
				n.end = n.oldDecision(cfg.canResend)
				return
			}
			call := n.call()
			if n.goodbye {
				call.delivery.drained.Store(true)
			}
			n.store(call)
			n.end = outcomeOf(call.delivery.decide(cfg.canResend))
		})
	}
	return out
}

// oldDecision is the client's rule before issue 17 (connClosed), kept
// here only to show that the check catches it.
func (s *modelState) oldDecision(canResend bool) outcome {
	drained := s.noticed
	switch {
	case !s.acked && !s.answered && canResend && (drained || !s.written):
		return endResend
	case s.acked || s.answered || (s.written && !drained):
		return endSeen
	}
	return endNotDelivered
}

// modelResult is what a run of the model covered and found.
type modelResult struct {
	states, terminals int
	orders            uint64 // complete orders of events (paths to a terminal state)
	overflow          bool
	conservative      int // terminal states judged "may have been seen" where no handler had it
	violations        []string
}

func (s modelState) check() string {
	switch {
	case s.end == endNone:
		return "the call never ended"
	case (s.end == endResend || s.end == endNotDelivered) && s.delivered:
		return "a request a handler had was re-sent or reported not delivered"
	case s.end == endSuccess && !s.delivered:
		return "a success no handler answered"
	}
	return ""
}

func runModel(cfg modelConfig) modelResult {
	var res modelResult
	orders := map[modelState]uint64{}
	onPath := map[modelState]bool{}
	var path []string
	var visit func(s modelState) uint64
	visit = func(s modelState) uint64 {
		if n, ok := orders[s]; ok {
			return n
		}
		if onPath[s] {
			panic("the model has a cycle: " + strings.Join(path, " → "))
		}
		onPath[s] = true
		res.states++
		steps := s.steps(cfg)
		var total uint64
		if len(steps) == 0 {
			res.terminals++
			total = 1
			if why := s.check(); why != "" {
				if len(res.violations) < 5 {
					res.violations = append(res.violations, fmt.Sprintf("%s after %s", why, strings.Join(path, " → ")))
				} else {
					res.violations = append(res.violations[:5], "…")
				}
			} else if s.end == endSeen && !s.delivered {
				res.conservative++
			}
		}
		for _, st := range steps {
			path = append(path, st.name)
			var carry uint64
			total, carry = bits.Add64(total, visit(st.next), 0)
			if carry != 0 {
				res.overflow = true
			}
			path = path[:len(path)-1]
		}
		delete(onPath, s)
		orders[s] = total
		return total
	}
	res.orders = visit(modelState{serverUp: true, srvConn: true})
	return res
}

// TestReplayRuleExhaustively runs the model over every order of events,
// for v1 and v2 servers, with and without a body that can be sent again.
func TestReplayRuleExhaustively(t *testing.T) {
	var states, orders uint64
	for _, v1 := range []bool{false, true} {
		for _, canResend := range []bool{false, true} {
			cfg := modelConfig{v1: v1, canResend: canResend}
			res := runModel(cfg)
			t.Logf("v1=%v canResend=%v: %d states, %d terminal, %d orders of events; %d end \"may have been seen\" though no handler had the request",
				v1, canResend, res.states, res.terminals, res.orders, res.conservative)
			if res.overflow {
				t.Errorf("the count of orders overflowed")
			}
			for _, v := range res.violations {
				t.Errorf("v1=%v canResend=%v: %s", v1, canResend, v)
			}
			states += uint64(res.states)
			orders += res.orders
		}
	}
	t.Logf("in all: %d states, %d orders of events checked", states, orders)
}

// TestReplayModelCatchesTheOldRule: the check is not vacuous. The rule
// the client had before (re-send unless a write had succeeded, or after a
// drain notice whatever was written; decided as soon as the reader saw
// the close) re-sends requests that a handler had, and the model finds
// those orders: findings 1 and 3 of issue 17.
func TestReplayModelCatchesTheOldRule(t *testing.T) {
	res := runModel(modelConfig{canResend: true, oldRule: true})
	if len(res.violations) == 0 {
		t.Fatalf("the old rule: no violation found in %d orders", res.orders)
	}
	t.Logf("the old rule: %d states, %d orders; it breaks the invariant, e.g. %s", res.states, res.orders, res.violations[0])
}
