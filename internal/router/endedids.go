package router

import "github.com/socketbus/socketbus/internal/wire"

// endedIDs counts, for each request ID, the members of a channel holding
// it as a tombstone (tombstones.go).
type endedIDs struct {
	n    map[wire.ID]int32
	peak int // len(n) at its largest since it was made
}

func (e *endedIDs) has(id wire.ID) bool {
	_, ok := e.n[id]
	return ok
}

func (e *endedIDs) add(id wire.ID) {
	if e.n == nil {
		e.n = make(map[wire.ID]int32)
	}
	e.n[id]++
	e.peak = max(e.peak, len(e.n))
}

func (e *endedIDs) remove(id wire.ID) {
	switch c := e.n[id]; {
	case c == 0:
		return
	case c > 1:
		e.n[id] = c - 1
		return
	}
	delete(e.n, id)
	if n, remade := remadeSmaller(e.n, e.peak); remade {
		e.n, e.peak = n, len(n)
	}
}

// shrinkFloor is the peak below which a shrinking map is kept as it is
// until it is empty.
const shrinkFloor = 64

// remadeSmaller returns m made anew, and true, once it is down to a
// quarter of peak, its size at its largest (a Go map keeps that size
// however few it holds): nil when it is empty, and kept until then when
// its peak is under shrinkFloor.
func remadeSmaller[V any](m map[wire.ID]V, peak int) (map[wire.ID]V, bool) {
	n := len(m)
	switch {
	case n == 0:
		return nil, true
	case n > peak/4 || peak < shrinkFloor:
		return m, false
	}
	small := make(map[wire.ID]V, n)
	for k, v := range m {
		small[k] = v
	}
	return small, true
}
