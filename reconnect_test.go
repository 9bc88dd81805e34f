package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// fastReconnect makes clients retry every few milliseconds.
var fastReconnect = socketbus.WithReconnect(socketbus.ReconnectPolicy{MinDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond})

// restartable is a server on a fixed loopback address that a test stops
// and starts again.
type restartable struct {
	t    *testing.T
	addr string
	srv  *server.Server
	done chan error
}

func newRestartable(t *testing.T) *restartable {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	r := &restartable{t: t, addr: ln.Addr().String()}
	r.serve(ln)
	t.Cleanup(func() { r.stop(false) })
	return r
}

func (r *restartable) serve(ln net.Listener) {
	r.srv = server.New(server.Config{})
	r.done = make(chan error, 1)
	go func(srv *server.Server, done chan error) { done <- srv.Serve(ln) }(r.srv, r.done)
}

// stop stops the server, gracefully or at once, and waits for Serve.
func (r *restartable) stop(graceful bool) {
	if r.srv == nil {
		return
	}
	if graceful {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := r.srv.Shutdown(ctx); err != nil {
			r.t.Errorf("Shutdown: %v", err)
		}
		cancel()
	}
	r.srv.Close()
	<-r.done
	r.srv = nil
}

// start starts a new server on the same address.
func (r *restartable) start() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

func dialReconnecting(t *testing.T, addr string, ch socketbus.ID, opts ...socketbus.DialOption) *socketbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := socketbus.Dial(ctx, addr, ch, append([]socketbus.DialOption{fastReconnect}, opts...)...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func upperHandler(req *socketbus.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	_ = req.Respond(bytes.NewReader(bytes.ToUpper(body)))
}

// TestReconnectRestart: the server is stopped (Shutdown, then Close) and
// started again on the same address. A requester and a Serve responder made
// once carry on with no new Dial: after each restart a Call succeeds within
// 2 s (the policy's 50 ms backoff and a join), and a Receive that waited
// through the restarts comes back with a request.
func TestReconnectRestart(t *testing.T) {
	server := newRestartable(t)
	ch, other := uuid.New(), uuid.New()
	var eventsMu sync.Mutex
	var events []socketbus.ConnectionState
	// lost hears of the requester losing the server that crashes: crashing
	// is set before that server stops.
	var crashing atomic.Bool
	lost := make(chan struct{}, 1)
	requester := dialReconnecting(t, server.addr, ch, socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
		eventsMu.Lock()
		events = append(events, ev.State)
		eventsMu.Unlock()
		if ev.State == socketbus.ConnectionLost && crashing.Load() {
			select {
			case lost <- struct{}{}:
			default:
			}
		}
	}))
	responder := dialReconnecting(t, server.addr, ch)
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- responder.Serve(serveCtx, socketbus.HandlerFunc(upperHandler)) }()

	// restored hears of the waiter joining the server started last: the
	// phase moves to 2 while no server listens, before that start.
	var phase atomic.Int32
	restored := make(chan struct{}, 1)
	waiter := dialReconnecting(t, server.addr, other, socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
		if ev.State == socketbus.ConnectionRestored && phase.Load() == 2 {
			select {
			case restored <- struct{}{}:
			default:
			}
		}
	}))
	waitCtx, cancelWait := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancelWait()
	received := make(chan *socketbus.Request, 1)
	receiveErr := make(chan error, 1)
	go func() {
		req, err := waiter.Receive(waitCtx)
		if err != nil {
			receiveErr <- err
			return
		}
		received <- req
	}()

	call := func(what string, within time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		got, err := requester.Call(ctx, []byte(what))
		if err != nil || string(got) != strings.ToUpper(what) {
			t.Fatalf("Call %q: got %q, %v", what, got, err)
		}
	}
	call("before", 10*time.Second)
	for _, graceful := range []bool{true, false} {
		crashing.Store(!graceful)
		server.stop(graceful)
		if !graceful {
			phase.Store(2)
			// A request written to the dead server before the client
			// noticed may have been delivered, so it would fail with
			// ErrDisconnected (TestWrittenRequestNotSentAgainAfterACrash):
			// the next Call is made once the client knows.
			<-lost
		}
		server.start()
		start := time.Now()
		call(fmt.Sprintf("after graceful=%v", graceful), 2*time.Second)
		t.Logf("restart (graceful %v): the next Call succeeded %v after the server was back", graceful, time.Since(start).Round(time.Millisecond))
	}
	if requester.Err() != nil || responder.Err() != nil {
		t.Fatalf("clients closed: %v, %v", requester.Err(), responder.Err())
	}

	// The Receive that waited through both restarts gets a request, once
	// its client has joined the restarted server (before, a request finds
	// no peer on the channel).
	<-restored
	sender := dialReconnecting(t, server.addr, other)
	sent := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := sender.Call(ctx, []byte("to the waiter"))
		sent <- err
	}()
	select {
	case req := <-received:
		body, _ := io.ReadAll(req.Body)
		if string(body) != "to the waiter" {
			t.Fatalf("the waiting Receive got %q", body)
		}
		req.Respond(strings.NewReader("ok"))
	case err := <-receiveErr:
		t.Fatalf("the Receive waiting through the restarts: %v (the Call to it: %v)", err, <-sent)
	}
	if err := <-sent; err != nil {
		t.Fatalf("Call to the waiter: %v", err)
	}
	stopServe()
	if err := <-served; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve returned %v, want context.Canceled (it ran through both restarts)", err)
	}
	eventsMu.Lock()
	got := fmt.Sprint(events)
	eventsMu.Unlock()
	for _, want := range []socketbus.ConnectionState{socketbus.ConnectionDraining, socketbus.ConnectionLost, socketbus.ConnectionRestored} {
		if !strings.Contains(got, want.String()) {
			t.Errorf("connection events %s: no %q", got, want)
		}
	}
}

