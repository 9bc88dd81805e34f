package cluster

import (
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Which nodes a join waits for (docs/PROTOCOL.md section 21.5). A join is
// acknowledged to its client once every node the bus believes alive has
// applied it; a node it cannot hear from must not hold it. A node is
// waited for while all of these hold:
//
//   - it was heard from (any message, or its announcement) within
//     silentAfter: every node sends a heartbeat on every link each
//     Heartbeat, so a live one is never silent that long;
//   - it has acknowledged a state of this node's before, or it was first
//     heard within silentAfter: a node that never answers (a forged
//     announcement, a node whose Server never started) is not waited for
//     past that;
//   - in embedded mode, this node's nats-server has a route to that node's
//     nats-server: a node whose process died took its routes with it, and
//     NATS sees them close at once, long before three heartbeats pass.
//
// The wait checks the rule every joinCheck and ends at joinAckTimeout in
// any case.

// silentAfter is how long a node may go unheard and still hold joins:
// half the time after which it is dropped, 1.5 heartbeats by default.
func (c *Cluster) silentAfter() time.Duration { return c.deadAfter() / 2 }

// joinCheck is how often a waiting join looks again at whom it waits for.
const joinCheck = 20 * time.Millisecond

// routedServers returns the names of the nats-servers this node's
// embedded one has a route to, or nil in external mode (where routes are
// NATS's business and not this node's to see).
func (c *Cluster) routedServers() map[string]bool {
	if c.ns == nil {
		return nil
	}
	rz, err := c.ns.Routez(&server.RoutezOptions{})
	if err != nil {
		return nil
	}
	names := make(map[string]bool, len(rz.Routes))
	for _, r := range rz.Routes {
		names[r.RemoteName] = true
	}
	return names
}

// serverName is the embedded nats-server's name for a node's incarnation.
func serverName(bus, node, incarnation string) string {
	return bus + "-" + node + "-" + incarnation
}

// awaitedLocked reports whether a join waits for n now (the rule above).
// routes is routedServers' answer.
func (c *Cluster) awaitedLocked(n *peerNode, now time.Time, routes map[string]bool) bool {
	if n.dropped || now.Sub(n.heard) > c.silentAfter() {
		return false
	}
	if !n.acked && now.Sub(n.since) > c.silentAfter() {
		return false
	}
	if routes != nil && n.incarnation != "" && !routes[serverName(c.cfg.Name, n.name, n.incarnation)] {
		return false // (a node heard only on its link so far has no known incarnation yet)
	}
	return true
}
