package socketbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Request is a request delivered by Receive. Read its Body, then answer it
// exactly once with Respond or Fail. Its methods are safe for concurrent use.
type Request struct {
	// ID is the request's ID, unique while it is in flight.
	ID ID
	// From is the ID of the client that sent the request: its Client.ID,
	// on every node of a cluster.
	From ID
	// Header is the request's headers (WithHeader), with canonical keys;
	// nil when it has none, or when either side speaks protocol version 1
	// or 2.
	Header Header
	// Body streams the request body. Reads return io.EOF at the end of a
	// complete body and an error (ErrCancelled, ErrAborted, ErrTimeout,
	// ErrPeerGone, ErrTooLarge...) if the body cannot be completed.
	Body io.Reader

	c        *Client
	cc       *clientConn // the connection it came on, where its answer goes
	body     *inStream
	deadline time.Time // from the timeout the server gave the request

	mu        sync.Mutex
	ctx       context.Context // made by Context on demand
	cancelCtx context.CancelCauseFunc
	stopTimer context.CancelFunc
	endCause  error // why the request ended, for a context made later
	answered  bool  // Respond or Fail was called
	complete  bool  // Respond or Fail returned: the answer needs nothing more
	finished  bool  // the request is over for this client

	// window is the response's credit; it ends, with the reason, when the
	// server (or the client's closing) ends the request.
	window sendWindow

	// pushed: the server pushed the request (v2) and may take it back
	// until a handler takes it; whole: its body came in the start frame.
	pushed, whole bool
	// published: a Publish sent it, and wants no answer.
	published bool

	respHeader Header // made by ResponseHeader on demand; guarded by mu
}

// Published reports whether the request came from a Publish, which wants
// no answer: Respond then sends an empty response whatever its body, and
// neither Respond nor Fail is needed. A member that speaks protocol
// version 1 or 2 cannot tell; what it answers is discarded.
func (r *Request) Published() bool { return r.published }

// ResponseHeader returns the headers the response will carry: the handler
// sets them before it calls Respond or Fail (net/http's
// ResponseWriter.Header idiom); changes made after have no effect. A
// requester collects them with the ResponseHeader call option; one that
// speaks protocol version 1 or 2 does not get them.
func (r *Request) ResponseHeader() Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.respHeader == nil {
		r.respHeader = Header{}
	}
	return r.respHeader
}

