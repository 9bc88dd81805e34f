package socketbus

import (
	"sync/atomic"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
)

// clientConn is one joined connection of a Client. New requests, polls
// and push credit go on the current connection only (Client.conn). When
// the current connection's server sends its drain notice and the client
// has another server to go to, the client joins that one and retires the
// draining connection (move): a retired connection carries only what was
// on it already — the responses to requests sent on it, the answers to
// requests received from it — until its server closes it after its drain
// (docs/PROTOCOL.md section 17, "Moving on a drain notice"). Every stream
// remembers its connection: a sendCall's frames, and a Request's, go on
// the connection the request went out or came in on.
type clientConn struct {
	conn      *frameconn.Conn
	addr      string
	addrIndex int    // its place in Client.addrs
	gen       uint64 // its number: the client's connections count from 1
	// window is the stream window the server announced when it was
	// joined: the credit a body read on it may hold (docs/PROTOCOL.md
	// section 12).
	window int

	// noticed says the client has read this connection's drain notice;
	// its reader sets it. goodbye says the client has read its goodbye:
	// the server's server_closed error after a complete drain
	// (deliveryFacts.drained).
	noticed atomic.Bool
	goodbye atomic.Bool

	// Guarded by Client.mu.
	pushCredit int  // push credit granted on it and not yet used by a push
	retired    bool // the client has moved to another connection
}

// sendOn queues frames on cc for its writer goroutine, which coalesces
// what many goroutines queue at once (the responses of a Serve's
// handlers) into one write. It fails once cc or the client is closed.
func (c *Client) sendOn(cc *clientConn, fs ...frame.Frame) error {
	var err error
	if len(fs) == 1 {
		err = cc.conn.Enqueue(fs[0])
	} else {
		err = cc.conn.EnqueueAll(fs)
	}
	if err != nil {
		return c.closedErr()
	}
	return nil
}

// sendInlineOn is sendOn for a request's frames: they are written from
// the calling goroutine when no write is in progress and the socket takes
// them at once (a requester seldom has company on its connection), and
// otherwise by the writer goroutine.
func (c *Client) sendInlineOn(cc *clientConn, fs ...frame.Frame) error {
	if err := cc.conn.EnqueueAllInline(fs); err != nil {
		return c.closedErr()
	}
	return nil
}

// canMove reports whether the client moves to another server on a drain
// notice: it reconnects and has another server to go to.
func (c *Client) canMove() bool { return c.reconnects() && len(c.addrs) > 1 }

// retireLocked makes old, the current connection, a retired one as a new
// connection replaces it while it is open (a move); c.mu is held. Its
// polls are forgotten (the draining server refuses them; the new
// connection polls for the waiting Receives), and its push credit moves:
// a stop goes on old unless one is on its way, what old pushed that no
// handler took goes back to old's server, and the units of both are owed,
// to be granted on the new connection. It returns the requests given
// back, for the caller to drop (Request.dropReturned) once c.mu is
// released.
func (c *Client) retireLocked(old *clientConn) []*Request {
	old.retired = true
	if c.retired == nil {
		c.retired = make(map[*clientConn]struct{})
	}
	c.retired[old] = struct{}{}
	clear(c.polls)
	p := c.push
	if p == nil {
		return nil
	}
	if !p.stopping && old.pushCredit > 0 {
		// Pushes made before the server reads the stop still arrive; the
		// stop's answer follows them. Each goes back at once
		// (pushedLocked), its unit already owed here.
		_ = old.conn.Enqueue(c.pushStopFrame())
	}
	p.owed += old.pushCredit
	var back []*Request
	keep := p.queue[:0]
	for _, r := range p.queue {
		if r.cc != old {
			keep = append(keep, r)
			continue
		}
		c.returnLocked(r)
		// Forgotten now, not when dropped: once its sender has sent it
		// again, it may be pushed on the new connection under its ID.
		delete(c.held, r.ID)
		back = append(back, r)
		p.owed++
	}
	clear(p.queue[len(keep):])
	p.queue = keep
	return back
}

// dropConnLocked takes out of the client's tables what cc, which has
// closed, carried: the Sends on it and the requests received from it.
// c.mu is held. Requests pushed on it that no handler took end with it,
// and their units of push credit are owed again, as is its unused credit
// (unless it was retired, which owed them already); a Serve's stop sent
// on it is over, since nothing more comes on it.
func (c *Client) dropConnLocked(cc *clientConn) (calls []*sendCall, held []*Request) {
	for id, call := range c.sends {
		if call.cc == cc {
			calls = append(calls, call)
			delete(c.sends, id)
		}
	}
	for id, r := range c.held {
		if r.cc == cc {
			held = append(held, r)
			delete(c.held, id)
		}
	}
	ready := c.ready[:0]
	for _, r := range c.ready {
		if r.cc != cc {
			ready = append(ready, r)
		} else {
			r.body.abandon(ErrDisconnected) // nobody was handed it
		}
	}
	clear(c.ready[len(ready):])
	c.ready = ready
	if c.conn.Load() == cc {
		clear(c.polls) // made on cc; the next connection polls again
	}
	if p := c.push; p != nil {
		if !cc.retired {
			p.owed += cc.pushCredit
		}
		keep := p.queue[:0]
		for _, r := range p.queue {
			if r.cc == cc {
				// Aborted with the connection, its handler free; no
				// handler was handed it.
				p.owed++
				r.body.abandon(ErrDisconnected)
			} else {
				keep = append(keep, r)
			}
		}
		clear(p.queue[len(keep):])
		p.queue = keep
		if p.stopping && p.stopOn == cc {
			p.closeStopped()
		}
		// A connection that replaced cc before this ran has the owed
		// credit granted now, not at the next handler's return.
		if c.link.connected && !c.link.draining {
			c.regrantLocked(p)
		}
	}
	cc.pushCredit = 0
	return calls, held
}