// TestReconnectNoLoss: requests with replayable bodies run through five
// graceful restarts, each a failover between two servers listed with
// WithServers. Every request ends exactly once, every one succeeds, and no
// handler runs a request ID twice.
func TestReconnectNoLoss(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 2000
	}
	const requesters, restarts = 8, 5
	servers := []*restartable{newRestartable(t), newRestartable(t)}
	ch := uuid.New()
	var handledMu sync.Mutex
	handled := make(map[socketbus.ID]int)
	responder := dialReconnecting(t, servers[0].addr, ch, socketbus.WithServers(servers[1].addr))
	serveCtx, stopServe := context.WithCancel(context.Background())
	defer stopServe()
	served := make(chan error, 1)
	go func() {
		served <- responder.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			handledMu.Lock()
			handled[req.ID]++
			handledMu.Unlock()
			upperHandler(req)
		}))
	}()

	var next, succeeded atomic.Int64
	var failMu sync.Mutex
	failures := map[string]int{}
	progress := make(chan int64, total)
	var wg sync.WaitGroup
	for range requesters {
		c := dialReconnecting(t, servers[0].addr, ch, socketbus.WithServers(servers[1].addr))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				body := fmt.Sprintf("request %d", i)
				got, err := c.Call(ctx, []byte(body))
				cancel()
				if err == nil && string(got) != strings.ToUpper(body) {
					err = fmt.Errorf("wrong response %q", got)
				}
				if err != nil {
					failMu.Lock()
					failures[err.Error()]++
					failMu.Unlock()
				} else {
					succeeded.Add(1)
				}
				progress <- i
			}
		}()
	}
	// Restart the server the clients are on, each time a sixth of the
	// requests has ended: they move to the other one.
	on := 0
	ended := 0
	for r := 1; r <= restarts; r++ {
		for ended < r*total/(restarts+1) {
			<-progress
			ended++
		}
		servers[on].stop(true)
		servers[on].start()
		on = 1 - on
	}
	wg.Wait()
	stopServe()
	<-served

	failMu.Lock()
	defer failMu.Unlock()
	handledMu.Lock()
	defer handledMu.Unlock()
	twice := 0
	for _, n := range handled {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d requests through %d graceful restarts between two servers: %d succeeded, failures %v; %d request IDs handled, %d of them more than once",
		total, restarts, succeeded.Load(), failures, len(handled), twice)
	if succeeded.Load() != int64(total) || len(failures) != 0 {
		t.Fatalf("got %d of %d succeeded, failures %v; want every one to succeed", succeeded.Load(), total, failures)
	}
	if twice != 0 || len(handled) != total {
		t.Fatalf("handled %d distinct IDs, %d more than once; want %d, each once", len(handled), twice, total)
	}
}

