package router_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// fakePeer records every frame the router hands it and wakes waiters
// through a capacity-1 kick channel.
type fakePeer struct {
	name string

	mu     sync.Mutex
	frames []frame.Frame
	kick   chan struct{}
}

func newFakePeer(name string) *fakePeer {
	return &fakePeer{name: name, kick: make(chan struct{}, 1)}
}

// Send implements router.Peer. It is called with a channel lock held, so
// it only records and signals.
func (p *fakePeer) Send(f frame.Frame, _ *frame.Batch) {
	kept := f
	kept.Payload = append([]byte(nil), f.Payload...) // a copy of its own, not the pool's
	kept.Pooled, kept.Sent = false, nil
	f.Release() // the peer is the frame's last holder, as a connection's writer is
	p.mu.Lock()
	p.frames = append(p.frames, kept)
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// all returns a copy of the frames received so far.
func (p *fakePeer) all() []frame.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]frame.Frame(nil), p.frames...)
}

// matching returns the frames received so far that match.
func (p *fakePeer) matching(match func(*wire.Header) bool) []frame.Frame {
	var out []frame.Frame
	for _, f := range p.all() {
		if match(&f.Header) {
			out = append(out, f)
		}
	}
	return out
}

// waitFor blocks until a frame that matches has arrived and returns it.
func (p *fakePeer) waitFor(t *testing.T, what string, match func(*wire.Header) bool) frame.Frame {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if fs := p.matching(match); len(fs) > 0 {
			return fs[0]
		}
		select {
		case <-p.kick:
		case <-deadline.C:
			t.Fatalf("%s: got no %s within 10s; frames: %v", p.name, what, headers(p.all()))
		}
	}
}

// waitError blocks until an error frame for request id arrives and returns
// its flags and decoded payload.
func (p *fakePeer) waitError(t *testing.T, id wire.ID) (wire.Flags, *wire.Error) {
	t.Helper()
	f := p.waitFor(t, "error frame", func(h *wire.Header) bool { return h.Type == wire.TypeError && h.RequestID == id })
	e, err := wire.ParseErrorVersion(f.Header.Version, f.Payload, wire.MaxHeaderBlock)
	if err != nil {
		t.Fatalf("%s: error frame payload: %v", p.name, err)
	}
	return f.Header.Flags, e
}

func headers(fs []frame.Frame) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Header.String()
	}
	return out
}

func isDelivery(id wire.ID) func(*wire.Header) bool {
	return func(h *wire.Header) bool {
		return h.Type == wire.TypeStart && h.Flags == wire.FlagReceive && h.RequestID == id
	}
}

func anyDelivery(h *wire.Header) bool { return h.Type == wire.TypeStart && h.Flags == wire.FlagReceive }

// member is a joined fake connection.
type member struct {
	*router.Member
	peer *fakePeer
}

type harness struct {
	t  *testing.T
	r  *router.Router
	ch wire.ID
}

func newHarness(t *testing.T, cfg router.Config) *harness {
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = time.Minute
	}
	return &harness{t: t, r: router.New(cfg), ch: uuid.New()}
}

// join adds a member to the harness's channel; it leaves when the test ends.
func (h *harness) join(name string) member {
	return h.joinChannel(name, h.ch)
}

func (h *harness) joinChannel(name string, ch wire.ID) member {
	h.t.Helper()
	return h.joinWith(name, ch, wire.Version)
}

// joinVersion adds a member that speaks protocol version v.
func (h *harness) joinVersion(name string, v uint8) member {
	h.t.Helper()
	return h.joinWith(name, h.ch, v)
}

func (h *harness) joinWith(name string, ch wire.ID, v uint8) member {
	h.t.Helper()
	p := newFakePeer(name)
	m, err := h.r.JoinVersion(uuid.New(), ch, v, p)
	if err != nil {
		h.t.Fatalf("Join(%s): got error %v, want nil", name, err)
	}
	h.t.Cleanup(m.Leave)
	return member{m, p}
}

