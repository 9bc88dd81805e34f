package socketbus

import (
	"context"
	"time"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// receiveWaiter is one Receive call waiting for a request.
type receiveWaiter struct {
	result chan receiveResult // capacity 1; receives exactly one result
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
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	for len(c.ready) > 0 {
		r := c.ready[0]
		c.ready[0] = nil
		c.ready = c.ready[1:]
		if r.ended() {
			continue // it timed out or was cancelled while it waited here
		}
		c.mu.Unlock()
		return r, nil
	}
	w := &receiveWaiter{result: make(chan receiveResult, 1)}
	c.waiters = append(c.waiters, w)
	var pollID ID
	if len(c.polls) < len(c.waiters) {
		pollID = newID()
		c.polls[pollID] = struct{}{}
	}
	c.mu.Unlock()
	if pollID != (ID{}) {
		h := c.header(wire.TypeStart, wire.FlagReceive, pollID)
		h.Final = true
		if err := c.send(frameconn.Frame{Header: h}); err != nil {
			return nil, err
		}
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
	if !removed {
		// A request was handed to this call as ctx ended: keep it for the
		// next Receive rather than lose it.
		res := <-w.result
		if res.r != nil {
			c.ready = append([]*Request{res.r}, c.ready...)
		}
	}
	// Withdraw a Receive the server no longer needs.
	var cancel ID
	if len(c.polls) > len(c.waiters) {
		for id := range c.polls {
			cancel = id
			break
		}
		delete(c.polls, cancel)
	}
	c.mu.Unlock()
	if cancel != (ID{}) {
		h := c.header(wire.TypeEnd, wire.FlagReceive, cancel)
		h.Final = true
		_ = c.send(frameconn.Frame{Header: h})
	}
	return nil, ctx.Err()
}

// deliver handles the start frame of a request handed to this client.
func (c *Client) deliver(h *wire.Header, payload []byte) error {
	if len(payload) != 16 {
		return wire.Errorf(wire.CodeProtocol, "a delivered request's start frame carries the 16-byte receive ID, got %d bytes", len(payload))
	}
	pollID := ID(payload)
	r := &Request{ID: h.RequestID, From: h.ClientID, c: c}
	r.window.init()
	r.body = newInStream(c, wire.FlagReceive, r.ID)
	r.Body = r.body
	r.deadline = time.Now().Add(time.Duration(h.TimeoutMillis) * time.Millisecond)

	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil
	}
	if _, dup := c.held[r.ID]; dup {
		c.mu.Unlock()
		return wire.Errorf(wire.CodeProtocol, "request %x delivered twice", r.ID)
	}
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
	c.mu.Unlock()
	if w != nil {
		w.deliver(r)
	}
	return nil
}

// pollFailed handles an error frame for one of this client's Receives: the
// oldest waiting Receive returns it.
func (c *Client) pollFailed(id ID, err error) {
	c.mu.Lock()
	delete(c.polls, id)
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
