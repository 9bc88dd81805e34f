package router_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// Push credit is kept as runs: the units a member grants one after
// another, with no other receiver waiting between them, are one entry of
// the channel's FIFO of waiting receivers. The tests check that a run
// costs one entry whatever its length, and that requests still go to the
// units in the order they were granted, a unit each.

// grant gives the router n units of m's push credit (m speaks version 2).
func (m member) grant(t *testing.T, n uint32) {
	t.Helper()
	m.handle(t, m.frame(wire.TypeStart, wire.FlagReceive, wire.ID{}, 0, true, wire.AppendCredit(nil, n)))
}

func TestPushCreditIsOneEntryPerRun(t *testing.T) {
	h := newHarness(t, router.Config{MaxPollsPerClient: 4096})
	a, b := h.join("a"), h.joinVersion("b", wire.Version2)
	b.grant(t, 1000)
	b.grant(t, 24) // behind b's own run: the same entry
	if got := h.r.WaitingEntries(h.ch); got != 1 {
		t.Fatalf("after grants of 1,000 and 24 units: %d waiting entries, want 1", got)
	}
	if _, ready := h.r.ChannelCounts(h.ch); ready != 1024 {
		t.Fatalf("after grants of 1,000 and 24 units: %d receivers waiting, want 1,024", ready)
	}
	for i := range 10 {
		id := uuid.New()
		a.send(t, id, "x")
		b.peer.waitFor(t, "delivery of a pushed request", isDelivery(id))
		if _, ready := h.r.ChannelCounts(h.ch); ready != 1024-i-1 {
			t.Fatalf("after %d pushes: %d receivers waiting, want %d", i+1, ready, 1024-i-1)
		}
	}
	if got := h.r.WaitingEntries(h.ch); got != 1 {
		t.Fatalf("after 10 pushes from the run: %d waiting entries, want 1", got)
	}
	if got := channelStats(t, h.r, h.ch).ReceiversWaiting; got != 1014 {
		t.Fatalf("Stats: %d receivers waiting, want 1,014", got)
	}
	b.Leave()
	if _, ready := h.r.ChannelCounts(h.ch); ready != 0 {
		t.Fatalf("after b left: %d receivers waiting, want 0", ready)
	}
}

func TestPushCreditRunsKeepTheGrantOrder(t *testing.T) {
	h := newHarness(t, router.Config{})
	a, b, c := h.join("a"), h.joinVersion("b", wire.Version2), h.joinVersion("c", wire.Version2)
	b.grant(t, 2)
	c.grant(t, 3)
	b.grant(t, 1) // c's run is between: a run of its own
	b.grant(t, 1) // behind that one: the same run
	if got := h.r.WaitingEntries(h.ch); got != 3 {
		t.Fatalf("runs of b, c, b: %d waiting entries, want 3", got)
	}
	want := []member{b, b, c, c, c, b, b}
	for i, to := range want {
		id := uuid.New()
		a.send(t, id, "x")
		to.peer.waitFor(t, "delivery", isDelivery(id))
		for _, other := range []member{b, c} {
			if other.peer != to.peer && len(other.peer.matching(isDelivery(id))) > 0 {
				t.Fatalf("request %d went to %s too", i, other.peer.name)
			}
		}
	}
	if _, ready := h.r.ChannelCounts(h.ch); ready != 0 {
		t.Fatalf("every unit used: %d receivers waiting, want 0", ready)
	}
	if got := h.r.WaitingEntries(h.ch); got != 0 {
		t.Fatalf("every unit used: %d waiting entries, want 0", got)
	}
}
