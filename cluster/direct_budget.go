package cluster

import (
	"bufio"

	"github.com/socketbus/socketbus/internal/budget"
)

// What a direct connection holds is charged to the node's cluster account
// (bounds.go), as other nodes and their channels are: its read buffer, the
// one message its reader holds at a time (up to maxDirectEnvelope), and its
// write queue's base bound; the steps the queue grows past its base are
// charged as it takes them, and released as it shrinks back
// (direct_writer.go). The charge is taken before the connection is given
// any of them — before the dial on the dialing side, once the hello checks
// out on the accepting side (which holds only fixed, small buffers until
// then) — and released when the connection closes. A node whose account
// cannot hold it keeps the link on NATS.

// directCost is what one direct connection is charged.
func (c *Cluster) directCost() int64 {
	return int64(directReadBuffer + maxDirectEnvelope + c.directQueueBound())
}

// chargeDirectLocked charges a connection to peer, or reports (logged,
// rate-limited) that the account cannot hold it.
func (c *Cluster) chargeDirectLocked(peer string) (*budget.Account, bool) {
	if !c.acct.TryCharge(c.directCost()) {
		c.warnLimitedf("direct", "cluster: no direct connection with %s: the memory budget's cluster share cannot hold its buffers (%d bytes); the link stays on NATS", peer, c.directCost())
		return nil, false
	}
	return c.acct, true
}

// refusedDirectLocked keeps n from being dialed again for a while, longer
// each time, after a charge that failed (direct_backoff.go).
func (c *Cluster) refusedDirectLocked(n *peerNode) {
	c.dialFailedLocked(n)
}

// setBuffers gives d what its charge pays for: its read buffer, and its
// write queue's bound. acct is released when d closes.
func (d *directConn) setBuffers(acct *budget.Account) {
	d.br = bufio.NewReaderSize(d.conn, directReadBuffer)
	d.wmu.Lock()
	d.acct, d.charged, d.bound = acct, d.c.directCost(), d.c.directQueueBound()
	d.base = d.bound
	closed := d.wclosed
	d.wmu.Unlock()
	if closed {
		d.releaseCharge()
	}
}

// releaseCharge releases d's charge, once.
func (d *directConn) releaseCharge() {
	d.wmu.Lock()
	acct, charged := d.acct, d.charged
	d.acct, d.charged = nil, 0
	d.wmu.Unlock()
	acct.Release(charged)
}
