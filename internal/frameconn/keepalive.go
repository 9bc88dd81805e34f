package frameconn

// Keepalive: the ping timer's callback owns pingSeen and missed.

import (
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// keepalive ticks every half PingInterval and counts the ticks in which
// nothing arrived from the peer (any frame counts as an answer): after one
// silent interval it pings, half an interval later it pings again, and when
// a second full interval has passed in silence — both pings missed — it
// closes with ErrIdle. A dead peer is noticed two intervals after it last
// spoke.
func (c *Conn) keepalive() {
	if n := c.FramesIn.Load(); n != c.pingSeen {
		c.pingSeen, c.missed = n, 0
	} else {
		c.missed++ // counts silent half-interval ticks
		switch {
		case c.missed >= 4:
			c.Close(ErrIdle)
			return
		case c.missed >= 2:
			h := c.cfg.PingHeader
			h.Version, h.Type, h.Flags = c.cfg.Version, wire.TypeStart, wire.FlagPing
			h.Final = true
			if c.Enqueue(frame.Frame{Header: h}) != nil {
				return
			}
		}
	}
	c.mu.Lock()
	if c.err == nil {
		c.pingTimer.Reset(c.cfg.PingInterval / 2)
	}
	c.mu.Unlock()
}