// TestReconnectErrorDistinction: ErrClosed, ErrPeerGone and ErrDisconnected
// are each returned in exactly their case.
func TestReconnectErrorDistinction(t *testing.T) {
	server := newRestartable(t)
	ch := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A request the receiver has begun to answer (so the sender knows it
	// was delivered) when the server goes away at once: the sender gets
	// ErrDisconnected at once, and the handler's context ends with
	// ErrDisconnected.
	sender := dialReconnecting(t, server.addr, ch)
	receiver := dialReconnecting(t, server.addr, ch)
	handlerCause := make(chan error, 1)
	go func() {
		req, err := receiver.Receive(ctx)
		if err != nil {
			handlerCause <- err
			return
		}
		pr, pw := io.Pipe()
		go req.Respond(pr)
		pw.Write(make([]byte, 64<<10)) // one whole frame goes out; then the body blocks
		<-req.Context().Done()
		pw.CloseWithError(errors.New("gone"))
		handlerCause <- context.Cause(req.Context())
	}()
	partial := &signalWriter{wrote: make(chan struct{})}
	sendErr := make(chan error, 1)
	go func() { sendErr <- sender.Send(ctx, strings.NewReader("hi"), partial) }()
	<-partial.wrote
	server.stop(false)
	if err := <-sendErr; !errors.Is(err, socketbus.ErrDisconnected) || errors.Is(err, socketbus.ErrClosed) || errors.Is(err, socketbus.ErrPeerGone) {
		t.Fatalf("Send delivered when the connection was lost: got %v, want ErrDisconnected only", err)
	}
	if err := <-handlerCause; !errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("the handler's Request.Context cause when its connection was lost: got %v, want ErrDisconnected", err)
	}
	server.start()

	// The receiver leaves while holding a request: ErrPeerGone.
	leaver := dialReconnecting(t, server.addr, ch)
	receiver.Close()
	got := make(chan *socketbus.Request, 1)
	go func() {
		if req, err := leaver.Receive(ctx); err == nil {
			got <- req
		}
	}()
	peerGone := make(chan error, 1)
	go func() { peerGone <- sender.Send(ctx, strings.NewReader("held"), nil) }()
	<-got
	leaver.Close()
	if err := <-peerGone; !errors.Is(err, socketbus.ErrPeerGone) || errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("Send whose receiver left: got %v, want ErrPeerGone only", err)
	}

	// The application's own Close: ErrClosed.
	closed := make(chan error, 1)
	alone := uuid.New()
	waiting := dialReconnecting(t, server.addr, alone) // alone on its channel: Receive waits
	go func() { _, err := waiting.Receive(ctx); closed <- err }()
	waitReceivers(t, server.srv, alone, 1)
	waiting.Close()
	if err := <-closed; !errors.Is(err, socketbus.ErrClosed) || errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("Receive when the client was closed: got %v, want ErrClosed only", err)
	}
}

// signalWriter closes wrote at its first write.
type signalWriter struct {
	once  sync.Once
	wrote chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.wrote) })
	return len(p), nil
}

