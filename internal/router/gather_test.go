package router_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestGatherChargesItsSender: every member's part of a gather holds up to
// a window of the body, charged to the gather's sender: a sender whose
// account is full has its next gather refused with limit, and what the
// router holds for its gathers stays within its account.
func TestGatherChargesItsSender(t *testing.T) {
	const perMember = 2 << 20
	h := newHarness(t, router.Config{Memory: budget.New(1<<30, nil), MemoryPerMember: perMember})
	const members = 8
	for i := range members {
		h.joinVersion("member", wire.Version3)
		_ = i
	}
	s := h.joinVersion("sender", wire.Version3)
	body := make([]byte, 2+wire.InitialRequestCredit) // no headers, then a whole 16 KiB body
	accepted := 0
	for range 1000 {
		id := uuid.New()
		f := s.frame(wire.TypeStart, wire.FlagRequest|wire.FlagAll, id, 0, true, body)
		f.Header.Version = wire.Version3
		s.handle(t, f)
		if errs := s.peer.matching(func(hd *wire.Header) bool { return hd.Type == wire.TypeError && hd.RequestID == id }); len(errs) > 0 {
			break
		}
		accepted++
	}
	used := s.Account().Used()
	t.Logf("%d gathers to %d members accepted; the sender's account holds %d of %d bytes", accepted, members, used, int64(perMember))
	if accepted == 0 || accepted >= 1000 {
		t.Fatalf("%d gathers accepted of 1000: want some, then limit", accepted)
	}
	if used > perMember {
		t.Fatalf("the sender's account holds %d bytes, over its %d", used, perMember)
	}
	// Each part holds its 16 KiB (charged at 3/2 plus overhead): the
	// accepted gathers' parts cannot all fit in less than that.
	if min := int64(accepted) * members * wire.InitialRequestCredit; used < min {
		t.Fatalf("the sender's account holds %d bytes for %d parts of 16 KiB: under their %d", used, accepted*members, min)
	}
}
