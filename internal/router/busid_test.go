package router_test

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestClaimed: what a router answers another node's claim on a client ID
// (docs/PROTOCOL.md section 21.5): for a claim without the member's key,
// joining, then held once admitted, and held for 10 minutes once it has
// left; for one with its key, free throughout (its own client, moving);
// a yielded member is not admitted; a refused member leaves no key
// behind.
func TestClaimed(t *testing.T) {
	r := router.New(router.Config{DefaultTimeout: 60e9})
	ch, id := uuid.New(), uuid.New()
	key := bytes.Repeat([]byte{1}, router.KeySize)
	wrong := router.KeyHash(bytes.Repeat([]byte{2}, router.KeySize))
	right := router.KeyHash(key)
	want := func(what string, keyHash []byte, claim router.Claim) {
		t.Helper()
		if got, _ := r.Claimed(ch, id, keyHash); got != claim {
			t.Fatalf("%s: Claimed = %d, want %d", what, got, claim)
		}
	}

	want("no member", right, router.ClaimFree)
	m, err := r.JoinKeyed(id, ch, wire.Version2, key, &socketPeer{})
	if err != nil {
		t.Fatal(err)
	}
	want("joining, a claim with another key", wrong, router.ClaimJoining)
	want("joining, a claim without a key", nil, router.ClaimJoining)
	if !m.Admit() {
		t.Fatal("Admit of a joining member: false, want true")
	}
	want("admitted, a claim with another key", wrong, router.ClaimHeld)
	want("admitted, a claim without a key", nil, router.ClaimHeld)
	// Its own client, moving to another node while this connection
	// lingers (a drain, or a loss not yet seen here).
	want("admitted, a claim with its key", right, router.ClaimFree)
	m.Leave()
	want("left, a claim without its key", nil, router.ClaimHeld)
	want("left, a claim with another key", wrong, router.ClaimHeld)
	want("left, a claim with its key", right, router.ClaimFree)

	// A member that yields its ID is not admitted, and, refused, leaves
	// no key behind: the ID's owner is not locked out.
	other := uuid.New()
	m, err = r.JoinKeyed(other, ch, wire.Version2, bytes.Repeat([]byte{3}, router.KeySize), &socketPeer{})
	if err != nil {
		t.Fatal(err)
	}
	m.Yield()
	if m.Admit() {
		t.Fatal("Admit of a yielded member: true, want false")
	}
	m.LeaveRefused()
	if got, _ := r.Claimed(ch, other, nil); got != router.ClaimFree {
		t.Fatalf("after a refused member left: Claimed = %d, want free", got)
	}
	if m, err = r.JoinKeyed(other, ch, wire.Version2, nil, &socketPeer{}); err != nil {
		t.Fatalf("a join with the ID a refused member had: %v", err)
	}
	m.Leave()
}
