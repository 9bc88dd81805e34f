package socketbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// sendCall is one attempt of a Send. The connection's reader goroutine
// feeds it acknowledgements, credit, the response stream and errors; the
// Send goroutine (and its uploader, for bodies larger than the initial
// credit) consume them.
type sendCall struct {
	c    *Client
	cc   *clientConn // the connection it went out on; set under Client.mu as it is registered
	id   ID
	resp *inStream

	respStarted atomic.Bool // the response's start frame has arrived
	window      sendWindow  // request-body credit; ended when the call is over
	// delivery says whether a receiver may have had the request, which
	// decides whether it may be sent again (delivery.go).
	delivery deliveryFacts
	// replayable says its body can be sent again from the start.
	replayable atomic.Bool
	// respHeader is the response's headers (v3), set by the reader when
	// the response starts or the Fail arrives, if the caller asked for
	// them (wantHeader).
	wantHeader bool
	respHeader atomic.Pointer[Header]
	// gather is set when the call is a gather or publish (gather.go).
	gather *gatherCall
}

// setResponseHeader records the response's headers from the header block
// at the front of p, when the caller asked for them, and returns the bytes
// the block took.
func (call *sendCall) setResponseHeader(p []byte) (int, error) {
	if !call.wantHeader {
		return wire.CheckHeaderBlock(p, wire.MaxHeaderBlock)
	}
	h, n, err := decodeHeaders(p)
	if err == nil && h != nil {
		call.respHeader.Store(&h)
	}
	return n, err
}

// FrameTaken records that the connection's writer took the request's
// start frame for writing, and whether the client had read the server's
// drain notice by then: the frame's bytes may leave the process from now
// on, whatever the write returns.
func (call *sendCall) FrameTaken() {
	if !call.delivery.taken.Load() {
		call.delivery.afterNotice.Store(call.cc.noticed.Load())
		call.delivery.taken.Store(true)
	}
}

// FrameSent is told when the start frame's write succeeded; FrameTaken
// has said all that matters by then.
func (call *sendCall) FrameSent(int) {}

// lostError is the error that ends the call when its connection ended
// with lost (an ErrDisconnected) or the client closed: ErrClosed after
// Close, otherwise the verdict of its delivery facts, with no re-send.
func (call *sendCall) lostError(lost error) error {
	if errors.Is(lost, ErrClosed) {
		return lost
	}
	return verdictError(call.delivery.decide(false), lost)
}

// finish ends the call with err: the response stream reports it, and the
// uploader stops.
func (call *sendCall) finish(err error) {
	call.resp.fail(err)
	call.window.end(err)
	if call.gather != nil {
		call.gather.fail(err)
	}
}

// Send streams body as a request to one peer on the channel and streams
// that peer's response into resp (a nil resp discards it). It returns nil
// once the whole response has been written to resp.
//
// ctx's deadline travels with the request and the server enforces it end to
// end: when it passes, Send returns an error matching both ErrTimeout and
// context.DeadlineExceeded, and the receiver's Request.Context is
// cancelled. Without a deadline the server's default timeout applies. If ctx
// is cancelled, Send returns ctx.Err() and the cancellation reaches the
// receiver too.
//
// Send fails at once with ErrNoPeers when no other client is on the
// channel. If reading body fails, Send returns an error wrapping the
// reader's error and the receiver's Body read fails: a partial body never
// reads as complete. Send returns only after its last read of body.
//
// While the client is reconnecting, Send waits for the connection, within
// ctx. A request that provably never reached a receiver when a connection
// was lost (see deliveryFacts: never taken for writing, refused with
// server_closed, written after the server's drain notice, or open at the
// goodbye of a complete drain) is sent again on the next connection with
// the same request ID, if its body can be replayed: body is an io.Seeker
// (Call's is), or it fitted in the first frame. Otherwise Send fails with
// ErrNotDelivered (retrying is safe), or with ErrDisconnected when the
// request may have reached a receiver; it is then never sent again.
//
// Options: WithHeader sends headers with the request, ResponseHeader
// collects the response's. The client's interceptors (WithInterceptor)
// wrap the call.
func (c *Client) Send(ctx context.Context, body io.Reader, resp io.Writer, opts ...CallOption) error {
	cfg := callOptions(opts)
	if len(c.opts.interceptors) > 0 {
		return c.intercept(ctx, cfg, func(ctx context.Context, cfg *callConfig) error {
			return c.send1(ctx, body, resp, cfg)
		})
	}
	return c.send1(ctx, body, resp, cfg)
}

