package cluster

import (
	"github.com/nats-io/nats.go"

	"github.com/socketbus/socketbus/internal/budget"
)

// What a node keeps because of what arrives on its bus's NATS subjects is
// bounded, and charged to its Server's memory budget (SECURITY.md, "A bus
// of several nodes", has the formula):
//
//   - every other node it hears of costs nodeCost, every channel another
//     node's state names costs channelCost (the entry, and the remote
//     receiver that stands for that node there), both charged to the
//     node's cluster account, a share of MaxMemory (clusterShare); what
//     the account cannot hold is ignored, and logged (rate-limited);
//   - it hears of at most maxNodes other nodes, budget or not (before its
//     Server attaches, there is no budget);
//   - messages waiting for the node are bounded twice: in its embedded
//     nats-server (maxNATSPending; past it NATS cuts the node's connection
//     as a slow consumer, and the node reconnects) and in nats.go
//     (pendingMsgs and pendingBytes per subscription; past them nats.go
//     drops messages, which the link sees as a gap and resets). Neither is
//     charged: they are fixed amounts, in the formula.
const (
	nodeCost       = 16 << 10
	channelCost    = 3 << 10
	clusterShareOf = 8 // the cluster account is MaxMemory/clusterShareOf
	maxNodes       = 256

	maxNATSPending = 64 << 20
	pendingMsgs    = 1 << 16
	pendingBytes   = 64 << 20
	// The node, hello and name subjects carry a few bytes per node and
	// heartbeat: a flood there is cut short.
	smallPendingMsgs  = 4096
	smallPendingBytes = 1 << 20
)

// clusterAccount returns the account the node charges what it keeps for
// other nodes: a child of the router's memory budget (nil when the Server
// has no budget, which charges nothing).
func clusterAccount(root *budget.Account) *budget.Account {
	if root == nil {
		return nil
	}
	return root.Child(root.Limit() / clusterShareOf)
}

// admitNodeLocked charges a node that is about to be added, or reports
// that it cannot be: too many nodes, or the account is full.
func (c *Cluster) admitNodeLocked(name string) bool {
	if len(c.nodes) >= maxNodes || !c.acct.TryCharge(nodeCost) {
		c.warnLimitedf("nodes", "cluster: node %s ignored: %d nodes known, the most a node keeps is %d within its memory budget", name, len(c.nodes), maxNodes)
		return false
	}
	return true
}

// releaseNodeLocked releases what n was charged: itself and its channels.
func (c *Cluster) releaseNodeLocked(n *peerNode) {
	c.acct.Release(int64(nodeCost + channelCost*len(n.members)))
	clear(n.members)
}

// admitChannelLocked charges a channel n's state names for the first time.
func (c *Cluster) admitChannelLocked(n *peerNode) bool {
	if !c.acct.TryCharge(channelCost) {
		c.warnLimitedf("channels", "cluster: channels of node %s ignored: %d kept for it, the memory budget's cluster share is full", n.name, len(n.members))
		return false
	}
	return true
}

// limitPending sets a subscription's bounds on messages waiting for it.
func limitPending(sub *nats.Subscription, msgs, bytes int) {
	_ = sub.SetPendingLimits(msgs, bytes)
}

// natsErrors logs what nats.go reports asynchronously: a subscription
// that dropped messages (a flood, or the node behind), rate-limited.
func (c *Cluster) natsErrors(_ *nats.Conn, sub *nats.Subscription, err error) {
	subject := ""
	if sub != nil {
		subject = sub.Subject
	}
	c.warnLimitedf("nats", "cluster: NATS: %v (subject %q)", err, subject)
}
