package socketbus

import (
	"context"
	"errors"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// pushState is the push credit (protocol v2) of the one Serve that uses
// it: the server pushes up to credit requests without a poll each, and the
// Serve's idle handlers take them from queue. The fields are guarded by
// Client.mu; stopped and wake are signals.
type pushState struct {
	n     int // the Serve's concurrency: the credit granted when every handler is idle
	batch int // credit is given back once this much is owed
	// The credit granted and not yet used by a push is counted on each
	// connection (clientConn.pushCredit): a retired one's may still be
	// used by pushes in flight.
	owed     int        // credit owed back for handled requests, not yet granted
	queue    []*Request // pushed and not yet taken by a handler
	stopping bool       // no handler takes a request any more; the stop is sent
	returned bool       // what was queued went back: a late push goes back at once
	closing  bool       // the stop is Close's: handlers wait for the close
	err      error      // the server refused the credit (shutdown)

	wake    chan struct{} // capacity 1: a request was queued, or err set
	stopped chan struct{} // closed by the server's answer to the stop, or the close
	stopSet bool          // stopped is closed
	stopOn  *clientConn   // the connection the stop went on
}

// startPush makes the client's push credit p's, granting n at once. It
// returns nil when the client speaks v1, is closed or closing, or another
// Serve holds the credit: that Serve then uses Receive (which a closing
// client refuses too).
func (c *Client) startPush(n int) *pushState {
	if c.opts.version < wire.Version2 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.push != nil || c.err != nil || c.link.closing {
		return nil
	}
	if limit := c.pushLimit.Load(); limit > 0 && int64(n) > limit {
		// The server grants no credit past its limit (PROTOCOL.md §20.3):
		// asking for more would leave the two counts apart.
		n = int(limit)
	}
	p := &pushState{n: n, batch: max(1, n/8),
		wake: make(chan struct{}, 1), stopped: make(chan struct{})}
	c.push = p
	// Under c.mu, as every push frame: the grant never overtakes a stop.
	cc := c.conn.Load()
	if err := cc.conn.Enqueue(c.pushCreditFrame(n)); err != nil {
		c.push = nil
		return nil
	}
	cc.pushCredit += n
	return p
}

// pushCreditFrame grants the server n more pushed requests.
func (c *Client) pushCreditFrame(n int) frame.Frame {
	h := c.header(wire.TypeStart, wire.FlagReceive, ID{})
	h.Final = true
	return frame.Frame{Header: h, Payload: wire.AppendCredit(frame.GetBuffer(wire.CreditSize)[:0], uint32(n)), Pooled: true}
}

// pushedLocked queues a pushed request, read on cc, for a handler. It is
// called by the reader with c.mu held and unlocks it.
func (c *Client) pushedLocked(cc *clientConn, r *Request) error {
	p := c.push
	if cc.pushCredit <= 0 || (p == nil && !cc.retired) {
		c.mu.Unlock()
		err := wire.Errorf(wire.CodeProtocol, "request %x pushed beyond the credit granted", r.ID)
		r.body.abandon(err) // nobody will read it
		return err
	}
	cc.pushCredit--
	c.held[r.ID] = r
	if p == nil || p.returned || cc.retired {
		// Pushed after a stop that gave up waiting, or on a connection
		// the client has moved away from: its unit is owed already.
		// Forgotten at once (retireLocked says why).
		c.returnLocked(r)
		delete(c.held, r.ID)
		c.mu.Unlock()
		r.dropReturned()
		return nil
	}
	p.queue = append(p.queue, r)
	c.mu.Unlock()
	poke(p.wake)
	if h := hooksFor(c); h != nil && h.pushed != nil {
		h.pushed <- r.ID
	}
	return nil
}

// handlePushFrame handles the server's receive frames with the zero ID,
// read on cc: the answer to a stop, or a refused credit. On a retired
// connection they only end its credit: its units are owed already.
func (c *Client) handlePushFrame(cc *clientConn, f frame.Frame) error {
	defer f.Release()
	h := &f.Header
	c.mu.Lock()
	p := c.push
	retired := cc.retired
	c.mu.Unlock()
	if p == nil && !retired {
		return wire.Errorf(wire.CodeProtocol, "a %s frame for push credit this client does not hold", h.Type)
	}
	switch h.Type {
	case wire.TypeEnd:
		c.mu.Lock()
		cc.pushCredit = 0
		if p != nil && p.stopOn == cc {
			p.closeStopped()
		}
		c.mu.Unlock()
		return nil
	case wire.TypeError:
		e, err := c.parseError(&f)
		if err != nil {
			return err
		}
		werr := errorFromWire(e)
		if retired || (c.reconnects() && errors.Is(werr, ErrServerClosed)) {
			// The server is draining: the credit goes back to the idle
			// handlers and is granted again on the next connection.
			c.mu.Lock()
			if !cc.retired && c.push != nil {
				c.push.owed += cc.pushCredit
			}
			cc.pushCredit = 0
			c.mu.Unlock()
			c.serverDraining(cc)
			return nil
		}
		c.mu.Lock()
		p.err = werr
		cc.pushCredit = 0
		c.mu.Unlock()
		poke(p.wake)
		return nil
	}
	return wire.Errorf(wire.CodeProtocol, "unexpected %s frame with the receive flag and the zero ID", h.Type)
}

// closeStopped signals the end of pushes; c.mu is held.
func (p *pushState) closeStopped() {
	if !p.stopSet {
		p.stopSet = true
		close(p.stopped)
	}
}

// regrantLocked grants the idle handlers' credit on the current
// connection, a new one; c.mu is held.
func (c *Client) regrantLocked(p *pushState) {
	if p.stopping || p.err != nil || p.owed == 0 {
		return
	}
	cc := c.conn.Load()
	if cc.conn.Enqueue(c.pushCreditFrame(p.owed)) == nil {
		cc.pushCredit += p.owed
		p.owed = 0
	}
}

// closed is called, with c.mu held, when the connection has closed.
func (p *pushState) closed() {
	p.closeStopped()
	poke(p.wake)
}

// next waits for a pushed request a handler may take: it returns an error
// once ctx ends, the client closes, the server refuses the credit, or the
// credit is being stopped.
func (c *Client) nextPushed(ctx context.Context, p *pushState) (*Request, error) {
	if h := hooksFor(c); h != nil && h.takeGate != nil {
		select {
		case <-h.takeGate:
		case <-ctx.Done():
		case <-c.done:
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err // a Serve that is stopping takes nothing more
		}
		c.mu.Lock()
		switch {
		case c.err != nil:
			err := c.err
			c.mu.Unlock()
			return nil, err
		case p.err != nil:
			err := p.err
			c.mu.Unlock()
			poke(p.wake) // the other handlers stop too
			return nil, err
		case p.stopping && p.closing:
			c.mu.Unlock()
			<-c.done
			return nil, c.Err()
		case p.stopping:
			c.mu.Unlock()
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return nil, context.Canceled
		}
		for len(p.queue) > 0 {
			r := p.queue[0]
			p.queue[0] = nil
			p.queue = p.queue[1:]
			if r.ended() {
				c.oweLocked(p, 1) // it ended at the server; its handler is free
				r.body.abandon(r.window.ended())
				continue
			}
			more := len(p.queue) > 0
			c.mu.Unlock()
			if more {
				poke(p.wake)
			}
			if !r.whole {
				// Taking it: the body's window opens to the full size,
				// which also tells the server it can no longer be returned.
				_ = c.sendOn(r.cc, c.creditFrame(wire.FlagReceive, r.ID, r.body.window-wire.InitialRequestCredit))
			}
			return r, nil
		}
		c.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// handled gives back the credit of a request whose handler has returned.
func (c *Client) handled(p *pushState) {
	c.mu.Lock()
	c.oweLocked(p, 1)
	c.mu.Unlock()
}

// oweLocked adds n to the credit owed, and grants it once a batch is owed.
func (c *Client) oweLocked(p *pushState, n int) {
	if p.stopping || p.err != nil || c.err != nil {
		return
	}
	p.owed += n
	if p.owed < p.batch {
		return
	}
	if !c.link.connected || (c.link.draining && c.reconnects()) {
		return // owed until the next connection (regrantLocked)
	}
	cc := c.conn.Load()
	if cc.conn.Enqueue(c.pushCreditFrame(p.owed)) == nil {
		cc.pushCredit += p.owed
		p.owed = 0
	}
}

// stopPushLocked asks the server to stop pushing to p. c.mu is held; it
// reports whether this call made the stop.
func (c *Client) stopPushLocked(p *pushState) bool {
	if p.stopping {
		return false
	}
	p.stopping = true
	p.stopOn = c.conn.Load()
	if p.stopOn.conn.Enqueue(c.pushStopFrame()) != nil {
		p.closeStopped() // closing: nothing more comes
	}
	poke(p.wake)
	return true
}

// pushStopFrame asks the server to stop pushing on a connection.
func (c *Client) pushStopFrame() frame.Frame {
	h := c.header(wire.TypeEnd, wire.FlagReceive, ID{})
	h.Final = true
	return frame.Frame{Header: h}
}

// endPush stops p's pushes and gives back every pushed request no
// handler took, once the server has answered the stop (or timeout, when
// positive, has passed, or the client has closed).
func (c *Client) endPush(p *pushState, timeout time.Duration) {
	c.mu.Lock()
	c.stopPushLocked(p)
	c.mu.Unlock()
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-p.stopped:
	case <-expire:
	}
	// The returns are queued in the same hold of c.mu that empties the
	// queue (and may give the credit up): an endPush of the same p that
	// finds the queue empty, or a Close that finds no credit, comes after
	// them and drains the connection only once they are queued.
	c.mu.Lock()
	queue := p.queue
	p.queue, p.returned = nil, true
	if p.stopSet && c.push == p && c.err == nil {
		c.push = nil // the next Serve may push
	}
	for _, r := range queue {
		c.returnLocked(r)
	}
	c.mu.Unlock()
	if h := hooksFor(c); h != nil && h.endPush != nil {
		h.endPush()
	}
	for _, r := range queue {
		r.dropReturned()
	}
}

// returnLocked queues the return of r, a pushed request no handler took,
// to the server, which serves it to another receiver; c.mu is held. The
// caller then calls r.dropReturned, without c.mu.
func (c *Client) returnLocked(r *Request) {
	if !r.ended() && r.cc.conn.Enqueue(c.errorFrame(wire.FlagReceive, r.ID, wire.CodeReturned, "")) == nil {
		c.returned.Add(1)
	}
}

// dropReturned ends a request given back to the server: the client
// forgets it.
func (r *Request) dropReturned() {
	r.window.end(ErrClosed)
	r.body.abandon(errAnswered)
	r.forget()
}
