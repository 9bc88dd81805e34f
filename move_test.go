package socketbus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// Moving on a drain notice (issue 19; PROTOCOL.md section 17, "Moving on
// a drain notice"): a client with another server to go to joins it at
// once and sends new requests there, while its draining connection
// carries what it held to the end.

// watch is a connection hook that records a client's connection events
// in order, and tells of the first of each state.
type watch struct {
	mu      sync.Mutex
	events  []socketbus.ConnectionState
	first   map[socketbus.ConnectionState]chan struct{}
	waiters []countWaiter
}

type countWaiter struct {
	n  int
	ch chan struct{}
}

func newWatch() *watch { return &watch{first: map[socketbus.ConnectionState]chan struct{}{}} }

func (w *watch) hook() socketbus.DialOption {
	return socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.events = append(w.events, ev.State)
		keep := w.waiters[:0]
		for _, cw := range w.waiters {
			if len(w.events) >= cw.n {
				close(cw.ch)
			} else {
				keep = append(keep, cw)
			}
		}
		w.waiters = keep
		ch := w.firstLocked(ev.State)
		select {
		case <-ch:
		default:
			close(ch)
		}
	})
}

func (w *watch) firstLocked(s socketbus.ConnectionState) chan struct{} {
	ch, ok := w.first[s]
	if !ok {
		ch = make(chan struct{})
		w.first[s] = ch
	}
	return ch
}

// saw is closed at the client's first event of state s.
func (w *watch) saw(s socketbus.ConnectionState) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.firstLocked(s)
}

// count is closed once the client has had n events.
func (w *watch) count(n int) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if len(w.events) >= n {
		close(ch)
	} else {
		w.waiters = append(w.waiters, countWaiter{n, ch})
	}
	return ch
}

func (w *watch) seen() []socketbus.ConnectionState {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]socketbus.ConnectionState(nil), w.events...)
}

// awaitMove waits for ch, failing the test after a liveness bound far above
// what the wait takes on a busy machine: without moves, these waits last
// until the drain ends, which in these tests is never.
func awaitMove(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(60 * time.Second):
		t.Fatalf("waited 60 s for %s", what)
	}
}

// heldOnA is a bus of two servers, A and B, with a responder listing
// both that holds the request "held", sent to it on A by a requester
// listing both, until release is closed. A's Shutdown has begun, and the
// requester has read its drain notice, when startHeldOnA returns.
type heldOnA struct {
	a, b         *server.Server
	addrA, addrB string
	ch           socketbus.ID
	runs         *testpeer.RunCounter
	release      chan struct{}
	heldDone     chan error // the held Call's result
	shutdown     chan error // A's Shutdown's result
	requester    *socketbus.Client
	watch        *watch // the requester's connection events
	responder    *watch // the responder's
	releaseOnce  sync.Once
}

// free releases the held request's handler.
func (h *heldOnA) free() { h.releaseOnce.Do(func() { close(h.release) }) }

// startHeldOnA builds the bus; before calls setup, if not nil, before A's
// Shutdown begins.
func startHeldOnA(t *testing.T, setup func(h *heldOnA)) *heldOnA {
	t.Helper()
	h := &heldOnA{ch: uuid.New(), runs: testpeer.NewRunCounter(), release: make(chan struct{}),
		heldDone: make(chan error, 1), shutdown: make(chan error, 1), watch: newWatch(), responder: newWatch()}
	h.a, h.addrA = testpeer.StartServer(t, server.Config{})
	h.b, h.addrB = testpeer.StartServer(t, server.Config{})
	t.Cleanup(h.free) // before the Serve's cleanup waits for the handler
	responder := dialReconnecting(t, h.addrA, h.ch, socketbus.WithServers(h.addrB), h.responder.hook())
	testpeer.CountingServe(t, responder, h.runs, func(_ *socketbus.Request, body string, _ int) {
		if body == "held" {
			<-h.release
		}
	})
	h.requester = dialReconnecting(t, h.addrA, h.ch, socketbus.WithServers(h.addrB), h.watch.hook())
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		got, err := h.requester.Call(ctx, []byte("held"))
		if err == nil && string(got) != "held" {
			err = fmt.Errorf("the held Call got %q", got)
		}
		h.heldDone <- err
	}()
	<-h.runs.Started("held") // its handler runs on A, and blocks
	if setup != nil {
		setup(h)
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		h.shutdown <- h.a.Shutdown(ctx)
	}()
	<-h.watch.saw(socketbus.ConnectionDraining)
	return h
}