// TestReconnectGivesUp: with its server gone for good a client gives up
// after its attempts, Done closes and Err matches ErrDisconnected, and a
// Call made after that fails with ErrNotDelivered (nothing was sent, so
// not ErrDisconnected, which says a receiver may have had it); a client
// closed in the middle of reconnecting stops at once. goleak (TestMain)
// checks that neither leaves a goroutine.
func TestReconnectGivesUp(t *testing.T) {
	server := newRestartable(t)
	ch := uuid.New()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	quitter, err := socketbus.Dial(ctx, server.addr, ch,
		socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: 3, MinDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer quitter.Close()
	closer := dialReconnecting(t, server.addr, ch)
	server.stop(false)
	select {
	case <-quitter.Done():
	case <-ctx.Done():
		t.Fatalf("the client did not give up after 3 attempts")
	}
	if err := quitter.Err(); !errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("Err after giving up: got %v, want ErrDisconnected", err)
	}
	if _, err := quitter.Call(ctx, []byte("x")); !errors.Is(err, socketbus.ErrNotDelivered) || errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("Call after giving up: got %v, want ErrNotDelivered only", err)
	}
	closeDone := make(chan struct{})
	go func() { closer.Close(); close(closeDone) }()
	select {
	case <-closeDone:
	case <-ctx.Done():
		t.Fatalf("Close in the middle of reconnecting did not return")
	}
	if err := closer.Err(); !errors.Is(err, socketbus.ErrClosed) {
		t.Fatalf("Err after Close mid-reconnect: got %v, want ErrClosed", err)
	}
}

// TestNoPeersRetryAfterReconnectKeepsTheConnection: just after a
// reconnect, a request refused with no_peers (the channel's receivers may
// be reconnecting too) is sent again after a pause on the same connection,
// under a new request ID — the server keeps the refused ID as ended, and a
// second start under it was a protocol error that cut the requester's
// connection. The retry reaches the receiver that joins meanwhile, and the
// server counts no protocol error.
func TestNoPeersRetryAfterReconnectKeepsTheConnection(t *testing.T) {
	server := newRestartable(t)
	ch := uuid.New()
	restored := make(chan struct{}, 1)
	requester := dialReconnecting(t, server.addr, ch, socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
		if ev.State == socketbus.ConnectionRestored {
			restored <- struct{}{}
		}
	}))
	server.stop(false)
	server.start()
	<-restored
	watch := testpeer.WatchServer(t, server.srv)

	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		body, err := requester.Call(ctx, []byte("retry"))
		if err == nil && string(body) != "RETRY" {
			err = fmt.Errorf("answer %q", body)
		}
		got <- err
	}()
	// Wait for the refusal, then let a receiver join.
	if !watch.Until(10*time.Second, func() bool { return server.srv.Stats().Requests["no_peers"] > 0 }) {
		t.Fatalf("no no_peers refusal within 10s")
	}
	responder := dialReconnecting(t, server.addr, ch)
	serveCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go responder.Serve(serveCtx, socketbus.HandlerFunc(upperHandler))
	if err := <-got; err != nil {
		t.Fatalf("the Call retried after no_peers: %v", err)
	}
	if pe := server.srv.Stats().ProtocolErrors; len(pe) != 0 {
		t.Fatalf("the server counted protocol errors %v", pe)
	}
}

// TestWrittenRequestNotSentAgainAfterACrash: a small request whose handler
// has it but has not answered when the server dies without a drain. The
// requester cannot know whether a receiver saw it (v2 acknowledges
// nothing), so it is not sent again: the Call fails with ErrDisconnected
// and the handler has run once. (Sent again, it ran twice.)
func TestWrittenRequestNotSentAgainAfterACrash(t *testing.T) {
	server := newRestartable(t)
	ch := uuid.New()
	var runs atomic.Int32
	holding := make(chan struct{})
	responder := dialReconnecting(t, server.addr, ch)
	serveCtx, stop := context.WithCancel(context.Background())
	defer stop()
	go responder.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
		if runs.Add(1) == 1 {
			close(holding)
			<-req.Context().Done()
			return
		}
		upperHandler(req)
	}))
	requester := dialReconnecting(t, server.addr, ch)
	got := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := requester.Call(ctx, []byte("once"))
		got <- err
	}()
	<-holding
	server.stop(false)
	server.start()
	if err := <-got; !errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("a request held when the server died: %v, want ErrDisconnected", err)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("the handler ran %d times, want once", n)
	}
}
