package socketbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// Reply is one member's outcome in a Gather.
type Reply struct {
	// From is the member that answered: its Client.ID, on every node.
	From ID
	// Header is the response's headers, or the Fail's; empty when it had
	// none.
	Header Header
	// Body is the response body; nil when Err is set.
	Body []byte
	// Err is the member's Fail, as a *RemoteError with its Code; or an
	// error matching ErrPeerGone if the member left first, ErrTimeout if
	// the deadline passed first, ErrTooLarge if its response was over the
	// server's limit, ErrServerClosed if the server shut down before the
	// member was given the request.
	Err error
}

// Gather sends body to every other member of the channel present when the
// server accepts it, on every node of the bus, and returns one Reply per
// member once every member has one: its response, its Fail, or that it
// left or ran out of time. Gather returns at the moment the last member's
// outcome is known, never later and never on a timer; ctx's deadline is
// the deadline of every member's part, and a member that has not answered
// by then has a Reply whose Err matches ErrTimeout.
//
// Each member receives the request once, as an ordinary request, through
// Serve or Receive; a member that joins after the server accepted the
// gather gets nothing of it. Every client joined to the channel is a
// member, those that only send too: one that never receives runs its part
// to the deadline and gets ErrTimeout, so gather on channels whose clients
// all serve. The body streams to all members at once
// under flow control: the server holds at most one stream window of it per
// member, and a slow member slows the body for all of them, but only its
// own reply.
//
// Gather fails with ErrNoPeers when no other member exists, and with
// ErrLimit when the channel has more members than the server's
// MaxGatherMembers. If ctx is cancelled it returns ctx.Err() and the
// members still working see the request cancelled. A gather is never sent
// twice: if the connection is lost first, Gather fails with an error
// matching ErrDisconnected (or ErrNotDelivered when no member can have had
// it) and returns the replies that had arrived.
//
// A gather counts as one request toward the server's in-flight limit of
// the sender. It needs protocol version 3 on the sender's connection;
// members of any version answer it as an ordinary request. Options:
// WithHeader sends headers to every member; the client's interceptors
// wrap the gather.
func (c *Client) Gather(ctx context.Context, body []byte, opts ...CallOption) ([]Reply, error) {
	var replies []Reply
	err := c.GatherFunc(ctx, body, func(r Reply) bool {
		replies = append(replies, r)
		return true
	}, opts...)
	return replies, err
}

// GatherFunc is Gather that hands each Reply to fn as it arrives, on the
// calling goroutine, for callers that act on the first answers at once.
// When fn returns false the gather ends there: the members still working
// see it cancelled, and GatherFunc returns nil. Otherwise GatherFunc
// returns once every member has a reply, with Gather's errors.
func (c *Client) GatherFunc(ctx context.Context, body []byte, fn func(Reply) bool, opts ...CallOption) error {
	_, err := c.fanOut(ctx, body, false, fn, callOptions(opts))
	return err
}

// Publish delivers body to every other member of the channel present when
// the server accepts it, on every node, and returns how many took it (a
// handler or a Receive was given it) once each has taken it or left. What
// the members answer is discarded: a member's Request.Published says that
// no answer is wanted, and answering anyway is harmless. A member that
// neither takes it nor leaves by ctx's deadline is not counted. Publish
// fails as Gather does: ErrNoPeers, ErrLimit, ctx.Err().
func (c *Client) Publish(ctx context.Context, body []byte, opts ...CallOption) (int, error) {
	return c.fanOut(ctx, body, true, nil, callOptions(opts))
}

// fanOut runs a gather or publish through the client's interceptors.
func (c *Client) fanOut(ctx context.Context, body []byte, publish bool, fn func(Reply) bool, cfg *callConfig) (int, error) {
	if c.opts.version < wire.Version3 {
		return 0, fmt.Errorf("socketbus: gather and publish need protocol version 3, the client speaks %d: %w", c.opts.version, ErrProtocol)
	}
	var took int
	run := func(ctx context.Context, cfg *callConfig) error {
		var err error
		took, err = c.fanOut1(ctx, body, publish, fn, cfg)
		return err
	}
	if len(c.opts.interceptors) > 0 {
		err := c.intercept(ctx, cfg, run)
		return took, err
	}
	err := run(ctx, cfg)
	return took, err
}