// send1 is Send past the interceptors; cfg may be nil.
func (c *Client) send1(ctx context.Context, body io.Reader, resp io.Writer, cfg *callConfig) error {
	if err := ctx.Err(); err != nil {
		return ctxError(ctx)
	}
	var hs headerState
	if cfg != nil {
		var err error
		if hs.block, err = encodeHeaders(c.opts.version, cfg.header); err != nil {
			return err
		}
		hs.dst = cfg.respHeader
	} else if c.opts.version >= wire.Version3 {
		hs.block = wire.NoHeaders
	}
	defer hs.store()
	if body == nil {
		body = eofReader{}
	}
	rp := newReplay(body, c.reconnects())
	id := newID()
	var after uint64
	for {
		gen, err := c.waitUp(ctx, after)
		if err != nil {
			return unsentError(err) // every attempt so far was unseen
		}
		err = c.sendAttempt(ctx, id, body, &rp, resp, &hs)
		switch {
		case errors.Is(err, errRetryHere):
			if err := c.pause(ctx); err != nil {
				return err
			}
			after = gen - 1
			// Again on the same connection, under a new ID: the server
			// keeps the refused one as ended (its tombstone) and would
			// take a second start under it for a protocol error.
			id = newID()
		case errors.Is(err, errResend):
			after = gen
		default:
			return err
		}
		if body, err = rp.rewind(body); err != nil {
			return fmt.Errorf("socketbus: send: %w: %w", ErrNotDelivered, err)
		}
	}
}

// sendAttempt sends the request once, on the current connection, and reads
// its response.
func (c *Client) sendAttempt(ctx context.Context, id ID, body io.Reader, rp *replay, resp io.Writer, hs *headerState) error {
	var timeoutMillis uint64
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl)
		if left <= 0 {
			return fmt.Errorf("socketbus: send: %w", ErrTimeout)
		}
		timeoutMillis = uint64((left + time.Millisecond - 1) / time.Millisecond)
	}
	call := &sendCall{c: c, id: id, wantHeader: hs.dst != nil}
	call.window.init()
	defer hs.took(call)
	call.resp = newInStream(c, wire.FlagResponse, call.id)
	// The attempt reads its response here or not at all: what is left
	// buffered when it returns, or arrives later, is released.
	defer call.resp.abandon(errAttemptOver)
	call.replayable.Store(rp.seekable())
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return unsentError(c.err)
	}
	// It goes out on the current connection, and the whole call stays on
	// it: body, credit, response (client_conn.go).
	call.cc = c.conn.Load()
	call.window.cc = call.cc
	call.resp.setConn(call.cc, true)
	c.sends[call.id] = call
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.sends[call.id] == call {
			delete(c.sends, call.id)
		}
		c.mu.Unlock()
	}()

	// The first chunk goes out with the start frame, and for small bodies
	// the end frame too: one write for the whole request.
	start := c.header(wire.TypeStart, wire.FlagRequest, call.id)
	start.TimeoutMillis = timeoutMillis
	n, seq, rerr, serr := c.sendPieceKeeping(&call.window, wire.FlagRequest, call.id, body, wire.InitialRequestCredit, 1, &start, hs.block, rp, call)
	if rp.replayable() {
		call.replayable.Store(true)
	}
	if serr != nil {
		if werr := call.window.ended(); werr != nil {
			return werr // the connection's loss has decided the call
		}
		// The connection had closed: the frames were never queued.
		if c.closing() {
			return serr // Close: ErrClosed
		}
		canResend := c.reconnects() && c.Err() == nil && call.replayable.Load()
		return verdictError(call.delivery.decide(canResend), fmt.Errorf("%w: the connection was lost as the request was sent", ErrDisconnected))
	}
	call.window.add(wire.InitialRequestCredit - n)
	var uploaded chan error
	switch {
	case rerr == io.EOF:
	case rerr != nil:
		return c.abortSend(call, rerr)
	default:
		uploaded = make(chan error, 1)
		go func() { uploaded <- call.upload(body, seq) }()
	}

	err := c.readResponse(ctx, call, resp, hs)
	call.finish(ErrClosed) // stop the uploader if it is still going
	if uploaded != nil {
		if uerr := <-uploaded; uerr != nil && err != nil && !isCtxErr(err) && !errors.Is(err, errResend) {
			err = uerr // the body failed first; say so rather than what followed
		}
	}
	return err
}

