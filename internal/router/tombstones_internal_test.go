package router

import (
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/wire"
)

func TestTombstonesClearOnPong(t *testing.T) {
	ts := tombstones{limit: 4096}
	ids := make([]wire.ID, 3000)
	gens := make([]uint64, len(ids))
	for i := range ids {
		ids[i] = uuid.New()
		gens[i] = ts.add(ids[i])
	}
	// Nothing is forgotten by count while its pong is outstanding: 3,000
	// ended IDs, all remembered (the old ring kept 1,024).
	for i, id := range ids {
		if !ts.has(id) {
			t.Fatalf("ID %d of %d forgotten before its pong", i, len(ids))
		}
	}
	ts.pong(gens[1999])
	if got := ts.waiting(); got != 1000 {
		t.Fatalf("waiting after the pong for generation 2000: got %d, want 1000", got)
	}
	for i, id := range ids {
		// Cleared IDs stay in the grace ring, the last graceCapacity of them.
		want := i >= 2000-graceCapacity
		if got := ts.has(id); got != want {
			t.Fatalf("has(ID %d) after the pong: got %v, want %v", i, got, want)
		}
	}
	ts.pong(ts.gen)
	if got := ts.waiting(); got != 0 {
		t.Fatalf("waiting after the last pong: got %d, want 0", got)
	}
	if got := len(ts.set); got != graceCapacity {
		t.Fatalf("IDs remembered after every pong: got %d, want the grace ring's %d", got, graceCapacity)
	}
}

func TestTombstonesBoundedWithoutPongs(t *testing.T) {
	ts := tombstones{limit: 100}
	var first wire.ID
	for i := 0; i < 10000; i++ {
		id := uuid.New()
		if i == 0 {
			first = id
		}
		ts.add(id)
	}
	if got := ts.waiting(); got != 100 {
		t.Fatalf("waiting with no pongs: got %d, want the limit 100", got)
	}
	if got := len(ts.set); got > 100+graceCapacity {
		t.Fatalf("IDs remembered with no pongs: got %d, want at most %d", got, 100+graceCapacity)
	}
	if ts.has(first) {
		t.Fatalf("the first of 10,000 IDs is still remembered, want it gone")
	}
	if got := cap(ts.order); got > 4*100+64 {
		t.Fatalf("order slice capacity %d with 100 waiting, want it compacted", got)
	}
}

// TestTombstonesCountedOnTheirChannel checks that the channel's count of
// holders follows a member's set through evictions to the grace ring, out
// of it, and a departure, with a second member holding some of the IDs.
func TestTombstonesCountedOnTheirChannel(t *testing.T) {
	var chEnded endedIDs
	a := tombstones{limit: 10, channel: &chEnded}
	b := tombstones{limit: 10, channel: &chEnded}
	shared := uuid.New()
	a.add(shared)
	b.add(shared)
	a.add(shared) // again: still one holder
	if got := chEnded[shared]; got != 2 {
		t.Fatalf("holders of an ID both members hold: got %d, want 2", got)
	}
	for i := 0; i < 3000; i++ {
		a.add(uuid.New())
		distinct := len(a.set) + len(b.set)
		if a.has(shared) {
			distinct--
		}
		if len(chEnded) != distinct {
			t.Fatalf("after %d IDs: the channel counts %d IDs, the members hold %d distinct", i+1, len(chEnded), distinct)
		}
	}
	if a.has(shared) || chEnded[shared] != 1 {
		t.Fatalf("the shared ID, pushed out of a's grace ring: a has it %v, holders %d; want false, 1", a.has(shared), chEnded[shared])
	}
	a.forget()
	if len(chEnded) != 1 || !chEnded.has(shared) {
		t.Fatalf("after a's departure the channel counts %d IDs, want b's 1", len(chEnded))
	}
	b.forget()
	if chEnded != nil {
		t.Fatalf("after both departures the channel keeps a map of %d IDs, want none", len(chEnded))
	}
}
