package router

import (
	"crypto/subtle"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// Client keys (docs/PROTOCOL.md section 7). A client may register a
// secret key of its own making with its join; while the server remembers
// that client ID on that channel — as long as it is connected, and for
// KeyMemory after it leaves — a join with the ID must present the same
// key, so that another member, who learns the ID from Request.From, cannot
// take the ID over when the client's connection drops and lock it out of
// its own reconnect. A client that registers no key is not protected, as
// before keys: any join with a free ID is admitted.

// KeySize is the length of a client key.
const KeySize = 16

// KeyMemory is how long the server remembers a departed client's key:
// longer than a client's reconnect attempts last by default (about two
// minutes).
const KeyMemory = 10 * time.Minute

// maxKeys bounds the departed clients' keys remembered; past it the
// oldest is forgotten first. Each costs about 130 bytes (its map entry and
// at most two places in the order), so the table holds at most about
// 8 MiB. It is not charged to the memory budget, which counts what the
// server holds for frames and returns to zero when the clients are gone.
const maxKeys = 1 << 16

type memberKey struct{ channel, client wire.ID }

type keptKey struct {
	key     [KeySize]byte
	expires time.Time
	seq     uint64 // its place in keyring.order
}

type keyPlace struct {
	k   memberKey
	seq uint64
}

// keyring holds the keys of departed clients, guarded by Router.mu.
type keyring struct {
	kept  map[memberKey]keptKey
	order []keyPlace // where each was kept, oldest first; stale places are skipped
	seq   uint64
}

// admitKeyLocked checks a join of client on channel with key (nil: none)
// against a remembered key, and forgets the one it admits: the member now
// holds it.
func (r *Router) admitKeyLocked(channel, client wire.ID, key []byte, now time.Time) error {
	k := memberKey{channel, client}
	kept, ok := r.keys.kept[k]
	if !ok {
		return nil
	}
	if now.After(kept.expires) {
		r.forgetKeyLocked(k)
		return nil
	}
	if len(key) != KeySize || subtle.ConstantTimeCompare(key, kept.key[:]) != 1 {
		return wire.Errorf(wire.CodeConflict, "client ID %x belongs to a client that left this channel within %s and registered a key; only it may join with this ID", client, KeyMemory)
	}
	r.forgetKeyLocked(k)
	return nil
}

// keepKeyLocked remembers the key of m, which is leaving, for KeyMemory.
func (r *Router) keepKeyLocked(m *Member, now time.Time) {
	if m.key == nil {
		return
	}
	if r.keys.kept == nil {
		r.keys.kept = make(map[memberKey]keptKey)
	}
	// Forget what has expired at the front, and the oldest while full.
	for len(r.keys.order) > 0 {
		front := r.keys.order[0]
		kept, ok := r.keys.kept[front.k]
		live := ok && kept.seq == front.seq
		if live && !now.After(kept.expires) && len(r.keys.kept) < maxKeys {
			break
		}
		r.keys.order = r.keys.order[1:]
		if live {
			r.forgetKeyLocked(front.k)
		}
	}
	k := memberKey{m.ch.id, m.id}
	r.keys.seq++
	r.keys.kept[k] = keptKey{key: *m.key, expires: now.Add(KeyMemory), seq: r.keys.seq}
	r.keys.order = append(r.keys.order, keyPlace{k, r.keys.seq})
	if len(r.keys.order) > 2*maxKeys {
		// Mostly stale places (keys admitted or kept again): keep the
		// live ones, in order.
		live := make([]keyPlace, 0, len(r.keys.kept))
		for _, p := range r.keys.order {
			if kept, ok := r.keys.kept[p.k]; ok && kept.seq == p.seq {
				live = append(live, p)
			}
		}
		r.keys.order = live
	}
}

func (r *Router) forgetKeyLocked(k memberKey) { delete(r.keys.kept, k) }
