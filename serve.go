package socketbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/socketbus/socketbus/internal/wire"
)

// A Handler answers the requests Serve hands it. ServeRequest should read
// req.Body as it needs and answer with req.Respond or req.Fail before it
// returns; req.Context tells it when the request has ended without it.
type Handler interface {
	ServeRequest(req *Request)
}

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(req *Request)

// ServeRequest calls f(req).
func (f HandlerFunc) ServeRequest(req *Request) { f(req) }

// ServeOption configures Serve.
type ServeOption func(*serveOptions)

type serveOptions struct {
	concurrency int
}

// defaultServeConcurrency is how many requests Serve handles at once
// without WithConcurrency; Serve's doc comment says how it was chosen.
const defaultServeConcurrency = 512

// WithConcurrency makes Serve run at most n handlers at once, and wait in
// n Receive calls while fewer run. An n below 1 means the default, 512.
func WithConcurrency(n int) ServeOption {
	return func(o *serveOptions) { o.concurrency = n }
}

// Messages of the errors Serve answers with when a handler does not.
const (
	unansweredMessage = "handler returned without answering"
	panicMessage      = "handler panicked: "
)

// Serve receives requests and runs h on each, at most n at a time (see
// WithConcurrency). Serve shares the client's requests with any other
// Serve or Receive on the client.
//
// Requests are pushed ahead (protocol v2, docs/PROTOCOL.md section 20.3):
// Serve grants the server credit for n requests at once and up to n
// goroutines, started as the load needs them, take them as they arrive,
// without a poll round trip per request; each returning handler gives its
// unit of credit back (batched by n/8), so the credit is the number of
// idle handlers and a busy Serve holds no request it is not running. Only one Serve on a client holds the push
// credit; a second one running at the same time, or one on a version-1
// connection, waits in n Receive calls instead.
//
// The default n is 512, which is also the push credit. The credit bounds
// the requests one Serve has in flight, so a Serve handles at most n per
// round trip between the server and its handlers: the bandwidth-delay
// product of the path to its server, which includes the time its
// handlers wait to be scheduled. BenchmarkServe (serve_bench_test.go:
// 128-byte echo round trips, 64 concurrent callers on four clients,
// loopback, 2 CPUs) gave 98 µs per round trip with n = 1, 23 µs with 16
// and 14 µs with 64, and is flat beyond: throughput grows until there is a
// handler for every caller. With 256 requesters on one responder (the
// bench's fanin), a credit of 64 ran out while the responder's handlers
// waited for a processor: the two cores were idle for 41% of one core's
// time on one node and 58% across nodes. At 512 the idle fell to 17% and
// 12%, and fanin across nodes rose from 0.83x NATS's cluster to
// 1.05–1.33x (BENCHMARKS.md, "Serve's push credit").
// 512 units cost the server one entry per grant, not per unit, and leave
// half of its per-client limit (MaxInFlightPerClient, 1,024 by default,
// which caps polls, held requests and push credit together) for a second
// Serve's Receive calls. Over push credit the handler goroutines start as
// requests need them, so an idle Serve holds one; waiting in Receive
// calls, it holds n.
//
// A handler that returns without answering its request (Respond or Fail)
// has it answered for it: the requester gets a *RemoteError with the
// message "handler returned without answering", at once rather than when
// its timeout passes. A handler that panics has its request failed with a
// *RemoteError whose message is "handler panicked: " and the panic value;
// Serve recovers and goes on serving.
//
// When ctx ends, Serve stops taking requests and returns ctx.Err() once
// every running handler has returned. Requests pushed to it that no
// handler took go back to the head of the channel's queue for another
// receiver, never lost and never run twice; Serve returns only once the
// server has confirmed that no more will be pushed. If the client closes,
// Serve returns the client's error (Err, which matches ErrClosed) once the
// running handlers return. If the server refuses the credit or a Receive
// (during its shutdown, or past a limit), Serve stops the same way and
// returns that error.
func (c *Client) Serve(ctx context.Context, h Handler, opts ...ServeOption) error {
	o := serveOptions{concurrency: defaultServeConcurrency}
	for _, opt := range opts {
		opt(&o)
	}
	if o.concurrency < 1 {
		o.concurrency = defaultServeConcurrency
	}
	if p := c.startPush(o.concurrency); p != nil {
		return c.servePushed(ctx, h, p)
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	workers := startWorkers(ctx, stop, o.concurrency, h, c.Receive, nil, false)
	return workers.wait()
}

// servePushed is Serve over push credit (v2): up to n handler goroutines
// take the requests the server pushes, and each gives its credit back when
// its handler returns. When ctx ends (or a handler's wait fails) the pushes
// stop and what was pushed and not taken goes back to the server.
func (c *Client) servePushed(ctx context.Context, h Handler, p *pushState) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	workers := startWorkers(ctx, stop, p.n, h,
		func(ctx context.Context) (*Request, error) { return c.nextPushed(ctx, p) },
		func() { c.handled(p) }, true)
	<-ctx.Done()
	c.endPush(p, 0) // returns once the server has answered, or the client closed
	err := workers.wait()
	if cerr := c.Err(); cerr != nil {
		return cerr
	}
	return err
}

