package cluster

import (
	"encoding/binary"
	"time"
)

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
	// loseFullStates is how many of the node's first state messages with
	// a token (full states, and joins' states) published on NATS are lost
	// on their way.
	loseFullStates int
}

// lostByTest reports whether a test's knob loses the message data (its
// envelope first) instead of publishing it.
func (c *Cluster) lostByTest(data []byte) bool {
	switch {
	case len(data) == 0:
		return false
	case data[0] == kindDirect:
		return c.loseMarkers.Load() > 0 && c.loseMarkers.Add(-1) >= 0
	case data[0] == kindState && len(data) >= envelopeSize+8 && binary.BigEndian.Uint64(data[envelopeSize:]) != 0:
		return c.loseFull.Load() > 0 && c.loseFull.Add(-1) >= 0
	}
	return false
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
