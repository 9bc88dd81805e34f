package socketbus

import (
	"context"
	"errors"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// receiveWaiter is one Receive call waiting for a request. Whoever takes it
// from Client.waiters sends it exactly one result, never while holding
// Client.mu.
type receiveWaiter struct {
	result chan receiveResult // capacity 1
}

type receiveResult struct {
	r   *Request
	err error
}

func (w *receiveWaiter) deliver(r *Request) { w.result <- receiveResult{r: r} }

// Receive blocks until a request for this client arrives or ctx is done.
// Requests on a channel are served first come, first served, to the
// Receive calls of all its clients in the order they were made; a client
// never receives its own requests.
func (c *Client) Receive(ctx context.Context) (*Request, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.err != nil || c.link.closing {
		// Closing: a poll made now could be answered on a connection that
		// has stopped reading, and its request would fail unseen.
		err := c.err
		c.mu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return nil, err
	}
	for len(c.ready) > 0 {
		r := c.ready[0]
		c.ready[0] = nil
		c.ready = c.ready[1:]
		if r.ended() {
			// It timed out or was cancelled while it waited here.
			r.body.abandon(r.window.ended())
			continue
		}
		c.mu.Unlock()
		return r, nil
	}
	w := &receiveWaiter{result: make(chan receiveResult, 1)}
	c.waiters = append(c.waiters, w)
	var perr error
	if len(c.polls) < len(c.waiters) && c.link.connected {
		perr = c.pollLocked() // while reconnecting, the next connection polls for it
	}
	c.mu.Unlock()
	if perr != nil && !c.reconnects() {
		return nil, c.closedErr() // the closing connection answers w
	}

	select {
	case res := <-w.result:
		return res.r, res.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	removed := false
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			removed = true
			break
		}
	}
	if removed {
		c.withdrawExcessLocked()
	}
	c.mu.Unlock()
	if !removed {
		// This call was taken from the waiters as ctx ended and its result
		// is on its way. A request is kept for the next Receive rather
		// than lost.
		if res := <-w.result; res.r != nil {
			c.requeue(res.r)
		}
	}
	return nil, ctx.Err()
}

// pollLocked sends the server a new poll. The poll's frames are queued
// under c.mu, so that a poll's withdrawal never overtakes its start.
func (c *Client) pollLocked() error {
	id := newID()
	c.pollSeq++
	c.polls[id] = c.pollSeq
	h := c.header(wire.TypeStart, wire.FlagReceive, id)
	h.Final = true
	return c.conn.Load().conn.Enqueue(frame.Frame{Header: h})
}

// withdrawExcessLocked keeps the polls outstanding at the server as many as
// the Receive calls waiting, by withdrawing the newest polls: the server
// answers the oldest first, so the newest is the least likely to have been
// answered already. A withdrawal can still lose the race with a delivery;
// deliver then finds one poll too many and withdraws another.
func (c *Client) withdrawExcessLocked() {
	for len(c.polls) > len(c.waiters) {
		var newest ID
		var seq uint64
		for id, s := range c.polls {
			if s >= seq {
				newest, seq = id, s
			}
		}
		delete(c.polls, newest)
		h := c.header(wire.TypeEnd, wire.FlagReceive, newest)
		h.Final = true
		_ = c.conn.Load().conn.Enqueue(frame.Frame{Header: h}) // fails only once closing
	}
}

// requeue gives r, handed to a Receive whose ctx ended, to the oldest
// waiting Receive, or keeps it for the next.
func (c *Client) requeue(r *Request) {
	c.mu.Lock()
	if err := c.err; err != nil {
		c.mu.Unlock()
		r.body.abandon(err) // the close has aborted r, and nobody has it
		return
	}
	var w *receiveWaiter
	if len(c.waiters) > 0 {
		w = c.waiters[0]
		c.waiters[0] = nil
		c.waiters = c.waiters[1:]
		c.withdrawExcessLocked() // w's poll is no longer needed
	} else {
		c.ready = append([]*Request{r}, c.ready...)
	}
	c.mu.Unlock()
	if w != nil {
		w.deliver(r)
	}
}

// deliver handles the start frame of a request handed to this client on
// cc.
func (c *Client) deliver(cc *clientConn, h *wire.Header, payload []byte) error {
	whole := h.Final && c.opts.version >= wire.Version2
	if len(payload) < 16 || (len(payload) != 16 && !whole && c.opts.version < wire.Version3) {
		return wire.Errorf(wire.CodeProtocol, "a delivered request's start frame carries the 16-byte receive ID, got %d bytes", len(payload))
	}
	if h.Final && !whole {
		return wire.Errorf(wire.CodeProtocol, "a whole request on a version %d connection", c.opts.version)
	}
	pollID := ID(payload[:16])
	r := &Request{ID: h.RequestID, From: h.ClientID, c: c, cc: cc, published: h.Flags.Has(wire.FlagPublish)}
	body := payload[16:]
	if c.opts.version >= wire.Version3 {
		hdr, n, err := decodeHeaders(body)
		if err != nil {
			return err
		}
		r.Header, body = hdr, body[n:]
		if !whole && len(body) != 0 {
			return wire.Errorf(wire.CodeProtocol, "a delivered request's start frame with %d bytes after its header block", len(body))
		}
	}
	r.window.init()
	r.window.cc = cc
	r.body = newInStream(c, wire.FlagReceive, r.ID)
	r.body.setConn(cc, !(c.opts.version >= wire.Version2 && pollID == (ID{}))) // a pushed one opens when taken
	r.Body = r.body
	r.deadline = time.Now().Add(time.Duration(h.TimeoutMillis) * time.Millisecond)
	if whole {
		r.body.setWhole(body)
	}
	pushed := c.opts.version >= wire.Version2 && pollID == (ID{})

	c.mu.Lock()
	if err := c.err; err != nil {
		c.mu.Unlock()
		r.body.abandon(err) // nobody will read it
		return nil
	}
	if _, dup := c.held[r.ID]; dup {
		c.mu.Unlock()
		err := wire.Errorf(wire.CodeProtocol, "request %x delivered twice", r.ID)
		r.body.abandon(err)
		return err
	}
	if pushed {
		r.pushed, r.whole = true, whole
		return c.pushedLocked(cc, r) // unlocks c.mu
	}
	// A poll this client withdrew may have been answered before the
	// withdrawal reached the server; then the client kept one poll more
	// than it thought, which withdrawExcessLocked puts right.
	delete(c.polls, pollID)
	c.held[r.ID] = r
	var w *receiveWaiter
	if len(c.waiters) > 0 {
		w = c.waiters[0]
		c.waiters[0] = nil
		c.waiters = c.waiters[1:]
	} else {
		c.ready = append(c.ready, r)
	}
	c.withdrawExcessLocked()
	c.mu.Unlock()
	if w != nil {
		w.deliver(r)
	}
	return nil
}

// pollFailed handles an error frame, read on cc, for one of this client's
// Receives: the oldest waiting Receive returns it.
func (c *Client) pollFailed(cc *clientConn, id ID, err error) {
	c.mu.Lock()
	delete(c.polls, id)
	if c.reconnects() && errors.Is(err, ErrServerClosed) {
		// The server is shutting down: the Receive waits for the next
		// connection, where its poll is made again.
		c.mu.Unlock()
		c.serverDraining(cc)
		return
	}
	var w *receiveWaiter
	if len(c.waiters) > 0 {
		w = c.waiters[0]
		c.waiters = c.waiters[1:]
	}
	c.mu.Unlock()
	if w != nil {
		w.result <- receiveResult{err: err}
	}
}
