package router_test

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// v3Start is a v3 request start from m carrying headers h (and no body).
func v3Start(t *testing.T, m member, id wire.ID, h map[string][]string) frame.Frame {
	t.Helper()
	block, err := wire.AppendHeaderBlock(nil, h)
	if err != nil {
		t.Fatal(err)
	}
	f := m.frame(wire.TypeStart, wire.FlagRequest, id, 0, false, block)
	f.Header.Version = wire.Version3
	return f
}

// TestRequestHeadersChargedToTheSender: the header block of a queued
// request is charged to its sender's memory account until the request
// ends, and a sender whose account cannot take it is refused with limit.
func TestRequestHeadersChargedToTheSender(t *testing.T) {
	root := budget.New(1<<30, nil)
	h := newHarness(t, router.Config{Memory: root, MemoryPerMember: 1 << 20})
	a, _ := h.joinVersion("a", wire.Version3), h.joinVersion("b", wire.Version3)
	plain, big := uuid.New(), uuid.New()
	a.handle(t, v3Start(t, a, plain, nil))
	base := a.Account().Used()
	a.handle(t, v3Start(t, a, big, map[string][]string{"K": {strings.Repeat("v", 8<<10)}}))
	if got := a.Account().Used() - base; got < 8<<10 {
		t.Fatalf("a request with 8 KiB of headers charged %d bytes more than one without, want at least 8 KiB", got)
	}
	a.handle(t, a.frame(wire.TypeError, wire.FlagRequest, big, 0, true, wire.AppendError(nil, wire.CodeCancelled, "")))
	// What stays is the cancelled request's tombstone: a's body had not
	// ended, so a may still send frames for it.
	if got, want := a.Account().Used(), base+router.TombstoneCost; got != want {
		t.Fatalf("after the request with headers ended the account holds %d bytes, want %d: as before, and a tombstone", got, want)
	}

	// An account with room for a request's window but not for its
	// headers as well: the request is refused with limit.
	tight := newHarness(t, router.Config{Memory: budget.New(1<<30, nil), MemoryPerMember: base + 4<<10})
	c, _ := tight.joinVersion("c", wire.Version3), tight.joinVersion("d", wire.Version3)
	refused := uuid.New()
	c.handle(t, v3Start(t, c, refused, map[string][]string{"K": {strings.Repeat("v", 8<<10)}}))
	if _, e := c.peer.waitError(t, refused); e.Code != wire.CodeLimit {
		t.Fatalf("a request whose headers the account cannot hold: got %v, want limit", e)
	}
	if got := c.Account().Used(); got != router.TombstoneCost {
		t.Fatalf("after the refusal the account holds %d bytes, want the refused ID's tombstone's %d", got, router.TombstoneCost)
	}
	c.handle(t, v3Start(t, c, uuid.New(), nil)) // without headers it fits
}

// TestHeaderBoundRefusesTheRequestOnly: a block over MaxHeaderBytes is
// refused with too_large, and the member's next request is admitted.
func TestHeaderBoundRefusesTheRequestOnly(t *testing.T) {
	h := newHarness(t, router.Config{MaxHeaderBytes: 1024})
	a, _ := h.joinVersion("a", wire.Version3), h.joinVersion("b", wire.Version3)
	id := uuid.New()
	a.handle(t, v3Start(t, a, id, map[string][]string{"K": {strings.Repeat("v", 2000)}}))
	if _, e := a.peer.waitError(t, id); e.Code != wire.CodeTooLarge {
		t.Fatalf("got %v, want too_large", e)
	}
	a.handle(t, v3Start(t, a, uuid.New(), map[string][]string{"K": {"small"}}))
}
