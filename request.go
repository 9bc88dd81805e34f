package socketbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// Request is a request delivered by Receive. Read its Body, then answer it
// exactly once with Respond or Fail. Its methods are safe for concurrent use.
type Request struct {
	// ID is the request's ID, unique while it is in flight.
	ID ID
	// From is the ID of the client that sent the request.
	From ID
	// Body streams the request body. Reads return io.EOF at the end of a
	// complete body and an error (ErrCancelled, ErrAborted, ErrTimeout,
	// ErrPeerGone, ErrTooLarge...) if the body cannot be completed.
	Body io.Reader

	c        *Client
	body     *inStream
	deadline time.Time // from the timeout the server gave the request

	mu        sync.Mutex
	ctx       context.Context // made by Context on demand
	cancelCtx context.CancelCauseFunc
	stopTimer context.CancelFunc
	endCause  error // why the request ended, for a context made later
	answered  bool  // Respond or Fail was called
	finished  bool  // the request is over for this client
	credit    int   // response bytes the server will accept
	abortErr  error // why the server ended the request, if it did
	wake      chan struct{}
}

// Context returns the request's context. It is cancelled when the request's
// timeout passes, when its sender cancels it or goes away, when the client
// closes, and once the request has been answered.
//
// The context is made on the first call: requests whose handlers never ask
// for it cost no context and no timer.
func (r *Request) Context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		ctx, cancel := context.WithCancelCause(r.c.ctx)
		r.ctx, r.stopTimer = context.WithDeadlineCause(ctx, r.deadline, ErrTimeout)
		r.cancelCtx = cancel
		if r.endCause != nil {
			cancel(r.endCause)
			r.stopTimer()
		}
	}
	return r.ctx
}

// cancel ends the request's context, now or when it is made, with cause.
func (r *Request) cancel(cause error) {
	r.mu.Lock()
	if r.endCause == nil {
		r.endCause = cause
	}
	cancel, stop := r.cancelCtx, r.stopTimer
	r.mu.Unlock()
	if cancel != nil {
		cancel(cause)
		stop()
	}
}

// addCredit records a credit grant for the response.
func (r *Request) addCredit(n int) {
	r.mu.Lock()
	r.credit += n
	r.mu.Unlock()
	r.signal()
}

func (r *Request) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// abort ends the request because the server (or the client's closing)
// said so: the body reports err after what was buffered, the context is
// cancelled, and Respond or Fail in progress returns err.
func (r *Request) abort(err error) {
	r.mu.Lock()
	if r.abortErr == nil {
		r.abortErr = err
	}
	r.mu.Unlock()
	r.body.fail(err)
	r.cancel(err)
	r.signal()
	r.forget()
}

// ended reports whether the server (or the client's closing) has ended the
// request.
func (r *Request) ended() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.abortErr != nil
}

// forget removes the request from the client's table.
func (r *Request) forget() {
	r.mu.Lock()
	already := r.finished
	r.finished = true
	r.mu.Unlock()
	if already {
		return
	}
	r.c.mu.Lock()
	if r.c.held[r.ID] == r {
		delete(r.c.held, r.ID)
	}
	r.c.mu.Unlock()
}

// claim marks the request answered; only the first Respond or Fail may.
func (r *Request) claim() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answered {
		return errors.New("socketbus: request already answered")
	}
	r.answered = true
	if r.abortErr != nil {
		return r.abortErr
	}
	// The request ends before the server's word arrives when its own
	// deadline passes or the client closes.
	if r.ctx != nil {
		return context.Cause(r.ctx)
	}
	if r.endCause != nil {
		return r.endCause
	}
	if !time.Now().Before(r.deadline) {
		return fmt.Errorf("socketbus: respond: %w", ErrTimeout)
	}
	return context.Cause(r.c.ctx)
}

// Respond streams body to the requester as the response and returns once
// the last of it is queued for the server. It returns an error wrapping the
// cause if the request ended first (the sender cancelled or left, the
// timeout passed) or if reading body failed, in which case the requester
// gets a *RemoteError rather than a truncated response.
func (r *Request) Respond(body io.Reader) error {
	if err := r.claim(); err != nil {
		return err
	}
	if body == nil {
		body = eofReader{}
	}
	defer r.finish()
	c := r.c
	buf := frameconn.GetBuffer(wire.MaxFramePayload)
	n, rerr := fill(body, buf)
	start := c.header(wire.TypeStart, wire.FlagResponse, r.ID)
	chunk := frameconn.Frame{Header: c.header(wire.TypeChunk, wire.FlagResponse, r.ID), Payload: buf[:n], Pooled: true}
	chunk.Header.Sequence = 1
	frames := [3]frameconn.Frame{{Header: start}, chunk}
	count := 2
	seq := uint32(2)
	if rerr == io.EOF {
		end := c.header(wire.TypeEnd, wire.FlagResponse, r.ID)
		end.Sequence, end.Final = seq, true
		frames[2] = frameconn.Frame{Header: end}
		count = 3
	}
	r.mu.Lock()
	r.credit += wire.StreamWindow - n
	r.mu.Unlock()
	if err := c.send(frames[:count]...); err != nil {
		return err
	}
	total := int64(n)
	for rerr == nil {
		if c.maxMessage > 0 && total > c.maxMessage {
			// The server refuses the response (the requester gets
			// ErrTooLarge); stop streaming it.
			return fmt.Errorf("socketbus: response body over the server's limit of %d bytes: %w", c.maxMessage, ErrTooLarge)
		}
		var k int
		if k, rerr = r.takeCredit(); rerr != nil {
			return rerr
		}
		var got int
		var serr error
		got, seq, rerr, serr = c.sendPiece(wire.FlagResponse, r.ID, body, k, seq)
		total += int64(got)
		if got < k {
			r.addCredit(k - got)
		}
		if serr != nil {
			return serr
		}
	}
	if c.maxMessage > 0 && total > c.maxMessage {
		return fmt.Errorf("socketbus: response body over the server's limit of %d bytes: %w", c.maxMessage, ErrTooLarge)
	}
	if rerr != io.EOF {
		err := fmt.Errorf("socketbus: reading response body: %w", rerr)
		_ = c.send(c.errorFrame(wire.FlagResponse, r.ID, wire.CodeRemote, "the responder's body failed: "+rerr.Error()))
		return err
	}
	return nil
}

// takeCredit waits for response credit and takes up to one frame of it.
func (r *Request) takeCredit() (int, error) {
	for {
		r.mu.Lock()
		n := min(r.credit, wire.MaxFramePayload)
		r.credit -= n
		err := r.abortErr
		r.mu.Unlock()
		if err != nil {
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		select {
		case <-r.wake:
		case <-r.c.done:
			return 0, r.c.closedErr()
		}
	}
}

// Fail answers the request with an error: the requester's Send returns a
// *RemoteError whose Message is err.Error().
func (r *Request) Fail(err error) error {
	if cerr := r.claim(); cerr != nil {
		return cerr
	}
	defer r.finish()
	msg := "request failed"
	if err != nil {
		msg = err.Error()
	}
	return r.c.send(r.c.errorFrame(wire.FlagResponse, r.ID, wire.CodeRemote, msg))
}

// finish releases the request once it has been answered.
func (r *Request) finish() {
	r.body.abandon(errors.New("socketbus: request already answered"))
	r.forget()
	r.cancel(context.Canceled)
}
