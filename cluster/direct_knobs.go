package cluster

import "time"

// directKnobs are what tests may change about direct connections
// (export_test.go's WithDirectKnobs); a zero field means the default.
type directKnobs struct {
	// announce replaces the listener's address in the node's
	// announcements (a test puts a proxy in between).
	announce string
	// queue replaces directQueueBytes, the bound of a connection's
	// write queue.
	queue int
	// writeTimeout replaces directWriteTimeout.
	writeTimeout time.Duration
	// stall replaces directStall.
	stall time.Duration
	// loseMarkers is how many of the node's first markers are lost on
	// their way (not published), as NATS may lose one.
	loseMarkers int
}

// directQueueBound is the most a connection's write queue holds.
func (c *Cluster) directQueueBound() int {
	if c.cfg.direct.queue > 0 {
		return c.cfg.direct.queue
	}
	return directQueueBytes
}

// directWriteDeadline is how long one write to a connection may take.
func (c *Cluster) directWriteDeadline() time.Duration {
	if c.cfg.direct.writeTimeout > 0 {
		return c.cfg.direct.writeTimeout
	}
	return directWriteTimeout
}

// directStallTime is how long a write may go unfinished before the queue
// stops growing past its base.
func (c *Cluster) directStallTime() time.Duration {
	if c.cfg.direct.stall > 0 {
		return c.cfg.direct.stall
	}
	return directStall
}