// errAttemptOver abandons the response stream of a send attempt that has
// returned; nobody reads it.
var errAttemptOver = errors.New("socketbus: send attempt over")

// readResponse copies the response stream into resp until it ends. The
// caller's response headers are stored before the first byte is written
// to resp.
func (c *Client) readResponse(ctx context.Context, call *sendCall, resp io.Writer, hs *headerState) error {
	first := true
	for {
		piece, err := call.resp.next(ctx)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				c.cancelSend(call, ctx)
				return ctxError(ctx)
			}
			return err
		}
		if first && hs.dst != nil {
			hs.took(call)
			hs.store()
		}
		first = false
		if resp != nil {
			if _, werr := resp.Write(piece); werr != nil {
				call.resp.consume(len(piece))
				err := fmt.Errorf("socketbus: writing response: %w", werr)
				c.endSend(call, wire.CodeCancelled, "the sender could not write the response: "+werr.Error(), err)
				return err
			}
		}
		call.resp.consume(len(piece))
	}
}

// upload streams the rest of the body as credit allows.
func (call *sendCall) upload(body io.Reader, seq uint32) error {
	c := call.c
	for {
		n, err := call.window.take(wire.MaxFramePayload, nil)
		if err != nil {
			return nil // the call is over
		}
		got, next, rerr, serr := c.sendPiece(&call.window, wire.FlagRequest, call.id, body, n, seq, nil, nil)
		seq = next
		if got < n {
			call.window.add(n - got) // give back what this chunk did not use
		}
		if serr != nil {
			return nil // the client closed; the call has failed already
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return c.abortSend(call, rerr)
		}
	}
}

// abortSend tells the server the body could not be read to its end and
// fails the call with an error wrapping the reader's.
func (c *Client) abortSend(call *sendCall, rerr error) error {
	err := fmt.Errorf("socketbus: reading request body: %w", rerr)
	c.endSend(call, wire.CodeAborted, rerr.Error(), err)
	return err
}

// endSend ends call with err and tells the server, in that order: the
// window ends first, so no piece of the body is queued after the error
// frame.
func (c *Client) endSend(call *sendCall, code wire.Code, msg string, err error) {
	call.finish(err)
	_ = c.sendOn(call.cc, c.errorFrame(wire.FlagRequest, call.id, code, msg))
}

// cancelSend tells the server the sender gave up on the request.
func (c *Client) cancelSend(call *sendCall, ctx context.Context) {
	code, msg := wire.CodeCancelled, "the sender cancelled the request"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code, msg = wire.CodeTimeout, "the sender's deadline passed"
	}
	c.endSend(call, code, msg, ctx.Err())
}

// ctxError is what Send returns when ctx ends: ctx.Err() itself when
// cancelled, and an error matching both ErrTimeout and
// context.DeadlineExceeded when its deadline passed.
func ctxError(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("socketbus: send: %w", ErrTimeout)
	}
	return ctx.Err()
}

func isCtxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// fill reads from r until buf is full, r reports EOF, or r fails.
func fill(r io.Reader, buf []byte) (int, error) {
	n := 0
	empty := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m == 0 {
			if empty++; empty > 100 {
				return n, io.ErrNoProgress
			}
		}
	}
	return n, nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// headerState is a Send's headers: the request's encoded header block,
// and where the response's go (nil: the caller did not ask).
type headerState struct {
	block []byte
	dst   *Header
	got   Header
}

// took keeps the response headers an attempt's call received.
func (hs *headerState) took(call *sendCall) {
	if h := call.respHeader.Load(); h != nil {
		hs.got = *h
	}
}

// store gives the caller the response's headers: an empty Header when
// there were none.
func (hs *headerState) store() {
	if hs.dst == nil {
		return
	}
	if hs.got == nil {
		hs.got = Header{}
	}
	*hs.dst = hs.got
}
