package router_test

import (
	"flag"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// The exhaustive check of the claim protocol across nodes
// (docs/PROTOCOL.md section 21.4). Two real routers, A (where request R
// starts) and B (where a receiver may claim it), joined by a model of
// package cluster's link: two ordered queues of link messages (frames,
// tombstone pings and pongs, B's state, reset and reset-ack), carried one
// message at a time, and the cluster's handling of each (a remote sender
// joined on B for the first start, a reset that ends what crossed the
// link on the side that starts it and then on the other, B's death as A
// dropping it). Every decision — where R is offered, claimed, refused,
// given back, requeued, ended — is the routers' own code; only the link is
// modelled.
//
// The events: R's start; B's receiver granting push credit (twice at most),
// answering R or giving it back; a competing request on B; A's own
// receiver polling; R's cancel; one fault at most (messages lost on either
// link, each followed by the reset, or B dying); and each delivery of a
// link message. The check runs every order of the events of a scenario,
// depth first, and after every step checks that R ran at most once (it was
// delivered to a handler and not given back at most once) and that its
// requester saw at most one end; once no event is left, that R ended once
// at its requester and no request is left on either router.

// claimEvent is one step of the model.
type claimEvent uint8

const (
	evSend      claimEvent = iota // the requester on A starts R
	evCreditB                     // B's receiver grants one unit of push credit
	evRespondB                    // B's receiver answers R, which it holds
	evReturnB                     // B's receiver gives R back
	evCompeteB                    // a requester on B starts Q, which B's receiver answers
	evPollA                       // A's own receiver polls; it answers whatever it gets
	evCancel                      // R's requester cancels it
	evDeliverAB                   // the next message from A reaches B
	evDeliverBA                   // the next message from B reaches A
	evLossAB                      // messages from A to B are lost: B resets the link
	evLossBA                      // messages from B to A are lost: A resets the link
	evDeathB                      // B dies: A drops it
	numClaimEvents
)

var claimEventNames = [numClaimEvents]string{"send", "creditB", "respondB", "returnB", "competeB",
	"pollA", "cancel", "A>B", "B>A", "lossAB", "lossBA", "deathB"}

func (e claimEvent) String() string { return claimEventNames[e] }

// linkMsg is a link message in flight.
type linkMsg struct {
	kind  string // frame, ping, pong, state, reset, resetAck
	frame frame.Frame
	ready int // state
}

// claimScenario names the events a scenario may use; the deliveries are
// always allowed.
type claimScenario struct {
	name    string
	allowed map[claimEvent]bool
	credits int // how many times B's receiver may grant credit
}

// claimWorld is one run of the model.
type claimWorld struct {
	t  *testing.T
	sc *claimScenario

	a, b                 *harness
	requester, localA    member
	rx                   member // A's remote receiver for B
	recvB, competeB      member
	tx                   *router.Member // B's remote sender for A, joined on the first start
	txPeer               *fakePeer
	txID                 wire.ID
	r, q                 wire.ID
	qAB, qBA             []linkMsg
	seen                 map[*fakePeer]int
	aDropping, bDropping bool
	bDead                bool
	lastReady            int
	sent, cancelled      bool
	competed, polled     bool
	credits, faults      int
	pendingR             bool // B's receiver holds R, pushed and not answered
	qDone                bool // Q was answered
	runs, ends           int
	trace                []claimEvent
}

func newClaimWorld(t *testing.T, sc *claimScenario) *claimWorld {
	w := &claimWorld{t: t, sc: sc, seen: map[*fakePeer]int{}, r: uuid.New(), q: uuid.New(), txID: uuid.New()}
	w.a = newHarness(t, router.Config{})
	w.b = newHarness(t, router.Config{})
	w.b.ch = w.a.ch
	w.requester = w.joinV2(w.a, "requester on A")
	w.localA = w.joinV1(w.a, "receiver on A")
	rxPeer := newFakePeer("A's remote receiver for B")
	rx, err := w.a.r.JoinRemote(uuid.New(), w.a.ch, router.RemoteReceiver, rxPeer)
	if err != nil {
		t.Fatal(err)
	}
	w.rx = member{rx, rxPeer}
	w.recvB = w.joinV2(w.b, "receiver on B")
	w.competeB = w.joinV2(w.b, "requester on B")
	w.txPeer = newFakePeer("B's remote sender for A")
	w.flush()
	return w
}

func (w *claimWorld) joinV2(h *harness, name string) member {
	p := newFakePeer(name)
	m, err := h.r.JoinVersion(uuid.New(), h.ch, wire.Version2, p)
	if err != nil {
		w.t.Fatal(err)
	}
	return member{m, p}
}

func (w *claimWorld) joinV1(h *harness, name string) member {
	p := newFakePeer(name)
	m, err := h.r.Join(uuid.New(), h.ch, p)
	if err != nil {
		w.t.Fatal(err)
	}
	return member{m, p}
}

func (w *claimWorld) close() {
	for _, m := range []member{w.requester, w.localA, w.rx, w.recvB, w.competeB} {
		m.Leave()
	}
	if w.tx != nil {
		w.tx.Leave()
	}
}

func v2frame(m member, typ wire.FrameType, flags wire.Flags, id wire.ID, payload []byte) frame.Frame {
	return frame.Frame{Header: wire.Header{Version: wire.Version2, Type: typ, Flags: flags, RequestID: id,
		ClientID: m.ID(), ChannelID: m.Channel(), Final: true, Length: uint32(len(payload))}, Payload: payload}
}

func (w *claimWorld) handle(m member, f frame.Frame) {
	w.t.Helper()
	if err := m.Handle(f, nil); err != nil {
		w.fail("%s: Handle(%v): %v", m.peer.name, f.Header, err)
	}
}

func (w *claimWorld) fail(format string, args ...any) {
	w.t.Helper()
	w.t.Fatalf("order %v: %s", w.trace, fmt.Sprintf(format, args...))
}

// enabled lists the events that may happen next, in a fixed order.
func (w *claimWorld) enabled() []claimEvent {
	var out []claimEvent
	ok := func(e claimEvent, cond bool) {
		if cond && (w.sc.allowed[e] || e == evDeliverAB || e == evDeliverBA) {
			out = append(out, e)
		}
	}
	ok(evSend, !w.sent)
	ok(evCreditB, !w.bDead && w.credits < w.sc.credits)
	ok(evRespondB, !w.bDead && w.pendingR)
	ok(evReturnB, !w.bDead && w.pendingR)
	ok(evCompeteB, !w.bDead && !w.competed)
	ok(evPollA, !w.polled)
	ok(evCancel, w.sent && !w.cancelled && w.ends == 0)
	ok(evDeliverAB, len(w.qAB) > 0)
	ok(evDeliverBA, len(w.qBA) > 0)
	ok(evLossAB, !w.bDead && w.faults == 0 && w.sent)
	ok(evLossBA, !w.bDead && w.faults == 0 && w.sent)
	ok(evDeathB, !w.bDead && w.faults == 0 && w.sent)
	return out
}

// do makes event e happen, then lets the members and the link react.
func (w *claimWorld) do(e claimEvent) {
	w.trace = append(w.trace, e)
	switch e {
	case evSend:
		w.sent = true
		w.handle(w.requester, v2frame(w.requester, wire.TypeStart, wire.FlagRequest, w.r, []byte("R")))
	case evCreditB:
		w.credits++
		w.handle(w.recvB, v2frame(w.recvB, wire.TypeStart, wire.FlagReceive, wire.ID{}, wire.AppendCredit(nil, 1)))
	case evRespondB:
		w.pendingR = false
		w.handle(w.recvB, v2frame(w.recvB, wire.TypeStart, wire.FlagResponse, w.r, []byte("from B")))
	case evReturnB:
		w.pendingR = false
		w.runs--
		w.handle(w.recvB, v2frame(w.recvB, wire.TypeError, wire.FlagReceive, w.r, wire.AppendError(nil, wire.CodeReturned, "")))
	case evCompeteB:
		w.competed = true
		w.handle(w.competeB, v2frame(w.competeB, wire.TypeStart, wire.FlagRequest, w.q, []byte("Q")))
	case evPollA:
		w.polled = true
		w.localA.poll(w.t, uuid.New())
	case evCancel:
		w.cancelled = true
		w.handle(w.requester, v2frame(w.requester, wire.TypeError, wire.FlagRequest, w.r, wire.AppendError(nil, wire.CodeCancelled, "")))
	case evDeliverAB:
		m := w.qAB[0]
		w.qAB = w.qAB[1:]
		w.atB(m)
	case evDeliverBA:
		m := w.qBA[0]
		w.qBA = w.qBA[1:]
		w.atA(m)
	case evLossAB:
		// B sees a gap: it ends what crossed the link on its side, drops
		// what A sent until A answers its reset.
		w.faults++
		w.qAB = nil
		w.resetB()
		w.bDropping = true
		w.qBA = append(w.qBA, linkMsg{kind: "reset"})
	case evLossBA:
		w.faults++
		w.qBA = nil
		w.rx.Reset("lost")
		w.aDropping = true
		w.qAB = append(w.qAB, linkMsg{kind: "reset"})
	case evDeathB:
		w.faults++
		w.bDead = true
		w.qAB, w.qBA = nil, nil
		w.rx.Leave() // A drops B: its remote members leave
	}
	w.flush()
}

func (w *claimWorld) resetB() {
	if w.tx != nil {
		w.tx.Leave()
		w.tx = nil
	}
}

// atB handles a link message from A, as package cluster does.
func (w *claimWorld) atB(m linkMsg) {
	switch {
	case w.bDead:
		return
	case m.kind == "reset":
		w.resetB()
		w.qBA = append(w.qBA, linkMsg{kind: "resetAck"})
		w.lastReady = -1 // a full state follows
		return
	case m.kind == "resetAck":
		w.bDropping = false
		w.lastReady = -1
		return
	case w.bDropping:
		return
	case m.kind == "ping":
		w.qBA = append(w.qBA, linkMsg{kind: "pong", frame: m.frame})
		return
	}
	f := overTheLink(m.frame)
	if w.tx == nil {
		if f.Header.Type != wire.TypeStart || f.Header.Flags != wire.FlagReceive {
			f.Release() // the request ended here already; nobody takes the frame
			return
		}
		tx, err := w.b.r.JoinRemote(w.txID, w.b.ch, router.RemoteSender, w.txPeer)
		if err != nil {
			w.fail("JoinRemote on B: %v", err)
		}
		w.tx = tx
	}
	if err := w.tx.HandleRemote(f); err != nil {
		w.fail("B's remote sender refused %v: %v", f.Header, err)
	}
}

// atA handles a link message from B.
func (w *claimWorld) atA(m linkMsg) {
	switch {
	case m.kind == "reset":
		w.rx.Reset("lost")
		w.qAB = append(w.qAB, linkMsg{kind: "resetAck"})
		return
	case m.kind == "resetAck":
		w.aDropping = false
		return
	case w.aDropping:
		return
	case m.kind == "state":
		w.rx.SetRemoteCredit(m.ready)
	case m.kind == "pong":
		if gen, ok := router.PongGeneration(m.frame.Header.RequestID); ok {
			w.rx.Pong(gen)
		}
	default:
		if err := w.rx.HandleRemote(overTheLink(m.frame)); err != nil {
			w.fail("A's remote receiver refused %v: %v", m.frame.Header, err)
		}
	}
}

// overTheLink is f as the far node gets it: a copy in a buffer of its own,
// as package cluster's link makes one from each NATS message. The model
// keeps every message for the orders it has yet to explore, so the same
// frame reaches HandleRemote in many worlds, each of which owns its copy.
func overTheLink(f frame.Frame) frame.Frame {
	if len(f.Payload) == 0 {
		f.Payload, f.Pooled = nil, false
		return f
	}
	p := frame.GetBuffer(len(f.Payload))
	copy(p, f.Payload)
	f.Payload, f.Pooled = p, true
	return f
}

// newFrames returns the frames p got since the last call.
func (w *claimWorld) newFrames(p *fakePeer) []frame.Frame {
	all := p.all()
	fs := all[w.seen[p]:]
	w.seen[p] = len(all)
	return fs
}

// flush lets everything react to the last step until nothing new happens:
// the members answer what they were sent, the remote members' frames go on
// the link, and B's state goes to A when its count of ready receivers
// changed.
func (w *claimWorld) flush() {
	for changed := true; changed; {
		changed = false
		for _, f := range w.newFrames(w.rx.peer) {
			kind := "frame"
			if f.Header.Flags == wire.FlagPing {
				kind = "ping"
			}
			if !w.bDead {
				w.qAB = append(w.qAB, linkMsg{kind: kind, frame: f})
			}
		}
		for _, f := range w.newFrames(w.txPeer) {
			if !w.bDead {
				w.qBA = append(w.qBA, linkMsg{kind: "frame", frame: f})
			}
		}
		for _, f := range w.newFrames(w.requester.peer) {
			h := f.Header
			if h.RequestID == w.r && (h.Type == wire.TypeError || h.Flags == wire.FlagResponse && (h.Final || h.Type == wire.TypeEnd)) {
				w.ends++
			}
		}
		for _, f := range w.newFrames(w.localA.peer) {
			if h := f.Header; h.Type == wire.TypeStart && h.Flags == wire.FlagReceive {
				if h.RequestID == w.r {
					w.runs++
				}
				w.localA.respond(w.t, h.RequestID, "from A")
				changed = true
			}
		}
		for _, f := range w.newFrames(w.recvB.peer) {
			h := f.Header
			switch {
			case h.Type == wire.TypeStart && h.Flags == wire.FlagReceive && h.RequestID == w.r:
				w.runs++
				w.pendingR = true
			case h.Type == wire.TypeStart && h.Flags == wire.FlagReceive && h.RequestID == w.q:
				w.handle(w.recvB, v2frame(w.recvB, wire.TypeStart, wire.FlagResponse, w.q, []byte("Q done")))
				changed = true
			case h.Type == wire.TypeError && h.RequestID == w.r:
				w.pendingR = false // ended under it: cancelled, peer_gone
			}
		}
		for _, f := range w.newFrames(w.competeB.peer) {
			if h := f.Header; h.RequestID == w.q && h.Flags == wire.FlagResponse && h.Final {
				w.qDone = true
			}
		}
		if !w.bDead {
			if _, ready := w.b.r.ChannelCounts(w.b.ch); ready != w.lastReady {
				w.lastReady = ready
				w.qBA = append(w.qBA, linkMsg{kind: "state", ready: ready})
			}
		}
		if len(w.rx.peer.all()) != w.seen[w.rx.peer] || len(w.txPeer.all()) != w.seen[w.txPeer] {
			changed = true
		}
	}
}

// check holds after every step.
func (w *claimWorld) check() {
	if w.runs > 1 {
		w.fail("R ran %d times", w.runs)
	}
	if w.ends > 1 {
		w.fail("R's requester saw %d ends", w.ends)
	}
}

// final holds once no event is left.
func (w *claimWorld) final() {
	if w.ends != 1 {
		w.fail("R's requester saw %d ends, want 1", w.ends)
	}
	for _, h := range []*harness{w.a, w.b} {
		if h == w.b && w.bDead {
			continue
		}
		st := h.r.Stats()
		left := int64(0)
		if h == w.b && w.competed && !w.qDone {
			left = 1 // Q waits on B for a receiver: it is not R's business
		}
		var ended int64
		for _, n := range st.Outcomes {
			ended += n
		}
		if st.InFlight != left || st.Started != ended+left {
			w.fail("a router has %d requests in flight, %d started and %d ended; want %d left", st.InFlight, st.Started, ended, left)
		}
	}
}

// fingerprint names what the model can see of the state, for counting
// distinct states.
func (w *claimWorld) fingerprint() uint64 {
	var b strings.Builder
	fmt.Fprintf(&b, "%v %v %v %v %v %v %v %v %v %d %d %d %d %v %d|", w.sent, w.cancelled, w.competed, w.polled, w.qDone,
		w.aDropping, w.bDropping, w.bDead, w.pendingR, w.credits, w.faults, w.runs, w.ends, w.tx != nil, w.lastReady)
	for _, q := range [][]linkMsg{w.qAB, w.qBA} {
		for _, m := range q {
			h := m.frame.Header
			fmt.Fprintf(&b, "%s:%v/%v/%s/%d,", m.kind, h.Type, h.Flags, w.idName(h.RequestID), m.ready)
		}
		b.WriteByte('|')
	}
	for _, h := range []*harness{w.a, w.b} {
		members, ready := h.r.ChannelCounts(h.ch)
		fmt.Fprintf(&b, "%d %d %d|", members, ready, h.r.InFlight())
	}
	sum := fnv.New64a()
	sum.Write([]byte(b.String()))
	return sum.Sum64()
}

func (w *claimWorld) idName(id wire.ID) string {
	switch id {
	case w.r:
		return "R"
	case w.q:
		return "Q"
	case wire.ID{}:
		return "0"
	}
	return "ping"
}

// stuck fails when the only step left is R's cancel and R waits where no
// receiver can get it: not at the head of A's queue with no receiver
// waiting anywhere (a request handed back and stranded on B, say).
func (w *claimWorld) stuck(en []claimEvent) {
	if len(en) != 1 || en[0] != evCancel || w.ends != 0 {
		return
	}
	cs := channelStats(w.t, w.a.r, w.a.ch)
	bReady := 0
	if !w.bDead {
		_, bReady = w.b.r.ChannelCounts(w.b.ch)
	}
	if cs.Queued != 1 || cs.ReceiversWaiting != 0 || bReady != 0 {
		w.fail("R waits and nothing else will happen: A queues %d requests, %d receivers wait on A and %d on B",
			cs.Queued, cs.ReceiversWaiting, bReady)
	}
}

// site says where an event happens: on A, on B, or on both (a fault).
// Two events on different nodes are independent: done in either order,
// they lead to the same state, because each changes only its own node's
// router, takes only from the head of the link into its node and adds only
// to the tail of the link out of it.
func (e claimEvent) site() int {
	switch e {
	case evSend, evPollA, evCancel, evDeliverBA:
		return 1
	case evCreditB, evRespondB, evReturnB, evCompeteB, evDeliverAB:
		return 2
	}
	return 0
}

func independent(a, b claimEvent) bool { return a.site() != 0 && b.site() != 0 && a.site() != b.site() }

// claimExplorer runs every order of a scenario's events, depth first, but
// one order only of steps on different nodes that could be swapped (sleep
// sets: what a sibling already explored is not explored again after an
// independent step). That reduction still reaches every state.
type claimExplorer struct {
	t      *testing.T
	sc     *claimScenario
	orders int
	steps  int
	states map[uint64]bool
}

// replay builds a world and makes prefix happen in it.
func (x *claimExplorer) replay(prefix []claimEvent) *claimWorld {
	w := newClaimWorld(x.t, x.sc)
	for _, e := range prefix {
		w.do(e)
		w.check()
	}
	return w
}

func (x *claimExplorer) explore(w *claimWorld, prefix []claimEvent, sleep map[claimEvent]bool) {
	x.states[w.fingerprint()] = true
	en := w.enabled()
	if len(en) == 0 {
		w.final()
		w.close()
		x.orders++
		return
	}
	w.stuck(en)
	done := map[claimEvent]bool{}
	live := w
	for _, e := range en {
		if sleep[e] {
			continue
		}
		cw := live
		live = nil
		if cw == nil {
			cw = x.replay(prefix)
		}
		cw.do(e)
		cw.check()
		x.steps++
		next := map[claimEvent]bool{}
		for s := range sleep {
			if independent(s, e) {
				next[s] = true
			}
		}
		for s := range done {
			if independent(s, e) {
				next[s] = true
			}
		}
		x.explore(cw, append(prefix[:len(prefix):len(prefix)], e), next)
		done[e] = true
	}
	if live != nil {
		live.close() // every step from here was explored in another order
	}
}

func allow(events ...claimEvent) map[claimEvent]bool {
	m := map[claimEvent]bool{}
	for _, e := range events {
		m[e] = true
	}
	return m
}

// claimsAll adds the scenario with every event at once: about 300,000
// orders, which take about a minute without the race detector, too long for
// every CI build.
var claimsAll = flag.Bool("claims.all", false, "TestClaimProtocolEveryOrder: also run every event at once")

// TestClaimProtocolEveryOrder runs the exhaustive check, one scenario at a
// time, and logs how many orders and states each covered. With
// -claims.all it adds every event at once (docs/PROTOCOL.md section 21.4
// has the figures).
func TestClaimProtocolEveryOrder(t *testing.T) {
	scenarios := []claimScenario{
		{name: "claim or refuse, against a competing request on B and A's own receiver",
			allowed: allow(evSend, evCreditB, evRespondB, evCompeteB, evPollA, evCancel), credits: 1},
		{name: "B's receiver gives R back, and takes it again",
			allowed: allow(evSend, evCreditB, evRespondB, evReturnB, evPollA, evCancel), credits: 2},
		{name: "messages lost on either link, then the reset",
			allowed: allow(evSend, evCreditB, evRespondB, evReturnB, evLossAB, evLossBA, evCancel), credits: 1},
		{name: "B dies",
			allowed: allow(evSend, evCreditB, evRespondB, evReturnB, evDeathB, evPollA, evCancel), credits: 1},
	}
	if *claimsAll {
		scenarios = append(scenarios, claimScenario{name: "every event at once, with one fault",
			allowed: allow(evSend, evCreditB, evRespondB, evReturnB, evCompeteB, evPollA, evCancel, evLossAB, evLossBA, evDeathB),
			credits: 2})
	}
	total := 0
	for i := range scenarios {
		sc := &scenarios[i]
		x := &claimExplorer{t: t, sc: sc, states: map[uint64]bool{}}
		x.explore(newClaimWorld(t, sc), nil, nil)
		total += x.orders
		t.Logf("%s: %d orders, %d steps, %d distinct states", sc.name, x.orders, x.steps, len(x.states))
	}
	t.Logf("%d orders in all", total)
}
