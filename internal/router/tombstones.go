package router

import (
	"encoding/binary"
	"time"

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
// follow, and they move from the set to the grace queue, for clients less
// careful than the protocol asks: there they stay for graceTTL, and at most
// the last graceCapacity of them. A client that never answers pings keeps
// at most limit IDs waiting; beyond that the oldest go to the grace queue
// too.
//
// While a member holds an ID here, in either state, the ID is in use on
// its channel (channel.ended counts the holders): a request started under
// it again is refused, so that the member is never handed a new request
// under an ID it may still send frames for.
//
// The set's size at its largest since it was last made anew costs the
// member's account tombstoneCost an ID, whatever the limits (a refused
// start must leave one): a client that piles up ended requests and never
// answers pings is the heaviest connection to cut when memory runs short.
// A set down to a quarter of that is made anew and the rest given back,
// and an honest connection's grace queue drains within graceTTL.
type tombstones struct {
	channel *endedIDs          // the channel's count of holders, kept with set
	acct    *budget.Account    // the member's, charged setPeak × tombstoneCost
	set     map[wire.ID]uint64 // ID -> the generation whose pong clears it, inGrace|that generation once cleared
	setPeak int                // len(set) at its largest since it was made
	order   []tombstone        // waiting IDs, oldest first; generations ascend
	head    int                // order[:head] are cleared
	gen     uint64             // the newest generation opened
	limit   int

	grace      []graceEntry // cleared IDs still dropped quietly, oldest first
	graceHead  int          // grace[:graceHead] are forgotten
	graceTimer *time.Timer  // armed while grace has IDs (armGraceLocked)
}

// inGrace marks a set value as cleared: the generation it was added in,
// now in the grace queue (generations count from 1 and never reach it).
const inGrace = 1 << 63

// graceCapacity is how many IDs cleared by a pong are still remembered.
const graceCapacity = 1024

// graceTTL is how long an ID cleared by a pong is still remembered: a
// careless client's late frames follow its read of the end closely, and a
// long-lived connection that has seen many requests cancelled does not
// keep (and pay for) graceCapacity IDs for the rest of its life.
const graceTTL = 10 * time.Second

// tombstoneCost is what one ID held costs in memory: its entries in the
// set, the order and the grace queue, and in the channel's count of
// holders. Measured at 97 to 125 bytes per ID (heap in use after a GC),
// with 100 to 2,048 IDs held by each of 200 members of one channel,
// waiting for their pong or in grace; rounded up.
const tombstoneCost = 128

type tombstone struct {
	id  wire.ID
	gen uint64
}

// graceEntry is an ID in the grace queue, the generation it was added in,
// and when its pong cleared it (as time since the router's epoch). An ID
// cleared, added again and cleared again has two entries; the set holds
// the later one's generation.
type graceEntry struct {
	id  wire.ID
	gen uint64
	at  time.Duration
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
// now is the time since the router's epoch.
func (t *tombstones) add(id wire.ID, now time.Duration) uint64 {
	if t.set == nil {
		t.set = make(map[wire.ID]uint64)
	}
	t.gen++
	if len(t.order)-t.head >= t.limit {
		t.evictOldest(now)
	}
	if _, held := t.set[id]; !held {
		t.channel.add(id)
	}
	t.set[id] = t.gen
	if n := len(t.set); n > t.setPeak {
		t.acct.Charge(int64(n-t.setPeak) * tombstoneCost)
		t.setPeak = n
	}
	t.order = append(t.order, tombstone{id, t.gen})
	return t.gen
}

func (t *tombstones) evictOldest(now time.Duration) {
	for t.head < len(t.order) {
		e := t.order[t.head]
		t.order[t.head] = tombstone{}
		t.head++
		if g, ok := t.set[e.id]; ok && g == e.gen {
			t.toGrace(e, now)
			break
		}
	}
	t.compact()
}

// pong clears every ID of generation gen and older.
func (t *tombstones) pong(gen uint64, now time.Duration) {
	for t.head < len(t.order) && t.order[t.head].gen <= gen {
		e := t.order[t.head]
		t.order[t.head] = tombstone{}
		t.head++
		if g, ok := t.set[e.id]; ok && g == e.gen {
			t.toGrace(e, now)
		}
	}
	t.compact()
}

// toGrace moves a cleared ID to the grace queue, pushing out the oldest
// past graceCapacity.
func (t *tombstones) toGrace(e tombstone, now time.Duration) {
	t.set[e.id] = inGrace | e.gen
	if len(t.grace)-t.graceHead >= graceCapacity {
		t.dropGrace()
	}
	t.grace = append(t.grace, graceEntry{e.id, e.gen, now})
}

// expireGrace forgets the IDs cleared at or before cutoff.
func (t *tombstones) expireGrace(cutoff time.Duration) {
	for t.graceHead < len(t.grace) && t.grace[t.graceHead].at <= cutoff {
		t.dropGrace()
	}
}

// dropGrace forgets the oldest ID in the grace queue, unless it has been
// added again since: it waits for a pong then, or is later in the queue.
func (t *tombstones) dropGrace() {
	e := t.grace[t.graceHead]
	t.grace[t.graceHead] = graceEntry{}
	t.graceHead++
	if g, ok := t.set[e.id]; ok && g == inGrace|e.gen {
		delete(t.set, e.id)
		t.channel.remove(e.id)
		if set, remade := remadeSmaller(t.set, t.setPeak); remade {
			t.acct.Release(int64(t.setPeak-len(set)) * tombstoneCost)
			t.set, t.setPeak = set, len(set)
		}
	}
	switch {
	case t.graceHead == len(t.grace):
		t.grace, t.graceHead = nil, 0 // an idle member keeps nothing
	case t.graceHead > len(t.grace)/2:
		n := copy(t.grace, t.grace[t.graceHead:])
		clear(t.grace[n:])
		t.grace, t.graceHead = t.grace[:n], 0
	}
}

// forget drops every ID, for a member that has left.
func (t *tombstones) forget() {
	for id := range t.set {
		t.channel.remove(id)
	}
	t.acct.Release(int64(t.setPeak) * tombstoneCost)
	if t.graceTimer != nil {
		t.graceTimer.Stop()
	}
	*t = tombstones{channel: t.channel, acct: t.acct, limit: t.limit}
}

// compact reclaims the cleared front of order once it is half the slice.
func (t *tombstones) compact() {
	if t.head == len(t.order) {
		t.order, t.head = nil, 0 // an idle member keeps nothing
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
	ch.send(m, tombstonePing(ch, m, m.ended.add(id, ch.r.sinceEpoch())))
	m.armGraceLocked() // the add may have pushed an ID to grace
}

// Pong handles a pong from m's connection whose request ID carries a
// tombstone generation: m has read everything sent before that ping.
func (m *Member) Pong(gen uint64) {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	m.ended.pong(gen, m.r.sinceEpoch())
	m.armGraceLocked()
}

// armGraceLocked arms m's timer for the oldest ID in its grace queue, if
// it has one and no timer is armed.
func (m *Member) armGraceLocked() {
	t := &m.ended
	if m.gone || t.graceTimer != nil || t.graceHead == len(t.grace) {
		return
	}
	wait := t.grace[t.graceHead].at + graceTTL - m.r.sinceEpoch()
	t.graceTimer = time.AfterFunc(max(wait, 0), m.expireGrace)
}

// expireGrace forgets the IDs in m's grace queue older than graceTTL, and
// arms the timer again for the rest.
func (m *Member) expireGrace() {
	ch := m.ch
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if m.gone {
		return
	}
	m.ended.graceTimer = nil
	m.ended.expireGrace(m.r.sinceEpoch() - graceTTL)
	m.armGraceLocked()
}