// frame builds a frame from m.
func (m member) frame(typ wire.FrameType, flags wire.Flags, id wire.ID, seq uint32, final bool, payload []byte) frame.Frame {
	return frame.Frame{
		Header: wire.Header{Version: wire.Version, Type: typ, Flags: flags, RequestID: id,
			ClientID: m.ID(), ChannelID: m.Channel(), Sequence: seq, Final: final, Length: uint32(len(payload))},
		Payload: payload,
	}
}

// handle passes f to the router and fails the test if it is refused.
func (m member) handle(t *testing.T, f frame.Frame) {
	t.Helper()
	if err := m.Handle(f, nil); err != nil {
		t.Fatalf("%s: Handle(%v): got error %v, want nil", m.peer.name, f.Header, err)
	}
}

// start opens request id with the given timeout.
func (m member) start(t *testing.T, id wire.ID, timeoutMillis uint64) {
	t.Helper()
	f := m.frame(wire.TypeStart, wire.FlagRequest, id, 0, false, nil)
	f.Header.TimeoutMillis = timeoutMillis
	m.handle(t, f)
}

// body sends chunks then the end frame of request id's body.
func (m member) body(t *testing.T, id wire.ID, chunks ...string) {
	t.Helper()
	seq := uint32(1)
	for _, c := range chunks {
		m.handle(t, m.frame(wire.TypeChunk, wire.FlagRequest, id, seq, false, []byte(c)))
		seq++
	}
	m.handle(t, m.frame(wire.TypeEnd, wire.FlagRequest, id, seq, true, nil))
}

// send starts request id and sends its whole body.
func (m member) send(t *testing.T, id wire.ID, chunks ...string) {
	t.Helper()
	m.start(t, id, 0)
	m.body(t, id, chunks...)
}

// poll makes a Receive with ID pollID.
func (m member) poll(t *testing.T, pollID wire.ID) {
	t.Helper()
	m.handle(t, m.frame(wire.TypeStart, wire.FlagReceive, pollID, 0, true, nil))
}

// respond answers request id with one chunk.
func (m member) respond(t *testing.T, id wire.ID, body string) {
	t.Helper()
	m.handle(t, m.frame(wire.TypeStart, wire.FlagResponse, id, 0, false, nil))
	m.handle(t, m.frame(wire.TypeChunk, wire.FlagResponse, id, 1, false, []byte(body)))
	m.handle(t, m.frame(wire.TypeEnd, wire.FlagResponse, id, 2, true, nil))
}

func wantProtocolError(t *testing.T, what string, err error) {
	t.Helper()
	var werr *wire.Error
	if !errors.As(err, &werr) {
		t.Fatalf("%s: got error %v, want a *wire.Error with code protocol", what, err)
	}
	if werr.Code != wire.CodeProtocol {
		t.Fatalf("%s: got code %v (%v), want protocol", what, werr.Code, werr)
	}
}

