package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// serveClients starts a server and joins a responder and a requester to
// one channel.
func serveClients(t *testing.T, cfg server.Config) (srv *server.Server, ch socketbus.ID, responder, requester *socketbus.Client) {
	t.Helper()
	srv, addr := startServer(t, cfg)
	ch = socketbus.ChannelFromName(t.Name())
	return srv, ch, dial(t, addr, ch), dial(t, addr, ch)
}

// startServe runs c.Serve in a goroutine; its result arrives on the
// returned channel. The test's cleanup cancels it and waits.
func startServe(t *testing.T, c *socketbus.Client, h socketbus.Handler, opts ...socketbus.ServeOption) (context.CancelFunc, <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		served <- c.Serve(ctx, h, opts...)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return cancel, served
}

// echoUpper answers each request with its body upper-cased.
var echoUpper = socketbus.HandlerFunc(func(req *socketbus.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		_ = req.Fail(err)
		return
	}
	_ = req.Respond(bytes.NewReader(upper(body)))
})

// waitServe waits, for up to 10 seconds, for Serve's result.
func waitServe(t *testing.T, served <-chan error) error {
	t.Helper()
	select {
	case err := <-served:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Serve did not return within 10s")
		return nil
	}
}

func TestServeConcurrencyLimit(t *testing.T) {
	srv, ch, responder, requester := serveClients(t, server.Config{})
	const n = 3
	var running, most atomic.Int32
	started := make(chan struct{}, 2*n)
	release := make(chan struct{})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		now := running.Add(1)
		for m := most.Load(); now > m && !most.CompareAndSwap(m, now); m = most.Load() {
		}
		started <- struct{}{}
		<-release
		running.Add(-1)
		_ = req.Respond(strings.NewReader("done"))
	}), socketbus.WithConcurrency(n))
	free := releaseOnFailure(t, release)

	sent := roundTripsAtOnce(t, requester, 2*n)
	waitStarted(t, started, n)
	// With n handlers busy, Serve has no Receive outstanding: the other
	// requests wait at the server.
	waitChannel(t, srv, ch, "n requests queued and no receiver waiting", func(c server.ChannelStats) bool {
		return c.Queued == n && c.ReceiversWaiting == 0
	})
	if got := running.Load(); got != n {
		t.Fatalf("%d handlers running, want %d", got, n)
	}
	free()
	sent()
	if got := most.Load(); got != n {
		t.Errorf("at most %d handlers ran at once, want %d", got, n)
	}
}

func TestServePanicFailsRequestAndGoesOn(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		if string(body) == "panic" {
			panic("boom")
		}
		_ = req.Respond(bytes.NewReader(upper(body)))
	}), socketbus.WithConcurrency(1)) // one worker: it must survive the panic

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := roundTrip(ctx, requester, []byte("panic"))
	var re *socketbus.RemoteError
	if !errors.As(err, &re) || re.Message != "handler panicked: boom" {
		t.Fatalf("request whose handler panicked: got %v, want a *RemoteError %q", err, "handler panicked: boom")
	}
	got, err := roundTrip(ctx, requester, []byte("next"))
	if err != nil || string(got) != "NEXT" {
		t.Fatalf("request after the panic: got %q, %v; want %q", got, err, "NEXT")
	}
}

func TestServePanicMidResponseFailsRequest(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		_ = req.Respond(io.MultiReader(strings.NewReader(strings.Repeat("x", 200<<10)), panicReader{}))
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := roundTrip(ctx, requester, []byte("go"))
	var re *socketbus.RemoteError
	if !errors.As(err, &re) || re.Message != "handler panicked: reader panicked" {
		t.Fatalf("got %v, want a *RemoteError %q", err, "handler panicked: reader panicked")
	}
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("reader panicked") }

func TestServeUnansweredRequestFails(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := roundTrip(ctx, requester, []byte("anyone?"))
	var re *socketbus.RemoteError
	if !errors.As(err, &re) || re.Message != "handler returned without answering" {
		t.Fatalf("got %v, want a *RemoteError %q (not a timeout)", err, "handler returned without answering")
	}
}

