package cluster

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Membership: every node publishes "<name> <incarnation>" on the bus's node
// subject every Heartbeat, and at once when it joins or another node says
// hello; a node is counted while it was heard from (there or on its link)
// within three heartbeats. Nothing is stored in NATS: the count is each
// node's own view, and it settles within one round trip of a join (the
// hello) and three heartbeats of a death. The incarnation, fixed when the
// node starts, tells a restarted node from the one it replaces: the
// requests the old one was part of end with peer_gone at once.

func (c *Cluster) nodeSubject() string  { return "socketbus." + c.cfg.Name + ".node" }
func (c *Cluster) helloSubject() string { return "socketbus." + c.cfg.Name + ".hello" }

// announcement is "<name> <incarnation>", and " <host:port>" after them
// when the node takes direct connections (direct.go).
func (c *Cluster) announcement() []byte {
	if addr := c.cfg.direct.announce; addr != "" && c.directAddr != "" {
		return []byte(c.cfg.Node + " " + c.incarnation + " " + addr)
	}
	if c.directAddr != "" {
		return []byte(c.cfg.Node + " " + c.incarnation + " " + c.directAddr)
	}
	return []byte(c.cfg.Node + " " + c.incarnation)
}

// joinBus subscribes to the other nodes' announcements, says hello, and
// starts the heartbeat.
func (c *Cluster) joinBus() error {
	sub, err := c.nc.Subscribe(c.nodeSubject(), func(m *nats.Msg) { c.heard(string(m.Data)) })
	if err != nil {
		close(c.done)
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	limitPending(sub, smallPendingMsgs, smallPendingBytes)
	if sub, err = c.nc.Subscribe(c.helloSubject(), func(m *nats.Msg) {
		name, _, _ := strings.Cut(string(m.Data), " ")
		if name != c.cfg.Node {
			c.heard(string(m.Data))
			c.wantFullState(name)
			_ = c.nc.Publish(c.nodeSubject(), c.announcement())
		}
	}); err != nil {
		close(c.done)
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	limitPending(sub, smallPendingMsgs, smallPendingBytes)
	if err := c.nc.Flush(); err != nil {
		close(c.done)
		return fmt.Errorf("cluster: flush: %w", err)
	}
	_ = c.nc.Publish(c.helloSubject(), c.announcement())
	go c.heartbeat()
	return nil
}

func (c *Cluster) heartbeat() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		_ = c.nc.Publish(c.nodeSubject(), c.announcement())
		c.tick()
		select {
		case <-t.C:
			c.expire()
		case <-c.stop:
			return
		}
	}
}

// heard records an announcement ("<name> <incarnation>") from a node.
func (c *Cluster) heard(announcement string) {
	name, inc, _ := strings.Cut(announcement, " ")
	inc, addr, _ := strings.Cut(inc, " ")
	if name == c.cfg.Node && inc != "" && inc != c.incarnation {
		// Its claim and ours crossed before NATS routed them to each
		// other (names.go): nothing decides now but the operator.
		c.warnLimitedf("name", "cluster: another node (incarnation %s) announces this node's name: two nodes share it", inc)
	}
	if f := c.testHeard.Load(); f != nil {
		defer (*f)(name)
	}
	if name == c.cfg.Node || name == "" || strings.ContainsAny(name, ".*> \t\r\n") {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodes[name]
	if n != nil && inc != "" && n.incarnation != "" && n.incarnation != inc {
		// The node restarted: whatever its last run was part of is over.
		c.dropNodeLocked(n, "the node restarted")
		n = nil
	}
	if n == nil {
		if c.departedLocked(name, inc) || !c.admitNodeLocked(name) {
			return
		}
		n = c.addNodeLocked(name)
	}
	if inc != "" {
		n.incarnation = inc
	}
	n.heard = time.Now()
	if addr != "" && len(addr) <= 256 {
		if _, _, err := net.SplitHostPort(addr); err == nil {
			n.directAddr = addr
		}
	}
	c.maybeDialLocked(n)
	c.recountLocked()
}

// expire forgets nodes not heard from within three heartbeats — or ten,
// while this node has messages waiting that it has not handled yet: then
// it is the one behind, and the heartbeats it has not seen may be among
// them.
func (c *Cluster) expire() {
	limit := c.deadAfter()
	c.mu.Lock()
	sub := c.sub
	c.mu.Unlock()
	if sub != nil {
		if msgs, _, err := sub.Pending(); err == nil && msgs > 0 {
			limit = max(limit, 10*c.cfg.Heartbeat)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expireDepartedLocked()
	for _, n := range c.nodes {
		if time.Since(n.heard) > limit {
			c.dropNodeLocked(n, "the node was not heard from for "+limit.String())
		}
	}
	c.recountLocked()
}

func (c *Cluster) recountLocked() {
	if n := 1 + len(c.nodes); n != c.count {
		c.count = n
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// Nodes returns how many nodes of the bus this node sees, itself included.
func (c *Cluster) Nodes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// WaitNodes waits until this node sees exactly n nodes, or ctx ends.
func (c *Cluster) WaitNodes(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, changed := c.count, c.changed
		c.mu.Unlock()
		if got == n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("cluster: %d nodes seen, waiting for %d: %w", got, n, ctx.Err())
		}
	}
}