// TestMoveOnDrainNotice: 50 new calls succeed through another server
// while a held request finishes on the draining one, none waiting for the
// drain. The held request's handler is still blocked, and A's Shutdown
// still waiting, when the 50 calls have completed; then the held request
// is answered on A's connection and A's Shutdown completes. Nothing runs
// twice, and A accepted no request but the held one.
func TestMoveOnDrainNotice(t *testing.T) {
	h := startHeldOnA(t, nil)
	const calls = 50
	errs := make(chan error, calls)
	for i := range calls {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			body := fmt.Sprintf("call %d", i)
			got, err := h.requester.Call(ctx, []byte(body))
			if err == nil && string(got) != body {
				err = fmt.Errorf("call %d got %q", i, got)
			}
			errs <- err
		}()
	}
	for range calls {
		if err := <-errs; err != nil {
			t.Fatalf("a Call during A's drain: %v", err)
		}
	}
	select {
	case err := <-h.heldDone:
		t.Fatalf("the held Call ended (%v) before its handler was released", err)
	case err := <-h.shutdown:
		t.Fatalf("A's Shutdown returned (%v) while it held a request", err)
	default:
	}
	if got := h.b.Stats().RequestsStarted; got < calls {
		t.Fatalf("B accepted %d requests, want the %d calls", got, calls)
	}
	h.free()
	if err := <-h.heldDone; err != nil {
		t.Fatalf("the held Call: %v", err)
	}
	if err := <-h.shutdown; err != nil {
		t.Fatalf("A's Shutdown: %v", err)
	}
	if got := h.a.Stats().RequestsStarted; got != 1 {
		t.Fatalf("A accepted %d requests, want only the held one", got)
	}
	if twice := h.runs.Twice(); len(twice) > 0 {
		t.Fatalf("ran twice: %v", twice)
	}
	for i := range calls {
		if n := h.runs.Count(fmt.Sprintf("call %d", i)); n != 1 {
			t.Fatalf("call %d ran %d times, want 1", i, n)
		}
	}
	for _, ev := range h.watch.seen() {
		if ev == socketbus.ConnectionLost {
			t.Fatalf("requester's events %v: a move loses no connection", h.watch.seen())
		}
	}
}

// TestMoveReceivers: receivers move too. While A drains, holding a
// request, a Serve listing A and B serves requests sent through B, and a
// Receive that was waiting on A gets a request sent through B: their
// push credit and poll moved at the drain notice.
func TestMoveReceivers(t *testing.T) {
	other := uuid.New()
	var waiter *socketbus.Client
	waiterWatch := newWatch()
	got := make(chan error, 1)
	h := startHeldOnA(t, func(h *heldOnA) {
		// A Receive waiting on A when A drains, on a channel of its own.
		waiter = dialReconnecting(t, h.addrA, other, socketbus.WithServers(h.addrB), waiterWatch.hook())
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req, err := waiter.Receive(ctx)
			if err == nil {
				err = req.Respond(nil)
			}
			got <- err
		}()
	})
	// Sent through B once the receivers have joined it: before, B has no
	// peer for them.
	awaitMove(t, h.responder.saw(socketbus.ConnectionRestored), "the responder to move")
	awaitMove(t, waiterWatch.saw(socketbus.ConnectionRestored), "the waiting Receive's client to move")
	onB := dialReconnecting(t, h.addrB, h.ch) // one address, B
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		body := fmt.Sprintf("via B %d", i)
		got, err := onB.Call(ctx, []byte(body))
		cancel()
		if err != nil || string(got) != body {
			t.Fatalf("Call through B while A drains: got %q, %v", got, err)
		}
	}
	toWaiter := dialReconnecting(t, h.addrB, other)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := toWaiter.Call(ctx, []byte("to the waiter")); err != nil {
		t.Fatalf("Call through B to the Receive that waited on A: %v", err)
	}
	if err := <-got; err != nil {
		t.Fatalf("the Receive that waited on A: %v", err)
	}
	select {
	case err := <-h.heldDone:
		t.Fatalf("the held Call ended (%v) before its handler was released", err)
	default:
	}
	h.free()
	if err := <-h.heldDone; err != nil {
		t.Fatalf("the held Call: %v", err)
	}
	if err := <-h.shutdown; err != nil {
		t.Fatalf("A's Shutdown: %v", err)
	}
	if got := h.a.Stats().RequestsStarted; got != 1 {
		t.Fatalf("A accepted %d requests, want only the held one", got)
	}
	if twice := h.runs.Twice(); len(twice) > 0 {
		t.Fatalf("ran twice: %v", twice)
	}
}

