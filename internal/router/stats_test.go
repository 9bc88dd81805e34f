package router_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/router"
)

// TestChannelOutcomesAndMemberStats checks the per-channel outcome counts
// and the per-member request counts against known traffic on two channels.
func TestChannelOutcomesAndMemberStats(t *testing.T) {
	h := newHarness(t, router.Config{DefaultTimeout: time.Hour})
	a, b := h.join("a"), h.join("b")
	other := uuid.New()
	lone := h.joinChannel("lone", other)

	for range 2 {
		b.poll(t, uuid.New())
		id := uuid.New()
		a.send(t, id, "ping")
		b.peer.waitFor(t, "delivery", isDelivery(id))
		b.respond(t, id, "pong")
	}
	held := uuid.New()
	b.poll(t, uuid.New())
	a.start(t, held, 0)
	b.peer.waitFor(t, "delivery", isDelivery(held))
	refused := uuid.New()
	lone.start(t, refused, 0) // no peers on its channel
	lone.peer.waitError(t, refused)

	if got := channelStats(t, h.r, h.ch).Outcomes; got[router.OutcomeCompleted] != 2 || got[router.OutcomeNoPeers] != 0 {
		t.Errorf("channel outcomes %v, want 2 completed and no no_peers", got)
	}
	if got := channelStats(t, h.r, other).Outcomes; got[router.OutcomeNoPeers] != 1 || got[router.OutcomeCompleted] != 0 {
		t.Errorf("lone channel outcomes %v, want 1 no_peers and nothing completed", got)
	}
	if got, want := a.Stats(), (router.MemberStats{Sending: 1, Sent: 3}); got != want {
		t.Errorf("sender's stats %+v, want %+v", got, want)
	}
	if got, want := b.Stats(), (router.MemberStats{Receiving: 1, Received: 3}); got != want {
		t.Errorf("receiver's stats %+v, want %+v", got, want)
	}
	if got, want := lone.Stats(), (router.MemberStats{}); got != want {
		t.Errorf("refused sender's stats %+v, want %+v", got, want)
	}
}