func channelStats(t *testing.T, r *router.Router, id wire.ID) router.ChannelStats {
	t.Helper()
	for _, c := range r.Stats().Channels {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("Stats has no channel %x", id)
	return router.ChannelStats{}
}

func TestRequestGoesToExactlyOneOtherMember(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, c := h.join("a"), h.join("b"), h.join("c")
	pollA, pollB, pollC := uuid.New(), uuid.New(), uuid.New()
	a.poll(t, pollA) // a's own poll is first in line, but a is the sender
	b.poll(t, pollB)
	c.poll(t, pollC)

	id := uuid.New()
	a.send(t, id, "hello")

	got := b.peer.waitFor(t, "delivery", isDelivery(id))
	if got.Header.ClientID != a.ID() {
		t.Errorf("delivery names client %x, want the sender %x", got.Header.ClientID, a.ID())
	}
	if wire.ID(got.Payload) != pollB {
		t.Errorf("delivery answers receive %x, want b's poll %x", got.Payload, pollB)
	}
	if got.Header.TimeoutMillis == 0 {
		t.Errorf("delivery timeout = 0, want the time left (> 0)")
	}
	for _, m := range []member{a, c} {
		if n := len(m.peer.matching(anyDelivery)); n != 0 {
			t.Errorf("%s got %d deliveries, want 0", m.peer.name, n)
		}
	}

	// b gets the body, in order, addressed as a's.
	var body []byte
	for _, f := range b.peer.matching(func(h *wire.Header) bool { return h.RequestID == id && h.Type == wire.TypeChunk }) {
		if f.Header.Flags != wire.FlagReceive {
			t.Errorf("body chunk flags = %v, want receive", f.Header.Flags)
		}
		body = append(body, f.Payload...)
	}
	if string(body) != "hello" {
		t.Errorf("b got body %q, want %q", body, "hello")
	}
	b.peer.waitFor(t, "end of body", func(h *wire.Header) bool { return h.RequestID == id && h.Type == wire.TypeEnd })

	b.respond(t, id, "HELLO")
	end := a.peer.waitFor(t, "end of response", func(h *wire.Header) bool {
		return h.RequestID == id && h.Type == wire.TypeEnd && h.Flags == wire.FlagResponse
	})
	if end.Header.ClientID != b.ID() {
		t.Errorf("response names client %x, want the receiver %x", end.Header.ClientID, b.ID())
	}
	var resp []byte
	for _, f := range a.peer.matching(func(h *wire.Header) bool {
		return h.RequestID == id && h.Type == wire.TypeChunk && h.Flags == wire.FlagResponse
	}) {
		resp = append(resp, f.Payload...)
	}
	if string(resp) != "HELLO" {
		t.Errorf("a got response %q, want %q", resp, "HELLO")
	}
	if n := len(c.peer.all()); n != 0 {
		t.Errorf("c got %d frames, want 0: %v", n, headers(c.peer.all()))
	}
	cs := channelStats(t, h.r, h.ch)
	if cs.ReceiversWaiting != 2 || cs.InFlight != 0 || cs.Queued != 0 {
		t.Errorf("channel stats = %+v, want 2 receivers waiting (a and c), 0 in flight, 0 queued", cs)
	}
	if got := h.r.Stats().Outcomes[router.OutcomeCompleted]; got != 1 {
		t.Errorf("completed = %d, want 1", got)
	}
}

func TestRequestNeverGoesToItsSender(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b := h.join("a"), h.join("b")
	pollA := uuid.New()
	a.poll(t, pollA)
	id := uuid.New()
	a.send(t, id, "x")

	if n := len(a.peer.matching(anyDelivery)); n != 0 {
		t.Fatalf("a got %d deliveries of its own request, want 0", n)
	}
	cs := channelStats(t, h.r, h.ch)
	if cs.Queued != 1 || cs.ReceiversWaiting != 1 {
		t.Fatalf("channel stats = %+v, want 1 queued and a's receive waiting", cs)
	}

	b.poll(t, uuid.New())
	b.peer.waitFor(t, "delivery", isDelivery(id))
	if n := len(a.peer.matching(anyDelivery)); n != 0 {
		t.Fatalf("a got %d deliveries, want 0", n)
	}
	cs = channelStats(t, h.r, h.ch)
	if cs.Queued != 0 || cs.ReceiversWaiting != 1 || cs.InFlight != 1 {
		t.Fatalf("channel stats = %+v, want 0 queued, 1 waiting (a), 1 in flight", cs)
	}
}

func TestPollsServedInArrivalOrder(t *testing.T) {
	h := newHarness(t, router.Config{})
	a := h.join("a")
	rs := []member{h.join("r0"), h.join("r1"), h.join("r2")}
	for _, r := range rs {
		r.poll(t, uuid.New())
	}
	ids := []wire.ID{uuid.New(), uuid.New(), uuid.New()}
	for _, id := range ids {
		a.send(t, id, "x")
	}
	for i, r := range rs {
		ds := r.peer.matching(anyDelivery)
		if len(ds) != 1 || ds[0].Header.RequestID != ids[i] {
			t.Fatalf("%s got deliveries %v, want exactly request %d (%x)", r.peer.name, headers(ds), i, ids[i][:4])
		}
	}

	// Queued requests go out oldest first, to polls in their order.
	q := []wire.ID{uuid.New(), uuid.New()}
	for _, id := range q {
		a.send(t, id, "y")
	}
	if cs := channelStats(t, h.r, h.ch); cs.Queued != 2 {
		t.Fatalf("queued = %d, want 2", cs.Queued)
	}
	rs[2].poll(t, uuid.New())
	rs[0].poll(t, uuid.New())
	rs[2].peer.waitFor(t, "first queued request", isDelivery(q[0]))
	rs[0].peer.waitFor(t, "second queued request", isDelivery(q[1]))
}

func TestNoPeers(t *testing.T) {
	h := newHarness(t, router.Config{})
	a := h.join("a")
	h.joinChannel("elsewhere", uuid.New()) // a member of another channel is no peer
	id := uuid.New()
	a.start(t, id, 0)
	flags, e := a.peer.waitError(t, id)
	if flags != wire.FlagRequest || e.Code != wire.CodeNoPeers {
		t.Fatalf("got error frame %v %v, want request no_peers", flags, e)
	}
	// The rest of the refused stream, already on its way, is dropped quietly.
	a.body(t, id, "late")
	st := h.r.Stats()
	if st.Outcomes[router.OutcomeNoPeers] != 1 || st.InFlight != 0 || st.Started != 0 {
		t.Fatalf("stats: no_peers=%d in-flight=%d started=%d, want 1, 0, 0",
			st.Outcomes[router.OutcomeNoPeers], st.InFlight, st.Started)
	}
}

func TestQueuedRequestTakenByLaterPoll(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b := h.join("a"), h.join("b")
	id := uuid.New()
	a.send(t, id, "abc", "def")
	ack := a.peer.waitFor(t, "end acknowledgement", func(h *wire.Header) bool {
		return h.RequestID == id && h.Type == wire.TypeEnd && h.Flags == wire.FlagRequest
	})
	if !ack.Header.Final || ack.Header.Sequence != 3 {
		t.Errorf("end acknowledgement: final=%v seq=%d, want final seq 3", ack.Header.Final, ack.Header.Sequence)
	}
	if n := len(b.peer.all()); n != 0 {
		t.Fatalf("b got %d frames before polling, want 0", n)
	}

	pollID := uuid.New()
	b.poll(t, pollID)
	b.peer.waitFor(t, "end of body", func(h *wire.Header) bool { return h.RequestID == id && h.Type == wire.TypeEnd })
	fs := b.peer.all()
	want := []struct {
		typ     wire.FrameType
		seq     uint32
		payload string
	}{{wire.TypeStart, 0, string(pollID[:])}, {wire.TypeChunk, 1, "abcdef"}, {wire.TypeEnd, 2, ""}}
	// Small chunks the server keeps are coalesced into one buffer
	// (memory.go), and renumbered downstream.
	if len(fs) != len(want) {
		t.Fatalf("b got frames %v, want start, one coalesced chunk, end", headers(fs))
	}
	for i, w := range want {
		f := fs[i]
		if f.Header.Type != w.typ || f.Header.Sequence != w.seq || string(f.Payload) != w.payload ||
			f.Header.Flags != wire.FlagReceive || f.Header.RequestID != id {
			t.Errorf("frame %d = %v payload %q, want %v seq %d receive payload %q", i, f.Header, f.Payload, w.typ, w.seq, w.payload)
		}
	}
}

func TestTimeout(t *testing.T) {
	t.Run("queued", func(t *testing.T) {
		h := newHarness(t, router.Config{DefaultTimeout: 10 * time.Millisecond})
		a, b := h.join("a"), h.join("b")
		id := uuid.New()
		a.start(t, id, 0) // 0: the default applies
		flags, e := a.peer.waitError(t, id)
		if flags != wire.FlagRequest || e.Code != wire.CodeTimeout {
			t.Fatalf("sender got %v %v, want request timeout", flags, e)
		}
		if n := len(b.peer.all()); n != 0 {
			t.Fatalf("b got %d frames, want 0", n)
		}
		if got := h.r.Stats().Outcomes[router.OutcomeTimeout]; got != 1 {
			t.Fatalf("timeouts = %d, want 1", got)
		}
	})
	t.Run("taken", func(t *testing.T) {
		h := newHarness(t, router.Config{DefaultTimeout: time.Hour})
		a, b := h.join("a"), h.join("b")
		b.poll(t, uuid.New())
		id := uuid.New()
		a.start(t, id, 20) // the header's timeout overrides the default
		b.peer.waitFor(t, "delivery", isDelivery(id))
		flags, e := a.peer.waitError(t, id)
		if flags != wire.FlagRequest || e.Code != wire.CodeTimeout {
			t.Fatalf("sender got %v %v, want request timeout", flags, e)
		}
		flags, e = b.peer.waitError(t, id)
		if flags != wire.FlagReceive || e.Code != wire.CodeTimeout {
			t.Fatalf("receiver got %v %v, want receive timeout", flags, e)
		}
		if st := h.r.Stats(); st.InFlight != 0 || st.Outcomes[router.OutcomeTimeout] != 1 {
			t.Fatalf("in-flight=%d timeouts=%d, want 0, 1", st.InFlight, st.Outcomes[router.OutcomeTimeout])
		}
		// A response that crossed the timeout is dropped, not a violation.
		b.respond(t, id, "late")
	})
}

// taken returns a sender and a receiver holding request id.
func taken(t *testing.T, h *harness) (a, b member, id wire.ID) {
	t.Helper()
	a, b = h.join("a"), h.join("b")
	b.poll(t, uuid.New())
	id = uuid.New()
	a.send(t, id, "body")
	b.peer.waitFor(t, "delivery", isDelivery(id))
	return a, b, id
}

func TestLeaveOfReceiverFailsSender(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, id := taken(t, h)
	b.Leave()
	flags, e := a.peer.waitError(t, id)
	if flags != wire.FlagRequest || e.Code != wire.CodePeerGone {
		t.Fatalf("sender got %v %v, want request peer_gone", flags, e)
	}
	if err := b.Handle(b.frame(wire.TypeStart, wire.FlagResponse, id, 0, false, nil), nil); err != nil {
		t.Fatalf("Handle after Leave: got %v, want nil (ignored)", err)
	}
	st := h.r.Stats()
	if st.InFlight != 0 || st.Outcomes[router.OutcomePeerGone] != 1 {
		t.Fatalf("in-flight=%d peer_gone=%d, want 0, 1", st.InFlight, st.Outcomes[router.OutcomePeerGone])
	}
	// a is alone now: its next request has no peer.
	next := uuid.New()
	a.start(t, next, 0)
	if _, e := a.peer.waitError(t, next); e.Code != wire.CodeNoPeers {
		t.Fatalf("request after the only peer left: got %v, want no_peers", e)
	}
}

func TestLeaveOfSenderCancelsReceiver(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, id := taken(t, h)
	a.Leave()
	flags, e := b.peer.waitError(t, id)
	if flags != wire.FlagReceive || e.Code != wire.CodePeerGone {
		t.Fatalf("receiver got %v %v, want receive peer_gone", flags, e)
	}
	// The receiver's response, crossing the cancel, is dropped quietly.
	b.respond(t, id, "late")
	if st := h.r.Stats(); st.InFlight != 0 {
		t.Fatalf("in-flight = %d, want 0", st.InFlight)
	}
}

func TestSenderCancel(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, id := taken(t, h)
	f := a.frame(wire.TypeError, wire.FlagRequest, id, 0, true, wire.AppendError(nil, wire.CodeCancelled, "gave up"))
	a.handle(t, f)
	flags, e := b.peer.waitError(t, id)
	if flags != wire.FlagReceive || e.Code != wire.CodeCancelled || e.Message != "gave up" {
		t.Fatalf("receiver got %v %v, want receive cancelled %q", flags, e, "gave up")
	}
	if got := h.r.Stats().Outcomes[router.OutcomeCancelled]; got != 1 {
		t.Fatalf("cancelled = %d, want 1", got)
	}
}

func TestReceiverFail(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, id := taken(t, h)
	b.handle(t, b.frame(wire.TypeError, wire.FlagResponse, id, 0, true, wire.AppendError(nil, wire.CodeRemote, "no such thing")))
	flags, e := a.peer.waitError(t, id)
	if flags != wire.FlagResponse || e.Code != wire.CodeRemote || e.Message != "no such thing" {
		t.Fatalf("sender got %v %v, want response remote %q", flags, e, "no such thing")
	}
	if n := len(b.peer.matching(func(h *wire.Header) bool { return h.Type == wire.TypeError })); n != 0 {
		t.Fatalf("receiver got %d error frames for its own Fail, want 0", n)
	}
}

func TestSequenceViolations(t *testing.T) {
	type step struct {
		typ   wire.FrameType
		seq   uint32
		final bool
	}
	tests := []struct {
		name  string
		flags wire.Flags // request or response stream
		steps []step     // after the start frame; the last one must be refused
	}{
		{"request gap", wire.FlagRequest, []step{{wire.TypeChunk, 2, false}}},
		{"request repeat", wire.FlagRequest, []step{{wire.TypeChunk, 1, false}, {wire.TypeChunk, 1, false}}},
		{"request end gap", wire.FlagRequest, []step{{wire.TypeChunk, 1, false}, {wire.TypeEnd, 3, true}}},
		{"request after final", wire.FlagRequest, []step{{wire.TypeChunk, 1, false}, {wire.TypeEnd, 2, true}, {wire.TypeChunk, 3, false}}},
		{"request end after final", wire.FlagRequest, []step{{wire.TypeChunk, 1, false}, {wire.TypeEnd, 2, true}, {wire.TypeEnd, 3, true}}},
		{"request second start", wire.FlagRequest, []step{{wire.TypeStart, 0, false}}},
		{"request chunk with final", wire.FlagRequest, []step{{wire.TypeChunk, 1, true}}},
		{"request end without chunk", wire.FlagRequest, []step{{wire.TypeEnd, 1, true}}},
		{"response gap", wire.FlagResponse, []step{{wire.TypeChunk, 2, false}}},
		{"response repeat", wire.FlagResponse, []step{{wire.TypeChunk, 1, false}, {wire.TypeChunk, 1, false}}},
		{"response after final", wire.FlagResponse, []step{{wire.TypeChunk, 1, false}, {wire.TypeEnd, 2, true}, {wire.TypeChunk, 3, false}}},
		{"response second start", wire.FlagResponse, []step{{wire.TypeStart, 0, false}}},
		{"response chunk with final", wire.FlagResponse, []step{{wire.TypeChunk, 1, true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, router.Config{})
			a, b := h.join("a"), h.join("b")
			b.poll(t, uuid.New())
			id := uuid.New()
			a.start(t, id, 0)
			m := a
			if tc.flags == wire.FlagResponse {
				a.body(t, id, "body")
				b.peer.waitFor(t, "delivery", isDelivery(id))
				m = b
				m.handle(t, m.frame(wire.TypeStart, wire.FlagResponse, id, 0, false, nil))
			}
			var err error
			for i, s := range tc.steps {
				payload := []byte("x")
				if s.typ != wire.TypeChunk {
					payload = nil
				}
				err = m.Handle(m.frame(s.typ, tc.flags, id, s.seq, s.final, payload), nil)
				if i < len(tc.steps)-1 && err != nil {
					t.Fatalf("step %d (%v seq %d): got error %v, want nil", i, s.typ, s.seq, err)
				}
			}
			wantProtocolError(t, tc.name, err)
		})
	}
}

func TestResponseFromNonHolder(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, id := taken(t, h)
	c := h.join("c")
	for _, m := range []member{c, a} {
		err := m.Handle(m.frame(wire.TypeStart, wire.FlagResponse, id, 0, false, nil), nil)
		wantProtocolError(t, m.peer.name+" responding to a request it does not hold", err)
	}
	wantProtocolError(t, "response for an unknown request",
		b.Handle(b.frame(wire.TypeStart, wire.FlagResponse, uuid.New(), 0, false, nil), nil))
	wantProtocolError(t, "chunk of a response never started",
		b.Handle(b.frame(wire.TypeChunk, wire.FlagResponse, id, 1, false, []byte("x")), nil))
	wantProtocolError(t, "chunk of a request never started",
		a.Handle(a.frame(wire.TypeChunk, wire.FlagRequest, uuid.New(), 1, false, []byte("x")), nil))
	// The real holder still answers.
	b.respond(t, id, "ok")
	a.peer.waitFor(t, "end of response", func(h *wire.Header) bool { return h.RequestID == id && h.Type == wire.TypeEnd })
}

func TestSpoofedIDs(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b := h.join("a"), h.join("b")
	f := a.frame(wire.TypeStart, wire.FlagRequest, uuid.New(), 0, false, nil)
	f.Header.ClientID = b.ID()
	wantProtocolError(t, "frame naming another client", a.Handle(f, nil))
	f = a.frame(wire.TypeStart, wire.FlagRequest, uuid.New(), 0, false, nil)
	f.Header.ChannelID = uuid.New()
	wantProtocolError(t, "frame naming another channel", a.Handle(f, nil))
	f = a.frame(wire.TypeStart, wire.FlagJoin, uuid.New(), 0, true, nil)
	wantProtocolError(t, "join after joining", a.Handle(f, nil))
	if n := len(b.peer.all()); n != 0 {
		t.Fatalf("b got %d frames, want 0", n)
	}
}

func TestJoinConflict(t *testing.T) {
	r := router.New(router.Config{DefaultTimeout: time.Minute})
	id, ch := uuid.New(), uuid.New()
	m, err := r.Join(id, ch, newFakePeer("first"))
	if err != nil {
		t.Fatalf("first Join: got %v, want nil", err)
	}
	_, err = r.Join(id, ch, newFakePeer("second"))
	var werr *wire.Error
	if !errors.As(err, &werr) || werr.Code != wire.CodeConflict {
		t.Fatalf("second Join with the same client ID and channel: got %v, want code conflict", err)
	}
	// Client IDs are unique per channel: the same ID on another channel is
	// another client, so a member of one channel cannot squat the ID of a
	// member of another and lock it out.
	other, err := r.Join(id, uuid.New(), newFakePeer("other channel"))
	if err != nil {
		t.Fatalf("Join with the same client ID on another channel: got %v, want nil", err)
	}
	other.Leave()
	m.Leave()
	m.Leave() // idempotent
	if m, err = r.Join(id, ch, newFakePeer("third")); err != nil {
		t.Fatalf("Join after Leave: got %v, want nil", err)
	}
	m.Leave()
	if n := len(r.Stats().Channels); n != 0 {
		t.Fatalf("channels after every member left = %d, want 0", n)
	}
}

func TestClose(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, takenID := taken(t, h)
	queuedID := uuid.New()
	a.send(t, queuedID, "queued")
	waiting := uuid.New()
	a.poll(t, waiting) // a cannot take its own request: this poll waits

	h.r.Close()
	if flags, e := a.peer.waitError(t, queuedID); flags != wire.FlagRequest || e.Code != wire.CodeServerClosed {
		t.Fatalf("queued request at Close: got %v %v, want request server_closed", flags, e)
	}
	if flags, e := a.peer.waitError(t, waiting); flags != wire.FlagReceive || e.Code != wire.CodeServerClosed {
		t.Fatalf("waiting receive at Close: got %v %v, want receive server_closed", flags, e)
	}
	refused := uuid.New()
	a.start(t, refused, 0)
	if _, e := a.peer.waitError(t, refused); e.Code != wire.CodeServerClosed {
		t.Fatalf("request after Close: got %v, want server_closed", e)
	}
	late := uuid.New()
	b.poll(t, late)
	if _, e := b.peer.waitError(t, late); e.Code != wire.CodeServerClosed {
		t.Fatalf("receive after Close: got %v, want server_closed", e)
	}
	if _, err := h.r.Join(uuid.New(), h.ch, newFakePeer("late")); err == nil {
		t.Fatalf("Join after Close: got nil error, want server_closed")
	}
	if n := h.r.InFlight(); n != 1 {
		t.Fatalf("in-flight after Close = %d, want 1 (the taken request)", n)
	}
	select {
	case <-h.r.Idle():
		t.Fatalf("Idle signalled with a request still taken")
	default:
	}

	// The taken request finishes normally.
	b.respond(t, takenID, "ok")
	a.peer.waitFor(t, "end of response", func(h *wire.Header) bool {
		return h.RequestID == takenID && h.Type == wire.TypeEnd && h.Flags == wire.FlagResponse
	})
	select {
	case <-h.r.Idle():
	case <-time.After(10 * time.Second):
		t.Fatalf("Idle not signalled within 10s after the last taken request ended")
	}
	if n := h.r.InFlight(); n != 0 {
		t.Fatalf("in-flight = %d, want 0", n)
	}
}

func TestStatsReturnToZero(t *testing.T) {
	h := newHarness(t, router.Config{DefaultTimeout: time.Hour})
	a, b, c := h.join("a"), h.join("b"), h.join("c")

	// Completed.
	for i := 0; i < 3; i++ {
		b.poll(t, uuid.New())
		id := uuid.New()
		a.send(t, id, "ping")
		b.peer.waitFor(t, "delivery", isDelivery(id))
		b.respond(t, id, "pong")
	}
	// Remote error.
	c.poll(t, uuid.New())
	failed := uuid.New()
	a.send(t, failed, "x")
	c.peer.waitFor(t, "delivery", isDelivery(failed))
	c.handle(t, c.frame(wire.TypeError, wire.FlagResponse, failed, 0, true, wire.AppendError(nil, wire.CodeRemote, "no")))
	// Timed out while taken.
	b.poll(t, uuid.New())
	timedOut := uuid.New()
	a.start(t, timedOut, 5)
	b.peer.waitError(t, timedOut)
	// Cancelled while queued.
	cancelled := uuid.New()
	a.start(t, cancelled, 0)
	a.handle(t, a.frame(wire.TypeError, wire.FlagRequest, cancelled, 0, true, wire.AppendError(nil, wire.CodeCancelled, "bye")))
	// A poll made and withdrawn.
	withdrawn := uuid.New()
	c.poll(t, withdrawn)
	c.handle(t, c.frame(wire.TypeEnd, wire.FlagReceive, withdrawn, 0, true, nil))

	st := h.r.Stats()
	want := map[router.Outcome]int64{
		router.OutcomeCompleted: 3, router.OutcomeRemoteError: 1,
		router.OutcomeTimeout: 1, router.OutcomeCancelled: 1,
	}
	for _, o := range router.Outcomes() {
		if st.Outcomes[o] != want[o] {
			t.Errorf("outcome %v = %d, want %d", o, st.Outcomes[o], want[o])
		}
	}
	if st.Started != 6 {
		t.Errorf("started = %d, want 6", st.Started)
	}
	if st.InFlight != 0 || h.r.InFlight() != 0 {
		t.Errorf("in-flight = %d (InFlight() %d), want 0", st.InFlight, h.r.InFlight())
	}
	if len(st.Channels) != 1 {
		t.Fatalf("channels = %d, want 1", len(st.Channels))
	}
	cs := st.Channels[0]
	if cs.Clients != 3 || cs.ReceiversWaiting != 0 || cs.Queued != 0 || cs.InFlight != 0 || cs.QueuedBytes != 0 {
		t.Errorf("channel stats = %+v, want 3 clients and nothing waiting, queued or in flight", cs)
	}
	var n int64
	for _, c := range st.Latency.Counts {
		n += c
	}
	if n != 6 {
		t.Errorf("latency observations = %d, want 6", n)
	}

	a.Leave()
	b.Leave()
	c.Leave()
	if st := h.r.Stats(); len(st.Channels) != 0 || st.InFlight != 0 {
		t.Errorf("after every member left: %d channels, %d in flight; want 0, 0", len(st.Channels), st.InFlight)
	}
}
