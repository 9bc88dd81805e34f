package router

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/wire"
)

func TestTombstonesClearOnPong(t *testing.T) {
	ts := tombstones{limit: 4096, channel: new(endedIDs)}
	ids := make([]wire.ID, 3000)
	gens := make([]uint64, len(ids))
	for i := range ids {
		ids[i] = uuid.New()
		gens[i] = ts.add(ids[i], 0)
	}
	// Nothing is forgotten by count while its pong is outstanding: 3,000
	// ended IDs, all remembered (the old ring kept 1,024).
	for i, id := range ids {
		if !ts.has(id) {
			t.Fatalf("ID %d of %d forgotten before its pong", i, len(ids))
		}
	}
	ts.pong(gens[1999], 0)
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
	ts.pong(ts.gen, 0)
	if got := ts.waiting(); got != 0 {
		t.Fatalf("waiting after the last pong: got %d, want 0", got)
	}
	if got := len(ts.set); got != graceCapacity {
		t.Fatalf("IDs remembered after every pong: got %d, want the grace ring's %d", got, graceCapacity)
	}
}

func TestTombstonesBoundedWithoutPongs(t *testing.T) {
	ts := tombstones{limit: 100, channel: new(endedIDs)}
	var first wire.ID
	for i := 0; i < 10000; i++ {
		id := uuid.New()
		if i == 0 {
			first = id
		}
		ts.add(id, 0)
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
	a.add(shared, 0)
	b.add(shared, 0)
	a.add(shared, 0) // again: still one holder
	if got := chEnded.n[shared]; got != 2 {
		t.Fatalf("holders of an ID both members hold: got %d, want 2", got)
	}
	for i := 0; i < 3000; i++ {
		a.add(uuid.New(), 0)
		distinct := len(a.set) + len(b.set)
		if a.has(shared) {
			distinct--
		}
		if len(chEnded.n) != distinct {
			t.Fatalf("after %d IDs: the channel counts %d IDs, the members hold %d distinct", i+1, len(chEnded.n), distinct)
		}
	}
	if a.has(shared) || chEnded.n[shared] != 1 {
		t.Fatalf("the shared ID, pushed out of a's grace ring: a has it %v, holders %d; want false, 1", a.has(shared), chEnded.n[shared])
	}
	a.forget()
	if len(chEnded.n) != 1 || !chEnded.has(shared) {
		t.Fatalf("after a's departure the channel counts %d IDs, want b's 1", len(chEnded.n))
	}
	b.forget()
	if chEnded.n != nil {
		t.Fatalf("after both departures the channel keeps a map of %d IDs, want none", len(chEnded.n))
	}
}

// TestGraceExpiresAndGivesBackItsCharge checks that IDs cleared by a pong
// are forgotten graceTTL after, that the charge follows the set's peak,
// and that a set down to a quarter of its peak is made anew and the rest
// given back.
func TestGraceExpiresAndGivesBackItsCharge(t *testing.T) {
	root := budget.New(1<<30, nil)
	var chEnded endedIDs
	ts := tombstones{limit: 4096, channel: &chEnded, acct: root}
	for i := 0; i < 2000; i++ {
		ts.add(uuid.New(), 0)
	}
	if got, want := root.Used(), int64(2000*tombstoneCost); got != want {
		t.Fatalf("charged for 2,000 IDs: got %d, want %d", got, want)
	}
	ts.pong(ts.gen, time.Second) // all cleared at 1 s; the grace queue keeps the last 1,024
	if got := len(ts.set); got != graceCapacity {
		t.Fatalf("IDs kept after the pong: got %d, want %d", got, graceCapacity)
	}
	if got, want := root.Used(), int64(2000*tombstoneCost); got != want {
		t.Fatalf("charged with 1,024 of a peak of 2,000 kept: got %d, want the peak's %d", got, want)
	}

	// expireGrace's cutoff is the time graceTTL before now, as the
	// member's timer passes it.
	late := uuid.New() // cleared at 5 s
	ts.pong(ts.add(late, 4*time.Second), 5*time.Second)
	ts.expireGrace(time.Second - 1)
	if got := len(ts.set); got != graceCapacity {
		t.Fatalf("IDs kept just before graceTTL has passed: got %d, want %d (the late one pushed the oldest out)", got, graceCapacity)
	}
	ts.expireGrace(time.Second)
	if !ts.has(late) || len(ts.set) != 1 {
		t.Fatalf("after graceTTL from the first pong: %d IDs kept (the late one: %v), want only the late one", len(ts.set), ts.has(late))
	}
	// Made anew each time it fell to a quarter of its peak, down to a
	// peak under shrinkFloor, which is kept until the set is empty.
	if got := root.Used(); got < tombstoneCost || got >= shrinkFloor*tombstoneCost {
		t.Fatalf("charged with 1 ID left of 2,000: got %d, want from %d to under %d", got, tombstoneCost, shrinkFloor*tombstoneCost)
	}
	if len(chEnded.n) != 1 || !chEnded.has(late) {
		t.Fatalf("the channel counts %d IDs, want the late one alone", len(chEnded.n))
	}
	ts.expireGrace(5 * time.Second)
	if ts.set != nil || root.Used() != 0 || chEnded.n != nil {
		t.Fatalf("after every ID expired: set %v, charged %d, channel %v; want nil, 0, nil", ts.set, root.Used(), chEnded.n)
	}
}

// TestGraceIDClearedTwice checks that an ID cleared, added again and
// cleared again stays until its later grace entry goes, and is given back
// once.
func TestGraceIDClearedTwice(t *testing.T) {
	root := budget.New(1<<30, nil)
	ts := tombstones{limit: 4096, channel: new(endedIDs), acct: root}
	id := uuid.New()
	ts.pong(ts.add(id, 0), 0)
	ts.pong(ts.add(id, 0), 5*time.Second)
	ts.expireGrace(0)
	if !ts.has(id) {
		t.Fatalf("the ID was forgotten with its first grace entry, want it kept until its second")
	}
	ts.expireGrace(5 * time.Second)
	if ts.has(id) || root.Used() != 0 {
		t.Fatalf("after its second grace entry: kept %v, charged %d; want false, 0", ts.has(id), root.Used())
	}
}