// TestNoMoveWithOneAddress: a client with nowhere else to go keeps the
// behaviour from before moves. On A's drain notice its new requests wait
// for the next connection, which comes only once A has drained and
// closed: its events are draining, then lost, then restored, and a Call
// made after the notice succeeds on the restarted A, once.
func TestNoMoveWithOneAddress(t *testing.T) {
	a := newRestartable(t)
	ch := uuid.New()
	runs := testpeer.NewRunCounter()
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(free)
	testpeer.CountingServe(t, dialReconnecting(t, a.addr, ch), runs, func(_ *socketbus.Request, body string, _ int) {
		if body == "held" {
			<-release
		}
	})
	w := newWatch()
	requester := dialReconnecting(t, a.addr, ch, w.hook())
	heldDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := requester.Call(ctx, []byte("held"))
		heldDone <- err
	}()
	<-runs.Started("held")
	shutdown := make(chan error, 1)
	go func(srv *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}(a.srv)
	<-w.saw(socketbus.ConnectionDraining)
	afterDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, err := requester.Call(ctx, []byte("after the notice"))
		afterDone <- err
	}()
	select {
	case <-w.saw(socketbus.ConnectionRestored):
		t.Fatalf("events %v: the client joined again while A drained", w.seen())
	case err := <-afterDone:
		t.Fatalf("the Call made after the notice ended (%v) while A drained", err)
	default:
	}
	free()
	if err := <-heldDone; err != nil {
		t.Fatalf("the held Call: %v", err)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("A's Shutdown: %v", err)
	}
	<-w.saw(socketbus.ConnectionLost)
	a.stop(false)
	a.start()
	if err := <-afterDone; err != nil {
		t.Fatalf("the Call made after the notice: %v", err)
	}
	<-w.saw(socketbus.ConnectionRestored)
	got := fmt.Sprint(w.seen())
	if want := "[draining lost restored]"; got != want {
		t.Fatalf("events %s, want %s", got, want)
	}
	if n := runs.Count("after the notice"); n != 1 {
		t.Fatalf("the Call made after the notice ran %d times, want 1", n)
	}
}

// TestMoveRunsNothingTwice: requesters and responders listing A and B
// call in a closed loop, with unique bodies, while A and then B drain,
// each holding a request so that clients have both connections open for
// a while, and come back. Every call succeeds and every body runs once.
func TestMoveRunsNothingTwice(t *testing.T) {
	const total, requesters = 1500, 4
	a, b := newRestartable(t), newRestartable(t)
	ch := uuid.New()
	runs := testpeer.NewRunCounter()
	release := make(chan struct{}, 2)
	t.Cleanup(func() { close(release) })
	hold := func(_ *socketbus.Request, body string, _ int) {
		if body == "held on A" || body == "held on B" {
			<-release
		}
	}
	testpeer.CountingServe(t, dialReconnecting(t, a.addr, ch, socketbus.WithServers(b.addr)), runs, hold)
	testpeer.CountingServe(t, dialReconnecting(t, b.addr, ch, socketbus.WithServers(a.addr)), runs, hold)

	var mu sync.Mutex
	var failures []error
	progress := make(chan struct{}, total)
	var wg sync.WaitGroup
	next := make(chan int, total)
	for i := range total {
		next <- i
	}
	close(next)
	for k := range requesters {
		first, second := a.addr, b.addr
		if k%2 == 1 {
			first, second = second, first
		}
		c := dialReconnecting(t, first, ch, socketbus.WithServers(second))
		wg.Go(func() {
			for i := range next {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				body := fmt.Sprintf("call %d", i)
				got, err := c.Call(ctx, []byte(body))
				cancel()
				if err == nil && string(got) != body {
					err = fmt.Errorf("%s got %q", body, got)
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
				}
				progress <- struct{}{}
			}
		})
	}
	wait := func(n int) {
		for range n {
			select {
			case <-progress:
			case <-time.After(60 * time.Second):
				t.Fatalf("no call completed for 60 s")
			}
		}
	}
	// drain drains srv, holding a request on it, while n more calls
	// complete, then lets the drain end and starts srv again.
	drain := func(srv *restartable, held string, n int) {
		holder := dialReconnecting(t, srv.addr, ch) // its request stays on srv
		heldDone := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			_, err := holder.Call(ctx, []byte(held))
			heldDone <- err
		}()
		<-runs.Started(held)
		shutdown := make(chan error, 1)
		go func(s *server.Server) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			shutdown <- s.Shutdown(ctx)
		}(srv.srv)
		wait(n)
		release <- struct{}{}
		if err := <-heldDone; err != nil {
			t.Errorf("%s: %v", held, err)
		}
		if err := <-shutdown; err != nil {
			t.Errorf("Shutdown holding %s: %v", held, err)
		}
		holder.Close()
		srv.stop(false)
		srv.start()
	}
	wait(total / 5)
	drain(a, "held on A", total/4)
	drain(b, "held on B", total/4)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d calls failed, the first: %v", len(failures), total, failures[0])
	}
	if twice := runs.Twice(); len(twice) > 0 {
		t.Fatalf("ran twice: %v", twice)
	}
	for i := range total {
		if n := runs.Count(fmt.Sprintf("call %d", i)); n != 1 {
			t.Fatalf("call %d ran %d times, want 1", i, n)
		}
	}
}

