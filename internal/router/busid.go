package router

import (
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// Client IDs on a bus (package cluster, docs/PROTOCOL.md section 21.5). A
// client ID is unique across the nodes of a bus, not per node: before a
// node acknowledges a join, it asks every other live node whether the ID
// is theirs, telling them the hash of the key the client registered
// (KeyHash), never the key. A node answers from what its router holds
// (Claimed): a member with the ID connected here, or the key of one that
// left within KeyMemory, which the joining client must match. The member
// on the joining node is joining meanwhile; the node then admits it
// (Admit) or refuses the join and removes it (LeaveRefused).

// KeyHashSize is the length of a key's hash (KeyHash).
const KeyHashSize = sha256.Size

// KeyHash returns what another node is told of a client key: its SHA-256
// hash, or nil for no key.
func KeyHash(key []byte) []byte {
	if key == nil {
		return nil
	}
	sum := sha256.Sum256(key)
	return sum[:]
}

// Claim is what a router holds of a client ID another node is admitting.
type Claim uint8

// The answers of Claimed.
const (
	// ClaimFree: no member here has the ID, and any key remembered for
	// it is the joining client's.
	ClaimFree Claim = iota
	// ClaimJoining: a member here has the ID and its join waits for the
	// bus, as the other node's does: the two joins race.
	ClaimJoining
	// ClaimHeld: a member here has the ID and the bus admitted it, or one
	// that left within KeyMemory registered a key the joining client's
	// does not match.
	ClaimHeld
)

// busState is where a member's client ID stands on the bus.
type busState uint8

const (
	busJoining  busState = iota // its join waits for the other nodes
	busAdmitted                 // the other nodes admitted it (or there are none)
	busYielded                  // it lost a race for its ID to another node's join
)

// Claimed reports what this router holds of client on channel, for a
// join on another node whose client registered a key hashing to keyHash
// (nil: none), and the member that has it, if any. Remote members are
// never a client's.
//
// A claim whose hash matches the key of the member connected here is the
// member's own client, which moves to another node while this connection
// lingers (a drain notice, PROTOCOL.md section 17, or a connection lost
// that this node has not yet seen end): it is free. Only a key proves
// that: a member that registered none holds its ID while it is connected,
// unless this router is draining (Refuse): its server has sent its drain
// notice, its members' clients move to other nodes while their
// connections here end, and none of them holds its ID against the bus
// any more (PROTOCOL.md section 17, "Moving on a drain notice").
func (r *Router) Claimed(channel, client wire.ID, keyHash []byte) (Claim, *Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed.Load() {
		return ClaimFree, nil
	}
	if ch := r.channels[channel]; ch != nil {
		ch.mu.Lock()
		m := ch.members[client]
		state := busAdmitted
		if m != nil {
			state = m.busState
		}
		ch.mu.Unlock()
		if m != nil && m.remote == 0 {
			switch {
			case m.key != nil && sameKey(keyHash, m.key):
				return ClaimFree, m
			case state == busAdmitted:
				return ClaimHeld, m
			}
			return ClaimJoining, m
		}
	}
	kept, ok := r.keys.kept[memberKey{channel, client}]
	if !ok || time.Now().After(kept.expires) || sameKey(keyHash, &kept.key) {
		return ClaimFree, nil
	}
	return ClaimHeld, nil
}

// sameKey reports, in constant time, whether keyHash is key's hash.
func sameKey(keyHash []byte, key *[KeySize]byte) bool {
	sum := sha256.Sum256(key[:])
	return len(keyHash) == KeyHashSize && subtle.ConstantTimeCompare(keyHash, sum[:]) == 1
}

// KeyHash returns the hash of the key the member's client registered
// (KeyHash), or nil.
func (m *Member) KeyHash() []byte {
	if m.key == nil {
		return nil
	}
	return KeyHash(m.key[:])
}

// Admit records that the bus admitted the member's client ID: another
// node's join with it is refused from now on. It reports false, and
// admits nothing, if the member yielded its ID (Yield) or has left.
func (m *Member) Admit() bool {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	if m.gone || m.busState == busYielded {
		return false
	}
	m.busState = busAdmitted
	return true
}

// Yield records that the member, still joining, lost the race for its
// client ID to another node's join: Admit will refuse it.
func (m *Member) Yield() {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	if m.busState == busJoining {
		m.busState = busYielded
	}
}

// Yielded reports whether the member yielded its client ID (Yield).
func (m *Member) Yielded() bool {
	m.ch.mu.Lock()
	defer m.ch.mu.Unlock()
	return m.busState == busYielded
}

// LeaveRefused removes a member whose join the bus refused. Unlike Leave,
// it does not remember the member's key: the ID was not its client's to
// take, and the key must not lock the ID's owner out of this node.
func (m *Member) LeaveRefused() {
	m.r.mu.Lock()
	m.key = nil
	m.r.mu.Unlock()
	m.Leave()
}
