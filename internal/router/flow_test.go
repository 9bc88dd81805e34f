package router_test

import (
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// socketPeer is a fake connection whose socket writes happen when the test
// says so: frames the router hands it wait, like bytes in a real writer's
// queue, until written tells their SentNotifiers.
type socketPeer struct {
	mu     sync.Mutex
	frames []frame.Frame // everything received, in order
	queued []frame.Frame // frames with a notifier, not yet "written"
}

func (p *socketPeer) Send(f frame.Frame, _ *frame.Batch) {
	kept := f
	kept.Payload = append([]byte(nil), f.Payload...) // a copy of its own, not the pool's
	kept.Pooled = false
	f.Release() // the peer is the frame's last holder, as a connection's writer is
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frames = append(p.frames, kept)
	if kept.Sent != nil {
		p.queued = append(p.queued, kept)
	}
}

// written reports every queued frame as written to the socket.
func (p *socketPeer) written() {
	p.mu.Lock()
	q := p.queued
	p.queued = nil
	p.mu.Unlock()
	for _, f := range q {
		f.Sent.FrameSent(len(f.Payload))
	}
}

// granted sums the credit granted for request id with direction flags:
// credit frames, and a grant carried by a start acknowledgement.
func (p *socketPeer) granted(t *testing.T, id wire.ID, flags wire.Flags) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	total := 0
	for _, f := range p.frames {
		h := f.Header
		if h.RequestID != id || len(f.Payload) == 0 {
			continue
		}
		if h.Flags == flags|wire.FlagCredit || h.Flags == flags && h.Type == wire.TypeStart {
			n, err := wire.ParseCredit(f.Payload)
			if err != nil {
				t.Fatalf("credit payload: %v", err)
			}
			total += int(n)
		}
	}
	return total
}

// bytesTo sums the payload bytes of request id's stream frames (flags)
// handed to the peer.
func (p *socketPeer) bytesTo(id wire.ID, flags wire.Flags) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, f := range p.frames {
		if f.Header.RequestID == id && f.Header.Flags == flags && f.Header.Type == wire.TypeChunk {
			n += len(f.Payload)
		}
	}
	return n
}

// uploader plays a sender that sends as fast as its credit allows.
type uploader struct {
	m    *router.Member
	peer *socketPeer
	id   wire.ID
	seq  uint32
	sent int
}

func startUpload(t *testing.T, m *router.Member, p *socketPeer) *uploader {
	t.Helper()
	u := &uploader{m: m, peer: p, id: uuid.New(), seq: 1}
	u.handle(t, wire.TypeStart, 0, nil)
	return u
}

func (u *uploader) handle(t *testing.T, typ wire.FrameType, seq uint32, payload []byte) {
	t.Helper()
	f := frame.Frame{Header: wire.Header{Version: wire.Version, Type: typ, Flags: wire.FlagRequest, RequestID: u.id,
		ClientID: u.m.ID(), ChannelID: u.m.Channel(), Sequence: seq, Final: typ == wire.TypeEnd, Length: uint32(len(payload))},
		Payload: payload}
	if err := u.m.Handle(f, nil); err != nil {
		t.Fatalf("Handle(%v): %v", f.Header, err)
	}
}

// pump sends chunks while credit lasts and returns how many bytes it sent.
func (u *uploader) pump(t *testing.T) int {
	t.Helper()
	before := u.sent
	for {
		credit := wire.InitialRequestCredit + u.peer.granted(t, u.id, wire.FlagRequest) - u.sent
		if credit <= 0 {
			return u.sent - before
		}
		n := min(credit, wire.MaxFramePayload)
		u.handle(t, wire.TypeChunk, u.seq, make([]byte, n))
		u.seq++
		u.sent += n
	}
}

// joinSocket joins a socketPeer to ch.
func joinSocket(t *testing.T, r *router.Router, ch wire.ID) (*router.Member, *socketPeer) {
	t.Helper()
	p := &socketPeer{}
	m, err := r.Join(uuid.New(), ch, p)
	if err != nil {
		t.Fatalf("Join: %v", err)
	}
	t.Cleanup(m.Leave)
	return m, p
}

func poll(t *testing.T, m *router.Member) {
	t.Helper()
	f := frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: wire.FlagReceive,
		RequestID: uuid.New(), ClientID: m.ID(), ChannelID: m.Channel(), Final: true}}
	if err := m.Handle(f, nil); err != nil {
		t.Fatalf("poll: %v", err)
	}
}