// TestMovePushedNotTakenGoBack: requests pushed to a Serve on A that no
// handler has taken when the Serve moves to B go back to A, which fails
// them at their sender with server_closed; the sender sends them again
// through B, where the Serve runs each once. Nothing waits for A's drain,
// which ends as soon as they are given back.
func TestMovePushedNotTakenGoBack(t *testing.T) {
	a, addrA := testpeer.StartServer(t, server.Config{})
	_, addrB := testpeer.StartServer(t, server.Config{})
	ch := uuid.New()
	runs := testpeer.NewRunCounter()
	rw := newWatch()
	responder := dialReconnecting(t, addrA, ch, socketbus.WithServers(addrB), rw.hook())
	gate, pushed := make(chan struct{}), make(chan socketbus.ID, 16)
	socketbus.SetPushHooks(responder, gate, pushed)
	var gateOnce sync.Once
	open := func() { gateOnce.Do(func() { close(gate) }) }
	t.Cleanup(open)
	testpeer.CountingServe(t, responder, runs, nil)
	requester := dialReconnecting(t, addrA, ch, socketbus.WithServers(addrB))
	const n = 3
	errs := make(chan error, n)
	for i := range n {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := requester.Call(ctx, []byte(fmt.Sprintf("pushed %d", i)))
			errs <- err
		}()
	}
	for range n {
		<-pushed // queued at the responder, on A, and not taken
	}
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shutdown <- a.Shutdown(ctx)
	}()
	awaitMove(t, rw.saw(socketbus.ConnectionRestored), "the responder to move") // and give them back
	if err := <-shutdown; err != nil {
		t.Fatalf("A's Shutdown: %v", err)
	}
	if got := socketbus.ReturnedCount(responder); got < n {
		t.Fatalf("the responder gave back %d requests, want %d", got, n)
	}
	open()
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("a Call pushed on A and given back: %v", err)
		}
	}
	for i := range n {
		if got := runs.Count(fmt.Sprintf("pushed %d", i)); got != 1 {
			t.Fatalf("pushed %d ran %d times, want 1", i, got)
		}
	}
}

// TestMoveRacingTheDrainingConnectionsEnd: the draining connection ends
// (its server drained at once) while the move's join to B is being made,
// and its loss is sorted only after the move has made B's connection
// current. The client stays on B: it reports no loss and does not
// reconnect. (It reconnected a second time, back to the restarted A,
// and moved off B: a Serve could end up on another server than its
// requesters, whose calls then waited out their timeouts.) When B drains
// in turn, it moves to A.
func TestMoveRacingTheDrainingConnectionsEnd(t *testing.T) {
	a, b := newRestartable(t), newRestartable(t)
	w := newWatch()
	c := dialReconnecting(t, a.addr, uuid.New(), socketbus.WithServers(b.addr), w.hook())
	lossStarted := make(chan struct{})
	var installOnce, lossOnce sync.Once
	socketbus.SetMoveHooks(c, func() {
		installOnce.Do(func() { awaitMove(t, lossStarted, "A's connection to end") })
	}, func() {
		lossOnce.Do(func() {
			close(lossStarted)
			awaitMove(t, w.saw(socketbus.ConnectionRestored), "the move to B")
		})
	})
	a.stop(true) // Shutdown: nothing is in flight, so A closes at once
	awaitMove(t, w.saw(socketbus.ConnectionRestored), "the move to B")
	a.start()
	shutdownB := make(chan error, 1)
	go func(srv *server.Server) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		shutdownB <- srv.Shutdown(ctx)
	}(b.srv)
	// Then B drains: the client moves to A (its loss of B may come first,
	// when B drains before the join to A is made).
	select {
	case <-w.count(4):
	case <-time.After(60 * time.Second):
		t.Fatalf("events %v after 60 s, want four", w.seen())
	}
	seen := w.seen()
	if got, want := fmt.Sprint(seen[:3]), "[draining restored draining]"; got != want {
		t.Fatalf("events %s, want %s then the move to A", got, want)
	}
	if seen[len(seen)-1] != socketbus.ConnectionRestored {
		awaitMove(t, w.count(5), "the move to A")
	}
	if err := <-shutdownB; err != nil {
		t.Fatalf("B's Shutdown: %v", err)
	}
}
