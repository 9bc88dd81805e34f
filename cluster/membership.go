package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
)

// Membership: every node publishes its name on the bus's node subject
// every Heartbeat, and at once when it joins or another node says hello;
// a node is counted while it was heard from within three heartbeats.
// Nothing is stored in NATS: the count is each node's own view, and it
// settles within one round trip of a join (the hello) and three
// heartbeats of a death.

func (c *Cluster) nodeSubject() string  { return "socketbus." + c.cfg.Name + ".node" }
func (c *Cluster) helloSubject() string { return "socketbus." + c.cfg.Name + ".hello" }

// joinBus subscribes to the other nodes' announcements, says hello, and
// starts the heartbeat.
func (c *Cluster) joinBus() error {
	if _, err := c.nc.Subscribe(c.nodeSubject(), func(m *nats.Msg) { c.heard(string(m.Data)) }); err != nil {
		close(c.done)
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	if _, err := c.nc.Subscribe(c.helloSubject(), func(m *nats.Msg) {
		if string(m.Data) != c.cfg.Node {
			c.heard(string(m.Data))
			_ = c.nc.Publish(c.nodeSubject(), []byte(c.cfg.Node))
		}
	}); err != nil {
		close(c.done)
		return fmt.Errorf("cluster: subscribe: %w", err)
	}
	if err := c.nc.Flush(); err != nil {
		close(c.done)
		return fmt.Errorf("cluster: flush: %w", err)
	}
	_ = c.nc.Publish(c.helloSubject(), []byte(c.cfg.Node))
	go c.heartbeat()
	return nil
}

func (c *Cluster) heartbeat() {
	defer close(c.done)
	t := time.NewTicker(c.cfg.Heartbeat)
	defer t.Stop()
	for {
		_ = c.nc.Publish(c.nodeSubject(), []byte(c.cfg.Node))
		select {
		case <-t.C:
			c.expire()
		case <-c.stop:
			return
		}
	}
}

// heard records an announcement from node.
func (c *Cluster) heard(node string) {
	if node == c.cfg.Node || node == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[node] = time.Now()
	c.recountLocked()
}

// expire forgets nodes not heard from within three heartbeats.
func (c *Cluster) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for node, at := range c.seen {
		if time.Since(at) > 3*c.cfg.Heartbeat {
			delete(c.seen, node)
		}
	}
	c.recountLocked()
}

func (c *Cluster) recountLocked() {
	if n := 1 + len(c.seen); n != c.nodes {
		c.nodes = n
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

// Nodes returns how many nodes of the bus this node sees, itself included.
func (c *Cluster) Nodes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes
}

// WaitNodes waits until this node sees exactly n nodes, or ctx ends.
func (c *Cluster) WaitNodes(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		got, changed := c.nodes, c.changed
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
