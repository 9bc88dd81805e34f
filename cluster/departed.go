package cluster

import "time"

// A node that said bye is remembered for deadAfter (its incarnation), so
// that what it sent before the bye and that comes after it — a state
// message queued behind the bye, or an announcement that took NATS while
// the bye took a direct connection — does not bring it back: a node
// brought back that way would count for deadAfter, and joins would be
// sent to it. A new incarnation of the same name (a restart) is a new
// node, and clears the memory.

// departedNode is a node that said bye.
type departedNode struct {
	incarnation string
	until       time.Time
}

// departLocked remembers that n said bye.
func (c *Cluster) departLocked(n *peerNode) {
	if len(c.departed) >= maxNodes {
		return // bounded like the node table; then the old behaviour
	}
	c.departed[n.name] = departedNode{incarnation: n.incarnation, until: time.Now().Add(c.deadAfter())}
}

// departedLocked reports whether node name, in incarnation inc ("" for
// a link message, which names none), said bye lately; an announcement of
// another incarnation forgets the bye.
func (c *Cluster) departedLocked(name, inc string) bool {
	d, ok := c.departed[name]
	switch {
	case !ok:
		return false
	case time.Now().After(d.until) || inc != "" && inc != d.incarnation:
		delete(c.departed, name)
		return false
	}
	return true
}

// expireDepartedLocked forgets the byes older than deadAfter.
func (c *Cluster) expireDepartedLocked() {
	now := time.Now()
	for name, d := range c.departed {
		if now.After(d.until) {
			delete(c.departed, name)
		}
	}
}