// responseHeaders returns the response's encoded header block, for the
// connection's protocol version (nil before v3).
func (r *Request) responseHeaders() ([]byte, error) {
	r.mu.Lock()
	h := r.respHeader
	r.mu.Unlock()
	return encodeHeaders(r.c.opts.version, h)
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

// abort ends the request because the server (or the client's closing)
// said so: the body reports err after what was buffered, the context is
// cancelled, and Respond or Fail in progress returns err. What was
// buffered moves off the pool's buffers: the handler may never read it,
// nor answer a request that has ended.
func (r *Request) abort(err error) {
	r.window.end(err)
	r.body.failDetached(err)
	r.cancel(err)
	r.forget()
}

// ended reports whether the server (or the client's closing) has ended the
// request.
func (r *Request) ended() bool { return r.window.ended() != nil }

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

// claim marks the request answered; only the first Respond or Fail may,
// and it reports first: that caller finishes the request, or, when err
// says the request had ended and takes no answer, releases its body.
func (r *Request) claim() (first bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.answered {
		return false, errAnswered
	}
	r.answered = true
	err = r.endedLocked()
	r.complete = err != nil // an ended request takes no answer
	return true, err
}

// endedLocked returns why the request has ended, or nil while it may be
// answered.
func (r *Request) endedLocked() error {
	if err := r.window.ended(); err != nil {
		return err
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
	first, err := r.claim()
	if err != nil {
		if first {
			r.body.abandon(err) // it ended unanswered: nothing reads its body now
		}
		return err
	}
	defer r.finish()
	if r.published {
		body = nil // nobody reads it: an empty answer says it was taken
	}
	err = r.respond(body)
	r.completed()
	return err
}

// completed records that the answer went out whole, or that Respond or
// Fail gave up on it without leaving a response cut short: only a panic in
// the middle of Respond leaves an answered request incomplete.
func (r *Request) completed() {
	r.mu.Lock()
	r.complete = true
	r.mu.Unlock()
}

// respond streams body as the response; Respond has claimed the request.
func (r *Request) respond(body io.Reader) error {
	if body == nil {
		body = eofReader{}
	}
	c := r.c
	headers, err := r.responseHeaders()
	if err != nil {
		// The requester must not wait for an answer that will not come.
		_ = r.window.sendWhileOpen(c, c.errorFrame(wire.FlagResponse, r.ID, wire.CodeRemote, "the responder's headers could not be sent: "+err.Error()))
		return err
	}
	// A response starts with a window of credit; the first frame of it goes
	// out with the start frame (in v3 after the header block).
	start := c.header(wire.TypeStart, wire.FlagResponse, r.ID)
	n, seq, rerr, serr := c.sendPiece(&r.window, wire.FlagResponse, r.ID, body, wire.MaxFramePayload-len(headers), 1, &start, headers)
	if serr != nil {
		return serr
	}
	r.window.add(wire.StreamWindow - n)
	total := int64(n)
	for rerr == nil {
		if c.maxMessage > 0 && total > c.maxMessage {
			// The server refuses the response (the requester gets
			// ErrTooLarge); stop streaming it.
			return fmt.Errorf("socketbus: response body over the server's limit of %d bytes: %w", c.maxMessage, ErrTooLarge)
		}
		k, err := r.window.take(wire.MaxFramePayload, c.done)
		if err != nil {
			return err
		}
		var got int
		got, seq, rerr, serr = c.sendPiece(&r.window, wire.FlagResponse, r.ID, body, k, seq, nil, nil)
		total += int64(got)
		if got < k {
			r.window.add(k - got) // give back what this chunk did not use
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
		_ = r.window.sendWhileOpen(c, c.errorFrame(wire.FlagResponse, r.ID, wire.CodeRemote, "the responder's body failed: "+rerr.Error()))
		return err
	}
	return nil
}

// Fail answers the request with an error: the requester's Send returns a
// *RemoteError whose Message is err.Error(). When err is, or wraps, a
// *RemoteError with a Code, that Code reaches the requester (protocol v3),
// and the Message is the RemoteError's own when err is it. The headers set
// with ResponseHeader go with the failure.
//
// A Code that is not at most 64 token characters is not sent: the
// request fails without it and Fail returns an error saying so.
func (r *Request) Fail(err error) error {
	first, cerr := r.claim()
	if cerr != nil {
		if first {
			r.body.abandon(cerr) // it ended unanswered: nothing reads its body now
		}
		return cerr
	}
	defer r.finish()
	defer r.completed()
	e := wire.Error{Code: wire.CodeRemote, Message: "request failed"}
	var bad error
	if err != nil {
		e.Message = err.Error()
		var re *RemoteError
		if errors.As(err, &re) {
			if re == err {
				e.Message = re.Message
			}
			if bad = wire.CheckAppCode(re.Code); bad == nil {
				e.AppCode = re.Code
			}
		}
	}
	if headers, herr := r.responseHeaders(); herr != nil {
		bad = errors.Join(bad, herr)
	} else if len(headers) > wire.HeaderBlockLenSize {
		e.Headers = headers
	}
	f := frame.ErrorFrameOf(r.c.header(wire.TypeError, wire.FlagResponse, r.ID), e)
	if serr := r.window.sendWhileOpen(r.c, f); serr != nil {
		return serr
	}
	if bad != nil {
		return fmt.Errorf("socketbus: fail: sent without its code or headers: %w", bad)
	}
	return nil
}

// errAnswered is returned by a second Respond or Fail, and by reads of a
// Body whose request has been answered.
var errAnswered = errors.New("socketbus: request already answered")

// finish releases the request once it has been answered.
func (r *Request) finish() {
	r.body.abandon(errAnswered)
	r.forget()
	r.cancel(context.Canceled)
}
