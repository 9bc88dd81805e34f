package cluster

import (
	"sync"
	"time"
)

// warnEvery is the shortest time between two warnings of one kind: what
// another node or a client can cause at will (a request refused across
// nodes, a duplicate name, a flood) must not flood the log. A warning held
// back is counted, and the next one of its kind says how many were.
const warnEvery = time.Second

// warnLimiter holds back warnings of a kind that came within warnEvery
// of the last one logged.
type warnLimiter struct {
	mu    sync.Mutex
	kinds map[string]*warnKind
}

type warnKind struct {
	last       time.Time
	suppressed int
}

// allow reports whether a warning of kind may be logged now and, if so,
// how many of that kind were held back since the last one.
func (l *warnLimiter) allow(kind string) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.kinds == nil {
		l.kinds = map[string]*warnKind{}
	}
	k := l.kinds[kind]
	if k == nil {
		if len(l.kinds) >= 64 {
			clear(l.kinds) // kinds are a handful; this only bounds a bug
		}
		k = &warnKind{}
		l.kinds[kind] = k
	}
	now := time.Now()
	if !k.last.IsZero() && now.Sub(k.last) < warnEvery {
		k.suppressed++
		return false, 0
	}
	k.last, suppressed, k.suppressed = now, k.suppressed, 0
	return true, suppressed
}

// warnLimitedf logs a warning of kind unless one of that kind was logged
// within warnEvery.
func (c *Cluster) warnLimitedf(kind, format string, args ...any) {
	if c.cfg.Logger == nil {
		return
	}
	ok, suppressed := c.warns.allow(kind)
	if !ok {
		return
	}
	if suppressed > 0 {
		format += " (%d more like it not logged)"
		args = append(args, suppressed)
	}
	c.warnf(format, args...)
}