// TestServerHoldsOneWindowPerStream: with a receiver whose socket takes
// nothing, the server accepts exactly one window of a request body and
// grants no more; as the receiver's socket takes bytes, credit flows
// again, and never beyond one window outstanding.
func TestServerHoldsOneWindowPerStream(t *testing.T) {
	r := router.New(router.Config{DefaultTimeout: 60e9})
	ch := uuid.New()
	sender, sp := joinSocket(t, r, ch)
	receiver, rp := joinSocket(t, r, ch)
	poll(t, receiver)
	u := startUpload(t, sender, sp)

	if got := u.pump(t); got != wire.StreamWindow {
		t.Fatalf("with nothing written to the receiver, the sender got to send %d bytes, want one window (%d)", got, wire.StreamWindow)
	}
	if got := rp.bytesTo(u.id, wire.FlagReceive); got != wire.StreamWindow {
		t.Fatalf("receiver was handed %d bytes, want %d (its initial credit)", got, wire.StreamWindow)
	}
	// From here the receiver's socket takes everything, and its client
	// grants what its reader consumed — all it was handed: credit flows
	// again, and the server never holds more than a window.
	granted, written := 0, 0
	consume := func() {
		t.Helper()
		rp.written()
		written = rp.bytesTo(u.id, wire.FlagReceive)
		n := written - granted
		if n == 0 {
			return
		}
		granted += n
		grant := frame.Frame{Header: wire.Header{Version: wire.Version, Type: wire.TypeChunk, Flags: wire.FlagReceive | wire.FlagCredit,
			RequestID: u.id, ClientID: receiver.ID(), ChannelID: ch}, Payload: wire.AppendCredit(nil, uint32(n))}
		if err := receiver.Handle(grant, nil); err != nil {
			t.Fatalf("receiver's credit of %d: %v", n, err)
		}
	}
	consume()
	for round := range 4 {
		sent := u.pump(t)
		if sent == 0 || sent > wire.StreamWindow {
			t.Fatalf("round %d: the sender could send %d bytes after the receiver took a window, want 1..%d", round, sent, wire.StreamWindow)
		}
		held := u.sent - written // received from the sender, not yet out of the receiver's socket
		if outstanding := wire.InitialRequestCredit + sp.granted(t, u.id, wire.FlagRequest) - u.sent; outstanding+held > wire.StreamWindow {
			t.Fatalf("round %d: server holds %d bytes and owes %d of credit, over one window (%d)", round, held, outstanding, wire.StreamWindow)
		}
		consume()
	}
}

// TestSmallBodyCostsNoGrant: a body within the initial credit gets its
// acknowledgements and no credit frame.
func TestSmallBodyCostsNoGrant(t *testing.T) {
	r := router.New(router.Config{DefaultTimeout: 60e9})
	ch := uuid.New()
	sender, sp := joinSocket(t, r, ch)
	receiver, _ := joinSocket(t, r, ch)
	poll(t, receiver)
	u := startUpload(t, sender, sp)
	u.handle(t, wire.TypeChunk, 1, make([]byte, wire.InitialRequestCredit-1))
	u.handle(t, wire.TypeEnd, 2, nil)
	if got := sp.granted(t, u.id, wire.FlagRequest); got != 0 {
		t.Fatalf("a %d-byte body was granted %d bytes of credit, want none", wire.InitialRequestCredit-1, got)
	}
}

// TestQueuedRequestsShareTheChannelBudget: queued requests draw their
// credit beyond the initial from MaxChannelQueueBytes; one that finds it
// spent waits, and gets its grant when a receiver takes another.
func TestQueuedRequestsShareTheChannelBudget(t *testing.T) {
	budget := wire.StreamWindow - wire.InitialRequestCredit // exactly one grant
	r := router.New(router.Config{DefaultTimeout: 60e9, MaxChannelQueueBytes: int64(budget)})
	ch := uuid.New()
	sender, sp := joinSocket(t, r, ch)
	receiver, _ := joinSocket(t, r, ch)

	first := startUpload(t, sender, sp)
	first.pump(t)
	second := startUpload(t, sender, sp)
	second.pump(t)
	if got := sp.granted(t, first.id, wire.FlagRequest); got != budget {
		t.Fatalf("first queued request granted %d, want the whole budget %d", got, budget)
	}
	if got := sp.granted(t, second.id, wire.FlagRequest); got != 0 {
		t.Fatalf("second queued request granted %d with the budget spent, want 0", got)
	}
	if st := r.Stats().Channels[0]; st.Queued != 2 || st.QueuedBytes != int64(first.sent+second.sent) {
		t.Fatalf("stats: %d queued holding %d bytes, want 2 holding %d", st.Queued, st.QueuedBytes, first.sent+second.sent)
	}
	poll(t, receiver) // takes the first, freeing its share of the budget
	if got := sp.granted(t, second.id, wire.FlagRequest); got == 0 || got > budget {
		t.Fatalf("second queued request granted %d once the first was taken, want 1..%d", got, budget)
	}
}

// TestFirstGrantIsWhatTheBodySent: a request body that has used its
// 16 KiB of initial credit is granted 16 KiB more, not the rest of the
// window: its window doubles with what it carries (slow start), so a
// small streamed body is charged for about what it holds (issue 17,
// finding 13). A long body still gets a whole window in flight.
func TestFirstGrantIsWhatTheBodySent(t *testing.T) {
	r := router.New(router.Config{DefaultTimeout: 60e9})
	ch := uuid.New()
	sender, sp := joinSocket(t, r, ch)
	receiver, _ := joinSocket(t, r, ch)
	poll(t, receiver)
	u := startUpload(t, sender, sp)
	u.handle(t, wire.TypeChunk, u.seq, make([]byte, wire.InitialRequestCredit))
	u.seq++
	u.sent += wire.InitialRequestCredit
	if got := sp.granted(t, u.id, wire.FlagRequest); got != wire.InitialRequestCredit {
		t.Fatalf("after its initial %d bytes the body was granted %d, want %d", wire.InitialRequestCredit, got, wire.InitialRequestCredit)
	}
	u.pump(t)
	if got := wire.InitialRequestCredit + sp.granted(t, u.id, wire.FlagRequest); got != wire.StreamWindow {
		t.Fatalf("with nothing written, the body's credit came to %d, want one window (%d)", got, wire.StreamWindow)
	}
}
