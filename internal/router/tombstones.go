package router

import (
	"encoding/binary"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// tombstones remembers the requests that ended while a member could still
// be sending frames for them (a cancel crossing a response, say), so that
// its late frames are dropped rather than taken for forgeries.
//
// An ID is forgotten when the member proves it has seen the end, not after
// a count: each ID added opens a generation, and the router follows the
// frame that ends the request with a ping whose request ID carries the
// generation (pingMarker in the first 8 bytes, the generation in the last
// 8). A member reads its connection in order and answers pings in order, so
// its pong for generation g comes after every frame it sent before it read
// the ends up to g: once the pong arrives, no late frame for those IDs can
// follow, and they move from the set to a grace ring of the last
// graceCapacity cleared IDs, for clients less careful than the protocol
// asks. A client that never answers pings keeps at most limit IDs waiting;
// beyond that the oldest go to the grace ring too.
//
// While a member holds an ID here, in either state, the ID is in use on
// its channel (channel.ended counts the holders): a request started under
// it again is refused, so that the member is never handed a new request
// under an ID it may still send frames for.
//
// Each ID held costs its member's account tombstoneCost, whatever the
// limits (a refused start must leave one): a client that piles up ended
// requests and never answers pings is the heaviest connection to cut when
// memory runs short.
type tombstones struct {
	channel *endedIDs          // the channel's count of holders, kept with set
	acct    *budget.Account    // the member's, charged for each ID in set
	set     map[wire.ID]uint64 // ID -> the generation whose pong clears it; 0 once cleared (in grace)
	order   []tombstone        // waiting IDs, oldest first; generations ascend
	head    int                // order[:head] are cleared
	gen     uint64             // the newest generation opened
	limit   int

	grace     []wire.ID // cleared IDs still dropped quietly, a ring
	graceNext int
}

// graceCapacity is how many IDs cleared by a pong are still remembered.
const graceCapacity = 1024

// tombstoneCost is what one ID held costs in memory: its entries in the
// set, the order and the grace ring, and in the channel's count of
// holders. Measured at 115 bytes per ID with 2,048 IDs held by each of 200
// members of one channel (heap in use after a GC), 87 without the
// channel's count; rounded up.
const tombstoneCost = 128

type tombstone struct {
	id  wire.ID
	gen uint64
}

// pingMarker starts the request ID of the router's tombstone pings, so
// their pongs are told apart from the connection's keepalive pongs (whose
// request ID is zero).
var pingMarker = [8]byte{'s', 'b', 't', 'o', 'm', 'b', 0, 1}

// tombstonePing is the ping that closes generation gen.
func tombstonePing(ch *channel, to *Member, gen uint64) frame.Frame {
	var id wire.ID
	copy(id[:8], pingMarker[:])
	binary.BigEndian.PutUint64(id[8:], gen)
	h := header(ch, to, wire.TypeStart, wire.FlagPing, id)
	h.Final = true
	return frame.Frame{Header: h}
}

// PongGeneration reports whether id is the request ID of a tombstone pong,
// and its generation.
func PongGeneration(id wire.ID) (uint64, bool) {
	if [8]byte(id[:8]) != pingMarker {
		return 0, false
	}
	return binary.BigEndian.Uint64(id[8:]), true
}

func (t *tombstones) has(id wire.ID) bool {
	_, ok := t.set[id]
	return ok
}

// waiting is the number of IDs waiting for their pong.
func (t *tombstones) waiting() int { return len(t.order) - t.head }

// add records id in a new generation and returns that generation, which
// the caller closes with a tombstone ping sent after the frame ending id.
func (t *tombstones) add(id wire.ID) uint64 {
	if t.set == nil {
		t.set = make(map[wire.ID]uint64)
	}
	t.gen++
	if len(t.order)-t.head >= t.limit {
		t.evictOldest()
	}
	if _, held := t.set[id]; !held {
		t.channel.add(id)
		t.acct.Charge(tombstoneCost)
	}
	t.set[id] = t.gen
	t.order = append(t.order, tombstone{id, t.gen})
	return t.gen
}

func (t *tombstones) evictOldest() {
	for t.head < len(t.order) {
		e := t.order[t.head]
		t.order[t.head] = tombstone{}
		t.head++
		if g, ok := t.set[e.id]; ok && g == e.gen {
			t.toGrace(e.id)
			break
		}
	}
	t.compact()
}

// pong clears every ID of generation gen and older.
func (t *tombstones) pong(gen uint64) {
	for t.head < len(t.order) && t.order[t.head].gen <= gen {
		e := t.order[t.head]
		t.order[t.head] = tombstone{}
		t.head++
		if g, ok := t.set[e.id]; ok && g == e.gen {
			t.toGrace(e.id)
		}
	}
	t.compact()
}

// toGrace moves a cleared ID to the grace ring, pushing out the oldest.
func (t *tombstones) toGrace(id wire.ID) {
	t.set[id] = 0
	if len(t.grace) < graceCapacity {
		t.grace = append(t.grace, id)
		return
	}
	if old := t.grace[t.graceNext]; t.set[old] == 0 {
		delete(t.set, old)
		t.channel.remove(old)
		t.acct.Release(tombstoneCost)
	}
	t.grace[t.graceNext] = id
	t.graceNext = (t.graceNext + 1) % graceCapacity
}

// forget drops every ID, for a member that has left.
func (t *tombstones) forget() {
	for id := range t.set {
		t.channel.remove(id)
	}
	t.acct.Release(int64(len(t.set)) * tombstoneCost)
	t.set, t.order, t.head, t.grace, t.graceNext = nil, nil, 0, nil, 0
}

// endedIDs counts, for each request ID, the members of a channel holding
// it as a tombstone. A nil *endedIDs (a tombstones of no channel's, in
// tests) counts nothing.
type endedIDs map[wire.ID]int32

func (e *endedIDs) has(id wire.ID) bool {
	_, ok := (*e)[id]
	return ok
}

func (e *endedIDs) add(id wire.ID) {
	if e == nil {
		return
	}
	if *e == nil {
		*e = make(endedIDs)
	}
	(*e)[id]++
}

func (e *endedIDs) remove(id wire.ID) {
	if e == nil {
		return
	}
	switch n := (*e)[id]; {
	case n == 0:
		return
	case n > 1:
		(*e)[id] = n - 1
	case len(*e) == 1:
		*e = nil // do not keep a burst's worth of buckets
	default:
		delete(*e, id)
	}
}

// compact reclaims the cleared front of order once it is half the slice.
func (t *tombstones) compact() {
	if t.head == len(t.order) {
		t.order, t.head = t.order[:0], 0
		if cap(t.order) > t.limit {
			t.order = nil // do not keep a burst's worth of memory
		}
		return
	}
	if t.head > len(t.order)/2 {
		n := copy(t.order, t.order[t.head:])
		clear(t.order[n:])
		t.order, t.head = t.order[:n], 0
	}
}

// tombstoneLocked remembers that request id ended while m could still be
// sending frames for it, and follows what m has been sent so far with the
// ping that will clear it. Call it after sending m the frame that ends id.
func (ch *channel) tombstoneLocked(m *Member, id wire.ID) {
	// A remote sender drops frames for requests it does not have anyway
	// (remote.go), and its origin may offer a request it gave back again,
	// under the same ID.
	if m.gone || m.remote == RemoteSender {
		return
	}
	ch.send(m, tombstonePing(ch, m, m.ended.add(id)))
}

// Pong handles a pong from m's connection whose request ID carries a
// tombstone generation: m has read everything sent before that ping.
func (m *Member) Pong(gen uint64) {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	m.ended.pong(gen)
}