// workers are Serve's handler goroutines, at most n: each takes a request
// with next and runs h on it, then calls done (when set), until next
// fails. The first failure is why Serve stops: ctx's, the client's, or a
// refused Receive's or credit's, and it stops the other workers.
//
// All n start at once when each waiting worker is a Receive call, whose
// poll the server counts. Over push credit they start as the load needs
// them: one waits for the next request, and a worker that takes one starts
// another if none is left waiting, up to n. An idle Serve then costs one
// goroutine, not n: a process with 9,700 serving clients held 620,800
// idle goroutines, and their stacks, shrunk by every collection, grew
// again at the next request (BENCHMARKS.md, Scaling). A worker started
// stays until Serve returns.
type workers struct {
	wg       sync.WaitGroup
	once     sync.Once
	firstErr error

	ctx  context.Context
	stop context.CancelFunc
	h    Handler
	next func(context.Context) (*Request, error)
	done func()

	waiting atomic.Int32 // workers in next (or about to call it)
	started atomic.Int32
	max     int32
}

func startWorkers(ctx context.Context, stop context.CancelFunc, n int, h Handler,
	next func(context.Context) (*Request, error), done func(), onDemand bool) *workers {
	w := &workers{ctx: ctx, stop: stop, h: h, next: next, done: done, max: int32(n)}
	first := n
	if onDemand {
		first = 1
	}
	for range first {
		w.startOne()
	}
	return w
}

// startOne starts one more worker, waiting in next, unless max have
// started.
func (w *workers) startOne() {
	for {
		n := w.started.Load()
		if n >= w.max {
			return
		}
		if w.started.CompareAndSwap(n, n+1) {
			break
		}
	}
	w.waiting.Add(1)
	w.wg.Go(w.run)
}

func (w *workers) run() {
	for {
		req, err := w.next(w.ctx)
		if w.waiting.Add(-1) == 0 && err == nil {
			w.startOne() // someone must wait for the next request
		}
		if err != nil {
			w.once.Do(func() { w.firstErr = err })
			w.stop()
			return
		}
		serveRequest(w.h, req)
		if w.done != nil {
			w.done()
		}
		w.waiting.Add(1)
	}
}

// wait waits for every worker and returns the first failure.
func (w *workers) wait() error {
	w.wg.Wait()
	return w.firstErr
}

// serveRequest runs h on req and answers req if h did not.
func serveRequest(h Handler, req *Request) {
	defer func() {
		if p := recover(); p != nil {
			req.failUnfinished(fmt.Sprintf("%s%v", panicMessage, p))
			return
		}
		switch {
		case req.isAnswered():
		case req.published:
			_ = req.Respond(nil) // no answer is wanted; this says it was taken
		default:
			_ = req.Fail(errors.New(unansweredMessage))
		}
	}()
	h.ServeRequest(req)
}

// isAnswered reports whether Respond or Fail has been called.
func (r *Request) isAnswered() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered
}

// failUnfinished fails the request with a remote error saying msg, unless
// its answer was given whole: a request not yet answered is failed as by
// Fail, and a response cut short (Respond interrupted by a panic) ends with
// the error rather than leaving the requester waiting.
func (r *Request) failUnfinished(msg string) {
	r.mu.Lock()
	answered, complete := r.answered, r.complete
	r.mu.Unlock()
	switch {
	case !answered:
		_ = r.Fail(errors.New(msg))
	case !complete:
		_ = r.c.sendOn(r.cc, r.c.errorFrame(wire.FlagResponse, r.ID, wire.CodeRemote, msg))
	}
}
