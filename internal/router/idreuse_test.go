package router_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestIDInUseWhileAMemberMaySendForIt checks that a request ID stays in
// use on its channel while any member holds it as a tombstone: another
// client's start under it is a protocol error, and nobody is handed a new
// request under an ID its receiver may still send frames for (CI's
// FuzzServerStates found b handed c's request under the ID of a's, which
// b had held until a cancelled it). The ID is free again once every
// holder has left.
func TestIDInUseWhileAMemberMaySendForIt(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, c := h.join("a"), h.join("b"), h.join("c")
	b.poll(t, uuid.New())
	id := uuid.New()
	a.start(t, id, 0) // its body stays open: a holds the ID too
	b.peer.waitFor(t, "delivery", isDelivery(id))
	a.handle(t, a.frame(wire.TypeError, wire.FlagRequest, id, 0, true, wire.AppendError(nil, wire.CodeCancelled, "gave up")))
	if _, e := b.peer.waitError(t, id); e.Code != wire.CodeCancelled {
		t.Fatalf("receiver got %v, want cancelled", e)
	}

	startUnder := func(m member) error {
		return m.Handle(m.frame(wire.TypeStart, wire.FlagRequest, id, 0, false, nil), nil)
	}
	b.poll(t, uuid.New())
	wantProtocolError(t, "c's start under the ID b holds", startUnder(c))
	if n := len(b.peer.matching(isDelivery(id))); n != 1 {
		t.Fatalf("b was handed request %x %d times, want once", id[:4], n)
	}
	// b's response to the first, crossing the cancel, goes nowhere.
	b.respond(t, id, "late")
	for _, m := range []member{a, c} {
		if n := len(m.peer.matching(func(h *wire.Header) bool { return h.RequestID == id && h.Flags == wire.FlagResponse })); n != 0 {
			t.Fatalf("%s got %d response frames for the cancelled request, want 0", m.peer.name, n)
		}
	}

	// b's pong clears the tombstone, which stays in its grace ring: still
	// in use.
	answerTombstonePings(t, b)
	wantProtocolError(t, "c's start after b's pong", startUnder(c))

	// Each holder counts: with b gone, a still holds it.
	b.Leave()
	wantProtocolError(t, "c's start with a still holding the ID", startUnder(c))
	a.Leave()

	d := h.join("d")
	d.poll(t, uuid.New())
	if err := startUnder(c); err != nil {
		t.Fatalf("c's start once every holder has left: got %v, want nil", err)
	}
	d.peer.waitFor(t, "delivery of c's request", isDelivery(id))
}

// TestTombstonesChargedToTheirMember checks that the ended IDs a member
// remembers are charged to its account, and given back when it leaves: a
// client that piles up refused starts and never answers pings holds
// memory the budget sees.
func TestTombstonesChargedToTheirMember(t *testing.T) {
	root := budget.New(1<<30, nil)
	h := newHarness(t, router.Config{Memory: root})
	a := h.join("a") // alone: every start is refused with no_peers
	base := root.Used()
	const n = 300
	for i := 0; i < n; i++ {
		id := uuid.New()
		a.start(t, id, 0)
		if _, e := a.peer.waitError(t, id); e.Code != wire.CodeNoPeers {
			t.Fatalf("start %d: got %v, want no_peers", i, e)
		}
	}
	if got, want := root.Used()-base, int64(n*router.TombstoneCost); got != want {
		t.Fatalf("memory charged for %d refused starts: got %d bytes, want %d (%d each)", n, got, want, router.TombstoneCost)
	}
	if got := a.Account().Used(); got < n*router.TombstoneCost {
		t.Fatalf("a's account holds %d bytes, want at least the %d of its %d ended IDs", got, n*router.TombstoneCost, n)
	}
	a.Leave()
	if got := root.Used(); got != base {
		t.Fatalf("memory charged once a has left: got %d bytes, want %d", got, base)
	}
}

// TestIDFreeGraceTTLAfterThePong checks, on synctest's clock, that an ID
// whose holder has answered its tombstone ping stays in use for GraceTTL
// and then is free, with its charge given back: an honest connection does
// not keep its ended IDs, and pay for them, for the rest of its life.
func TestIDFreeGraceTTLAfterThePong(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		root := budget.New(1<<30, nil)
		h := newHarness(t, router.Config{Memory: root})
		a, b, c := h.join("a"), h.join("b"), h.join("c")
		base := root.Used()
		b.poll(t, uuid.New())
		id := uuid.New()
		a.send(t, id, "body") // its body ends: only b will hold the ID
		b.peer.waitFor(t, "delivery", isDelivery(id))
		a.handle(t, a.frame(wire.TypeError, wire.FlagRequest, id, 0, true, wire.AppendError(nil, wire.CodeCancelled, "gave up")))
		if got, want := root.Used(), base+router.TombstoneCost; got != want {
			t.Fatalf("charged with b's tombstone: got %d, want %d", got, want)
		}
		answerTombstonePings(t, b)
		startUnder := func() error {
			return c.Handle(c.frame(wire.TypeStart, wire.FlagRequest, id, 0, false, nil), nil)
		}
		time.Sleep(router.GraceTTL - time.Millisecond)
		synctest.Wait()
		wantProtocolError(t, "c's start just before GraceTTL has passed", startUnder())

		time.Sleep(time.Millisecond)
		synctest.Wait() // b's timer has run
		if got := root.Used(); got != base {
			t.Fatalf("charged GraceTTL after the pong: got %d, want %d", got, base)
		}
		b.poll(t, uuid.New())
		if err := startUnder(); err != nil {
			t.Fatalf("c's start GraceTTL after the pong: got %v, want nil", err)
		}
		if n := len(b.peer.matching(isDelivery(id))); n != 2 {
			t.Fatalf("b was handed a request under %x %d times, want twice: the cancelled one and c's", id[:4], n)
		}
	})
}

// answerTombstonePings answers every tombstone ping m has been sent, as
// its client would, and fails the test if there was none: the ID that
// ended must have been remembered for m.
func answerTombstonePings(t *testing.T, m member) {
	t.Helper()
	answered := 0
	for _, f := range m.peer.all() {
		if gen, ok := router.PongGeneration(f.Header.RequestID); ok && f.Header.Flags == wire.FlagPing {
			m.Pong(gen)
			answered++
		}
	}
	if answered == 0 {
		t.Fatalf("%s was sent no tombstone ping to answer", m.peer.name)
	}
}