// deadlineGrace is how long a gather whose deadline has passed waits for
// the server's word on the members that had not answered (the server's
// own timer fires at the same deadline) before it marks them timed out
// itself.
const deadlineGrace = 2 * time.Second

// fanOut1 sends one gather or publish and collects its replies.
func (c *Client) fanOut1(ctx context.Context, body []byte, publish bool, fn func(Reply) bool, cfg *callConfig) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, ctxError(ctx)
	}
	block := wire.NoHeaders
	if cfg != nil {
		var err error
		if block, err = encodeHeaders(c.opts.version, cfg.header); err != nil {
			return 0, err
		}
	}
	if _, err := c.waitUp(ctx, 0); err != nil {
		return 0, unsentError(err)
	}
	var timeoutMillis uint64
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return 0, fmt.Errorf("socketbus: gather: %w", ErrTimeout)
		}
		timeoutMillis = uint64((left + time.Millisecond - 1) / time.Millisecond)
	}
	g := newGatherCall(publish)
	call := &sendCall{c: c, id: newID(), gather: g}
	call.window.init()
	call.resp = newInStream(c, wire.FlagResponse, call.id)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return 0, unsentError(c.err)
	}
	call.cc = c.conn.Load()
	call.window.cc, call.resp.cc = call.cc, call.cc
	c.sends[call.id] = call
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.sends[call.id] == call {
			delete(c.sends, call.id)
		}
		c.mu.Unlock()
	}()

	flags := wire.FlagRequest | wire.FlagAll
	if publish {
		flags |= wire.FlagPublish
	}
	start := c.header(wire.TypeStart, flags, call.id)
	start.TimeoutMillis = timeoutMillis
	r := bytes.NewReader(body)
	n, seq, rerr, serr := c.sendPieceKeeping(&call.window, wire.FlagRequest, call.id, r, wire.InitialRequestCredit, 1, &start, block, nil, call)
	if serr != nil {
		if werr := call.window.ended(); werr != nil {
			return 0, werr
		}
		if c.closing() {
			return 0, serr
		}
		return 0, verdictError(call.delivery.decide(false), fmt.Errorf("%w: the connection was lost as the gather was sent", ErrDisconnected))
	}
	call.window.add(wire.InitialRequestCredit - n)
	uploaded := make(chan struct{})
	if rerr == nil {
		go func() {
			defer close(uploaded)
			_ = call.upload(r, seq) // a bytes.Reader does not fail
		}()
	} else {
		close(uploaded)
	}
	took, err := c.collect(ctx, call, fn)
	call.window.end(ErrClosed) // stop the uploader if it is still going
	<-uploaded
	return took, err
}

// collect hands the gather's replies to fn as they come, until its end.
func (c *Client) collect(ctx context.Context, call *sendCall, fn func(Reply) bool) (int, error) {
	g := call.gather
	done := ctx.Done()
	var grace <-chan time.Time
	for {
		out, ended, took, err := g.take()
		for _, r := range out {
			if fn != nil && !fn(r) {
				c.endGather(call, wire.CodeCancelled, "the sender has the replies it wanted")
				return took, nil
			}
		}
		if ended {
			return took, nil
		}
		if err != nil {
			return took, err
		}
		select {
		case <-g.wake:
		case <-done:
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				c.endGather(call, wire.CodeCancelled, "the sender cancelled the request")
				return took, ctx.Err()
			}
			// The server's timer fires at the same deadline and ends
			// every member still working with timeout; say so too, then
			// wait a little for its word.
			c.endGather(call, wire.CodeTimeout, "the sender's deadline passed")
			done = nil
			t := time.NewTimer(deadlineGrace)
			defer t.Stop()
			grace = t.C
		case <-grace:
			g.timeOutOpen()
			grace = nil
		}
	}
}

// endGather tells the server the sender is done with the gather: the
// members still working see it end with code.
func (c *Client) endGather(call *sendCall, code wire.Code, msg string) {
	call.window.end(ErrClosed)
	_ = c.sendOn(call.cc, c.errorFrame(wire.FlagRequest, call.id, code, msg))
}
