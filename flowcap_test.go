package socketbus_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// Whole messages (v2) are bounded by what their reader asked for — the
// requests it sent, the push credit or polls it granted — so the server
// charges them to the member that sent them and never counts them toward
// the slow-consumer cap on control frames (issue 17, findings 7 and 10).

// countFailures reports how many of errs are not nil, and the first one.
func countFailures(errs []error) (n int, first error) {
	for _, err := range errs {
		if err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	return n, first
}

// TestManyWholeResponsesDoNotCutTheCaller: one client makes 1,000
// concurrent Calls whose responses are 60 KiB each, sent whole. It reads
// as fast as it can, so none of its Calls may fail.
func TestManyWholeResponsesDoNotCutTheCaller(t *testing.T) {
	const n, size = 1000, 60 << 10
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("whole-responses")
	caller, responder := dial(t, addr, ch), dial(t, addr, ch)
	resp := bytes.Repeat([]byte("r"), size)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- responder.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			_ = req.Respond(bytes.NewReader(resp))
		}), socketbus.WithConcurrency(n))
	}()
	resps, errs := callAll(ctx, caller, n, 8)
	stopServe()
	<-served
	failed, first := countFailures(errs)
	for i := range resps {
		if errs[i] == nil && len(resps[i]) != size {
			t.Fatalf("call %d: got %d bytes, want %d", i, len(resps[i]), size)
		}
	}
	t.Logf("%d of %d Calls failed (first: %v); server cuts %v", failed, n, first, srv.Stats().Cuts)
	if failed > 0 {
		t.Fatalf("%d of %d Calls failed, first with %v; want none", failed, n, first)
	}
}

// TestHostileResponderCannotCutTheCaller: a receiver holds 900 of a
// victim's requests and answers them all at once with 64 KiB each. The
// victim reads as fast as it can and must get every response.
func TestHostileResponderCannotCutTheCaller(t *testing.T) {
	const n, size = 900, 60 << 10
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("hostile-responder")
	victim := dial(t, addr, ch)
	hostile := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Take all n requests, then answer them in one burst.
	var (
		mu   sync.Mutex
		held []*socketbus.Request
		all  = make(chan struct{})
	)
	go func() {
		for range n {
			req, err := hostile.Receive(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, req)
			mu.Unlock()
		}
		close(all)
	}()
	var answered atomic.Int32
	go func() {
		select {
		case <-all:
		case <-ctx.Done():
			return
		}
		resp := bytes.Repeat([]byte("h"), size)
		var wg sync.WaitGroup
		for _, req := range held {
			wg.Go(func() {
				if req.Respond(bytes.NewReader(resp)) == nil {
					answered.Add(1)
				}
			})
		}
		wg.Wait()
	}()
	resps, errs := callAll(ctx, victim, n, 8)
	failed, first := countFailures(errs)
	for i := range resps {
		if errs[i] == nil && len(resps[i]) != size {
			t.Fatalf("call %d: got %d bytes, want %d", i, len(resps[i]), size)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d Calls failed, first with %v; want none (the victim was cut)", failed, n, first)
	}
	if err := victim.Err(); err != nil {
		t.Fatalf("victim's client: %v, want it still connected", err)
	}
}

// TestPushBurstDoesNotCutTheReceiver: a Serve with 1,024 handlers (push
// credit 1,024) is pushed a burst of 1,200 whole requests of 16 KiB. It
// reads as fast as it can, so it is not cut and every request completes.
func TestPushBurstDoesNotCutTheReceiver(t *testing.T) {
	const senders, perSender, size = 2, 600, 16000
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("push-burst")
	receiver := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Every handler waits until all 1,024 are busy, so the server pushes
	// a full credit's worth of bodies before anything is answered.
	var running atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- receiver.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			if running.Add(1) == 1024 {
				once.Do(func() { close(full) })
			}
			select {
			case <-full:
			case <-req.Context().Done():
			}
			_ = req.Respond(bytes.NewReader([]byte("ok")))
		}), socketbus.WithConcurrency(1024))
	}()
	errs := make([][]error, senders)
	var wg sync.WaitGroup
	for i := range senders {
		c := dial(t, addr, ch)
		wg.Go(func() { _, errs[i] = callAll(ctx, c, perSender, size) })
	}
	wg.Wait()
	stopServe()
	serveErr := <-served
	total := 0
	var first error
	for _, e := range errs {
		k, f := countFailures(e)
		if first == nil {
			first = f
		}
		total += k
	}
	if total > 0 {
		t.Fatalf("%d of %d Calls failed, first with %v (Serve returned %v); want none", total, senders*perSender, first, serveErr)
	}
	if err := receiver.Err(); err != nil {
		t.Fatalf("receiver: %v, want it still connected", err)
	}
}

// TestBodiesOfExactlyTheInitialCreditGoWhole: 1,000 concurrent Calls with
// bodies of exactly 16,384 bytes (InitialRequestCredit, the largest whole
// request) at the default 1 GiB budget. They go whole and hold 16 KiB
// each, so none is refused for memory (issue 17, finding 13).
func TestBodiesOfExactlyTheInitialCreditGoWhole(t *testing.T) {
	const n, size = 1000, 16384
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("exact-credit")
	caller, responder := dial(t, addr, ch), dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- responder.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			_ = req.Respond(bytes.NewReader([]byte("ok")))
		}), socketbus.WithConcurrency(64))
	}()
	_, errs := callAll(ctx, caller, n, size)
	stopServe()
	<-served
	if failed, first := countFailures(errs); failed > 0 {
		t.Fatalf("%d of %d Calls failed, first with %v; want none", failed, n, first)
	}
}

// TestSmallStreamedBodiesAreChargedWhatTheyHold: 1,000 concurrent Calls
// with bodies of 20,000 bytes, just over what goes whole, at the default
// 1 GiB budget. A streamed body's first grant is sized by what it has
// sent (16 KiB), not the whole 256 KiB window, so the 1,000 fit in one
// connection's share (1/16 of the budget) and none is refused.
func TestSmallStreamedBodiesAreChargedWhatTheyHold(t *testing.T) {
	const n, size = 1000, 20000
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("small-streamed")
	caller, responder := dial(t, addr, ch), dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- responder.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			_, _ = io.Copy(io.Discard, req.Body)
			_ = req.Respond(bytes.NewReader([]byte("ok")))
		}), socketbus.WithConcurrency(64))
	}()
	_, errs := callAll(ctx, caller, n, size)
	stopServe()
	<-served
	if failed, first := countFailures(errs); failed > 0 {
		t.Fatalf("%d of %d Calls failed, first with %v; want none", failed, n, first)
	}
}
