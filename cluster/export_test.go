package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"
)

// Crash stops the node's embedded nats-server at once, as if the process
// had been killed: no bye reaches the other nodes, which find out from the
// missing heartbeats.
func (c *Cluster) Crash() {
	if c.ns != nil {
		c.ns.Shutdown()
	}
}

// ClientURL is the embedded nats-server's client URL.
func (c *Cluster) ClientURL() string { return c.ns.ClientURL() }

// Heard makes the node take announcement ("<node> <incarnation>") as if
// it had come on the bus's node subject: a phantom node, for tests.
func (c *Cluster) Heard(announcement string) { c.heard(announcement) }

// WithDeadAfter returns cfg with a node dropped after d of silence instead
// of three heartbeats.
func WithDeadAfter(cfg Config, d time.Duration) Config {
	cfg.deadAfter = d
	return cfg
}

// OnHeard makes the node call f with the name of every announcement it
// has handled (kept or ignored).
func (c *Cluster) OnHeard(f func(name string)) { c.testHeard.Store(&f) }

// RemoteChannels counts the channels the other nodes' states name, as the
// node keeps them.
func (c *Cluster) RemoteChannels() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := 0
	for _, n := range c.nodes {
		k += len(n.members)
	}
	return k
}

// Charged returns what the node's cluster account holds, and its limit.
func (c *Cluster) Charged() (used, limit int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.acct.Used(), c.acct.Limit()
}

// ClaimRaces counts the claims on a client ID that a join on this node
// was claiming at the same time.
func (c *Cluster) ClaimRaces() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.races
}

// directToLocked returns the node's live direct connection to peer, or
// nil; c.mu is held.
func (c *Cluster) directToLocked(peer string) *directConn {
	if n := c.nodes[peer]; n != nil {
		return n.direct.Load()
	}
	return nil
}

// CutDirect closes the node's direct connection to peer, if any, as a
// cut would: the link goes back to NATS until the next dial.
func (c *Cluster) CutDirect(peer string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.directToLocked(peer)
	if d == nil {
		return false
	}
	d.close()
	return true
}

// DirectKnobs are test settings of direct connections; zero fields keep
// the defaults.
type DirectKnobs struct {
	// Announce is announced in place of the listener's address.
	Announce string
	// Queue bounds each connection's write queue, in bytes.
	Queue int
	// WriteTimeout bounds each write of a connection's writer.
	WriteTimeout time.Duration
	// LoseMarkers is how many of the node's first markers are not
	// published, as if NATS had lost them.
	LoseMarkers int
	// LoseFullStates is how many of the node's first state messages with
	// a token (full states, and joins' states) are not published, as if
	// NATS had lost them.
	LoseFullStates int
	// Stall is how long a write may go unfinished before the queue stops
	// growing past its base.
	Stall time.Duration
}

// WithDirectKnobs returns cfg with k's settings for direct connections.
func WithDirectKnobs(cfg Config, k DirectKnobs) Config {
	cfg.direct = directKnobs{announce: k.Announce, queue: k.Queue, writeTimeout: k.WriteTimeout, loseMarkers: k.LoseMarkers, loseFullStates: k.LoseFullStates, stall: k.Stall}
	return cfg
}

// DirectAddr is where the node listens for direct connections.
func (c *Cluster) DirectAddr() string { return c.directAddr }

// DirectUp reports whether the node has a direct connection to peer, and
// its write queue's bytes.
func (c *Cluster) DirectUp(peer string) (up bool, queued int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.directToLocked(peer)
	if d == nil {
		return false, 0
	}
	return true, d.queuedBytes()
}

// WaitDirectDown waits until the node has no direct connection to peer.
func (c *Cluster) WaitDirectDown(ctx context.Context, peer string) error {
	for {
		c.directMu.Lock()
		down := c.directDown
		c.directMu.Unlock()
		if up, _ := c.DirectUp(peer); !up {
			return nil
		}
		select {
		case <-down:
		case <-ctx.Done():
			return fmt.Errorf("cluster: direct connection to %s still up: %w", peer, ctx.Err())
		}
	}
}

// DirectCost is what one direct connection is charged.
func (c *Cluster) DirectCost() int64 { return c.directCost() }

// Incarnation is the node's incarnation.
func (c *Cluster) Incarnation() string { return c.incarnation }

// DirectHello is the hello (its length first) this node would send node
// to, in incarnation toInc, for a connection with ID id, answering a
// challenge with nonce.
func (c *Cluster) DirectHello(nonce []byte, to, toInc string, id uint64) []byte {
	mine := make([]byte, directNonceSize)
	return c.appendHello(nil, nonce, to, toInc, id, mine)
}

// DirectChallengeSize is the size of a challenge: the magic and the nonce.
const DirectChallengeSize = len(directMagic) + directNonceSize

// DirectMaxHellos is how many accepted connections may say hello at once,
// and DirectMaxHellosPerHost how many of them from one IP address.
const (
	DirectMaxHellos        = directMaxHellos
	DirectMaxHellosPerHost = directMaxHellosPerHost
)

// DirectBadSizes counts the connections dropped for a length prefix out
// of bounds.
func (c *Cluster) DirectBadSizes() uint64 { return c.directBadSizes.Load() }

// DirectFrames counts the frame messages this node has handled from direct
// connections and from NATS.
func (c *Cluster) DirectFrames() (direct, viaNATS uint64) {
	return c.directFrames.Load(), c.natsFrames.Load()
}

// WaitDirect waits until the node's link from peer comes on a direct
// connection: the connection is up and peer's marker has come through
// NATS.
func (c *Cluster) WaitDirect(ctx context.Context, peer string) error {
	for {
		c.mu.Lock()
		changed := c.directChanged
		ok := false
		if d := c.directToLocked(peer); d != nil {
			select {
			case <-d.ready:
				ok = true
			default:
			}
		}
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("cluster: direct link from %s: %w", peer, ctx.Err())
		}
	}
}

// OnDirectDialFailed makes the node call f with each failed dial of a
// direct connection (the node's lock held: f must not call into it).
func (c *Cluster) OnDirectDialFailed(f func(peer string, err error)) { c.testDialFailed.Store(&f) }

// DirectTLS reports whether the node's direct connection to peer speaks
// TLS, its handshake done.
func (c *Cluster) DirectTLS(peer string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.directToLocked(peer)
	if d == nil {
		return false
	}
	tc, ok := d.conn.(*tls.Conn)
	return ok && tc.ConnectionState().HandshakeComplete
}

// DirectDrops counts the direct connections the node dropped (for an
// error, a queue that could not grow, silence or a lost marker).
func (c *Cluster) DirectDrops() uint64 { return c.directDrops.Load() }