func TestServeReturnsAfterRunningHandlers(t *testing.T) {
	srv, ch, responder, requester := serveClients(t, server.Config{})
	var runs atomic.Int32
	var returned atomic.Bool
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	stop, served := startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		runs.Add(1)
		started <- struct{}{}
		<-release
		_ = req.Respond(strings.NewReader("late"))
		returned.Store(true)
	}), socketbus.WithConcurrency(4))

	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := roundTrip(ctx, requester, []byte("first"))
		if err == nil && string(got) != "late" {
			err = errors.New("response " + string(got))
		}
		first <- err
	}()
	<-started
	waitReceivers(t, srv, ch, 3)
	stop()
	// The three idle workers withdraw their Receives; the busy one's
	// handler is still running.
	waitReceivers(t, srv, ch, 0)
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v while a handler was running", err)
	default:
	}
	// A request arriving now is not served.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := roundTrip(ctx, requester, []byte("after"))
	cancel()
	if !errors.Is(err, socketbus.ErrTimeout) {
		t.Errorf("request after Serve stopped: got %v, want ErrTimeout", err)
	}

	close(release)
	if err := waitServe(t, served); !errors.Is(err, context.Canceled) {
		t.Errorf("Serve returned %v, want context.Canceled", err)
	}
	if !returned.Load() {
		t.Errorf("Serve returned before its running handler did")
	}
	if err := <-first; err != nil {
		t.Errorf("the request in hand when Serve stopped: %v", err)
	}
	if got := runs.Load(); got != 1 {
		t.Errorf("handler ran %d times, want 1", got)
	}
}

func TestServeReturnsClientErrorOnClose(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	started := make(chan struct{}, 1)
	_, served := startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		started <- struct{}{}
		<-req.Context().Done() // ends when the client closes
	}))
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = roundTrip(ctx, requester, []byte("held"))
	}()
	<-started
	responder.Close()
	err := waitServe(t, served)
	if !errors.Is(err, socketbus.ErrClosed) || err != responder.Err() {
		t.Fatalf("Serve returned %v, want the client's error %v", err, responder.Err())
	}
}

func TestServeAndReceiveShareClient(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		started <- struct{}{}
		<-release
		_ = req.Respond(strings.NewReader("from Serve"))
	}), socketbus.WithConcurrency(1))

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	first := make(chan []byte, 1)
	go func() {
		got, _ := roundTrip(ctx, requester, []byte("1"))
		first <- got
	}()
	<-started // Serve's only worker is busy: the next request goes to Receive
	received := make(chan error, 1)
	go func() {
		req, err := responder.Receive(ctx)
		if err == nil {
			err = req.Respond(strings.NewReader("from Receive"))
		}
		received <- err
	}()
	got, err := roundTrip(ctx, requester, []byte("2"))
	if err != nil || string(got) != "from Receive" {
		t.Fatalf("second request: got %q, %v; want %q", got, err, "from Receive")
	}
	if err := <-received; err != nil {
		t.Fatalf("Receive: %v", err)
	}
	close(release)
	if got := <-first; string(got) != "from Serve" {
		t.Fatalf("first request: got %q, want %q", got, "from Serve")
	}
}

// TestServeStartsHandlersOnDemand: over push credit, an idle Serve holds
// one handler goroutine waiting, not one per unit of concurrency; under
// load it still runs n handlers at once.
func TestServeStartsHandlersOnDemand(t *testing.T) {
	srv, ch, responder, requester := serveClients(t, server.Config{})
	const n = 64
	before := runtime.NumGoroutine()
	started := make(chan struct{}, n)
	release := make(chan struct{})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		started <- struct{}{}
		<-release
		_ = req.Respond(strings.NewReader("done"))
	}), socketbus.WithConcurrency(n))
	free := releaseOnFailure(t, release)
	waitChannel(t, srv, ch, "Serve's push credit of n", func(c server.ChannelStats) bool {
		return c.ReceiversWaiting == n
	})
	if grew := runtime.NumGoroutine() - before; grew > 8 {
		t.Fatalf("an idle Serve with concurrency %d added %d goroutines, want a few", n, grew)
	}
	sent := roundTripsAtOnce(t, requester, n)
	waitStarted(t, started, n) // all n handlers run at once
	free()
	sent()
}

// releaseOnFailure returns a function that closes release once; the test's
// cleanup calls it too, before Serve's cleanup waits for the handlers
// blocked on release, so that a test failing while they block ends.
// Call it after startServe.
func releaseOnFailure(t *testing.T, release chan struct{}) (free func()) {
	var once sync.Once
	free = func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	return free
}

// roundTripsAtOnce starts count round trips from c, each with a 10 s
// deadline, and returns a function that waits for them all and reports
// each that failed.
func roundTripsAtOnce(t *testing.T, c *socketbus.Client, count int) (wait func()) {
	t.Helper()
	var sends sync.WaitGroup
	errs := make(chan error, count)
	for range count {
		sends.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := roundTrip(ctx, c, []byte("work"))
			errs <- err
		})
	}
	return func() {
		t.Helper()
		sends.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("request: %v", err)
			}
		}
	}
}

// waitStarted waits, for up to 10 seconds, for n handlers to say they
// started on started.
func waitStarted(t *testing.T, started <-chan struct{}, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := range n {
		select {
		case <-started:
		case <-timeout:
			t.Fatalf("%d of %d handlers started within 10s", i, n)
		}
	}
}
