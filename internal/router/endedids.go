package router

import "github.com/socketbus/socketbus/internal/wire"

// endedIDs counts, for each request ID, the members of a channel holding
// it as a tombstone (tombstones.go). A nil *endedIDs (the tombstones of no
// channel, in tests) counts nothing.
type endedIDs struct {
	n    map[wire.ID]int32
	peak int // len(n) at its largest since it was made
}

func (e *endedIDs) has(id wire.ID) bool {
	_, ok := e.n[id]
	return ok
}

func (e *endedIDs) add(id wire.ID) {
	if e == nil {
		return
	}
	if e.n == nil {
		e.n = make(map[wire.ID]int32)
	}
	e.n[id]++
	e.peak = max(e.peak, len(e.n))
}

func (e *endedIDs) remove(id wire.ID) {
	if e == nil {
		return
	}
	switch c := e.n[id]; {
	case c == 0:
		return
	case c > 1:
		e.n[id] = c - 1
		return
	}
	delete(e.n, id)
	// A Go map keeps its largest size: make it anew at a quarter of it.
	if n := len(e.n); n == 0 || e.peak >= shrinkFloor && n <= e.peak/4 {
		m := make(map[wire.ID]int32, n)
		for k, v := range e.n {
			m[k] = v
		}
		if n == 0 {
			m = nil
		}
		e.n, e.peak = m, n
	}
}
