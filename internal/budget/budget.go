// Package budget accounts for the memory a socketbus server holds for
// frames, against a ceiling that no client can push it past.
//
// Accounts form a tree: the server's root account holds the ceiling
// (server.Config.MaxMemory), each channel has a child with its share, and
// each connection a child of its channel's with its own share. A charge
// counts at every level up to the root.
//
// There are two kinds of charge. TryCharge is for memory the server may
// refuse to take on — a new request, a credit grant, a join — and fails
// when any level would pass its limit; at the root it leaves a reserve
// (an eighth of the ceiling) unused. Charge is for memory the server has
// to accept because a peer is entitled to send it or a frame must be
// written (a frame read off a socket, a control frame queued for a
// client); it always succeeds and may use the reserve. When the root's use
// rises past its high-water mark (the ceiling less half the reserve), the
// root calls its pressure hook, and the server cuts the connections that
// hold the most.
//
// Every method is safe for concurrent use, and a nil *Account is an
// unlimited account that counts nothing.
package budget

import "sync/atomic"

// Account is one node of the tree.
type Account struct {
	limit  int64 // 0 = no limit of its own
	parent *Account
	used   atomic.Int64

	// Root only.
	admit      int64  // TryCharge keeps the root at or under this
	highWater  int64  // above it, pressure is called
	onPressure func() // must not block
	onRelease  func() // must not block
	peak       atomic.Int64
}

// New returns a root account with the given ceiling in bytes (at least
// 1 MiB). onPressure, when non-nil, is called (from the charging goroutine;
// it must not block) whenever a charge leaves the root over its high-water
// mark.
func New(limit int64, onPressure func()) *Account {
	limit = max(limit, 1<<20)
	reserve := limit / 8
	return &Account{limit: limit, admit: limit - reserve, highWater: limit - reserve/2, onPressure: onPressure}
}

// Child returns an account under a with its own limit (0 = only its
// parent's limits apply).
func (a *Account) Child(limit int64) *Account {
	if a == nil {
		return nil
	}
	return &Account{limit: max(limit, 0), parent: a}
}

// Limit returns the account's own limit (0 for none).
func (a *Account) Limit() int64 {
	if a == nil {
		return 0
	}
	return a.limit
}

// Used returns the bytes charged to the account and its children.
func (a *Account) Used() int64 {
	if a == nil {
		return 0
	}
	return a.used.Load()
}

// Peak returns the most the root has held at once.
func (a *Account) Peak() int64 {
	if a == nil {
		return 0
	}
	return a.root().peak.Load()
}

func (a *Account) root() *Account {
	for a.parent != nil {
		a = a.parent
	}
	return a
}

// TryCharge charges n bytes if every level up to the root stays within its
// limit (the root within its limit less the reserve), and reports whether
// it did.
func (a *Account) TryCharge(n int64) bool {
	if a == nil || n <= 0 {
		return true
	}
	for x := a; x != nil; x = x.parent {
		limit := x.limit
		if x.parent == nil {
			limit = x.admit
		}
		if !x.tryAdd(n, limit) {
			for y := a; y != x; y = y.parent {
				y.used.Add(-n)
			}
			return false
		}
	}
	a.root().charged()
	return true
}

func (x *Account) tryAdd(n, limit int64) bool {
	for {
		old := x.used.Load()
		if limit > 0 && old+n > limit {
			return false
		}
		if x.used.CompareAndSwap(old, old+n) {
			return true
		}
	}
}

// HalfFree reports whether every level up to the root has at least half
// of its limit free (a level without a limit counts as free): room for
// memory a stream could do without, such as a window beyond the
// protocol's implicit one, that leaves as much again for what must not be
// refused.
func (a *Account) HalfFree() bool {
	for x := a; x != nil; x = x.parent {
		if x.limit > 0 && x.used.Load() > x.limit/2 {
			return false
		}
	}
	return true
}

// Charge charges n bytes whatever the limits.
func (a *Account) Charge(n int64) {
	if a == nil || n <= 0 {
		return
	}
	for x := a; x != nil; x = x.parent {
		x.used.Add(n)
	}
	a.root().charged()
}

// charged records the root's peak and calls the pressure hook when the
// root is over its high-water mark.
func (r *Account) charged() {
	u := r.used.Load()
	for {
		p := r.peak.Load()
		if u <= p || r.peak.CompareAndSwap(p, u) {
			break
		}
	}
	if u > r.highWater && r.onPressure != nil {
		r.onPressure()
	}
}

// OnRelease sets a hook on a's root that every Release calls afterwards
// (it must not block). Set it before the account is shared.
func (a *Account) OnRelease(f func()) {
	if a != nil {
		a.root().onRelease = f
	}
}

// Release returns n bytes charged earlier.
func (a *Account) Release(n int64) {
	if a == nil || n <= 0 {
		return
	}
	x := a
	for ; x.parent != nil; x = x.parent {
		x.used.Add(-n)
	}
	x.used.Add(-n)
	if x.onRelease != nil {
		x.onRelease()
	}
}

// Over reports whether the root is over its high-water mark.
func (a *Account) Over() bool {
	if a == nil {
		return false
	}
	r := a.root()
	return r.used.Load() > r.highWater
}
