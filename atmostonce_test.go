package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// lateFailConn is a net.Conn whose write carrying the marked request puts
// the request's bytes on the wire and then fails, as a write cut off
// after the kernel took some of it does; it fails one write per arming.
// It offers no syscall.Conn, so the client writes through its writer
// goroutine.
type lateFailConn struct {
	net.Conn
	marker *atomic.Pointer[[]byte]
	armed  *atomic.Bool
}

var errLateWrite = errors.New("injected: the bytes went out, then the write failed")

func (c lateFailConn) Write(p []byte) (int, error) {
	if bytes.Contains(p, *c.marker.Load()) && c.armed.CompareAndSwap(true, false) {
		n, err := c.Conn.Write(p)
		if err != nil {
			return n, err
		}
		return n, errLateWrite
	}
	return c.Conn.Write(p)
}

// TestWriteThatFailsAfterItsBytesRunsOnce: a request whose write put its
// bytes on the wire and then failed may have reached a receiver. It is
// never sent again: the Call fails with ErrDisconnected and the handler
// runs at most once (the server may drop it with its sender's connection). (The writer recorded only writes that returned no error, so
// the request looked unsent, was sent again, ran twice and the Call
// succeeded.)
func TestWriteThatFailsAfterItsBytesRunsOnce(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := uuid.New()
	rc := testpeer.NewRunCounter()
	testpeer.CountingServe(t, dialReconnecting(t, addr, ch), rc, nil)

	const rounds = 50
	var marker atomic.Pointer[[]byte]
	var armed atomic.Bool
	none := []byte("no request is marked yet")
	marker.Store(&none)
	requester := dialReconnecting(t, addr, ch, socketbus.WithDialer(func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return lateFailConn{Conn: nc, marker: &marker, armed: &armed}, nil
	}))
	var succeeded, disconnected int
	for i := range rounds {
		body := []byte(fmt.Sprintf("late-write-%d", i))
		marker.Store(&body)
		armed.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := requester.Call(ctx, body)
		cancel()
		switch {
		case err == nil:
			// The response can beat the close to the reader: the
			// request ran, and it must have run once.
			succeeded++
			if n := rc.Count(string(body)); n != 1 {
				t.Errorf("round %d: Call succeeded, and its handler ran %d times", i, n)
			}
		case errors.Is(err, socketbus.ErrDisconnected):
			disconnected++
		default:
			t.Fatalf("round %d: Call: %v, want ErrDisconnected", i, err)
		}
		if armed.Load() {
			t.Fatalf("round %d: the write was never failed", i)
		}
	}
	ranOnce := 0
	for i := range rounds {
		if rc.Count(fmt.Sprintf("late-write-%d", i)) == 1 {
			ranOnce++
		}
	}
	twice := rc.Twice()
	t.Logf("%d rounds: %d Calls succeeded, %d ErrDisconnected; %d ran once, %d ran twice", rounds, succeeded, disconnected, ranOnce, len(twice))
	if len(twice) > 0 {
		t.Fatalf("ran twice: %v", twice)
	}
}

// failingRaw is a syscall.RawConn whose Write fails once armed, without
// writing: an inline write that fails.
type failingRaw struct {
	syscall.RawConn
	armed *atomic.Bool
}

var errInlineWrite = errors.New("injected: the inline write failed")

func (r failingRaw) Write(f func(fd uintptr) bool) error {
	if r.armed.Load() {
		return errInlineWrite
	}
	return r.RawConn.Write(f)
}

// rawFailConn is a TCP connection whose inline writes fail once armed.
type rawFailConn struct {
	*net.TCPConn
	armed *atomic.Bool
}

func (c rawFailConn) SyscallConn() (syscall.RawConn, error) {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return nil, err
	}
	return failingRaw{RawConn: rc, armed: c.armed}, nil
}

// TestFailedInlineWriteDoesNotHang: a Send writes its request inline,
// holding its send window's lock, and the write fails. The Call ends
// (ErrDisconnected: the bytes may have left) and Close returns. (The
// failing write closed the connection on the Send's goroutine, whose
// close callback ended every call, that Send's window too: the
// goroutine waited for the lock it held, and every later Call and Close
// hung.)
func TestFailedInlineWriteDoesNotHang(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := uuid.New()
	rc := testpeer.NewRunCounter()
	testpeer.CountingServe(t, dialReconnecting(t, addr, ch), rc, nil)
	var armed atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	requester, err := socketbus.Dial(ctx, addr, ch, fastReconnect, socketbus.WithDialer(func(ctx context.Context, network, a string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return rawFailConn{TCPConn: nc.(*net.TCPConn), armed: &armed}, nil
	}))
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if _, err := requester.Call(ctx, []byte("before")); err != nil {
		t.Fatalf("Call before the fault: %v", err)
	}
	armed.Store(true)
	called := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := requester.Call(ctx, []byte("inline"))
		called <- err
	}()
	select {
	case err := <-called:
		t.Logf("Call whose inline write failed: %v", err)
		if err == nil && rc.Count("inline") != 1 {
			t.Fatalf("Call succeeded, and the handler ran %d times", rc.Count("inline"))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Call whose inline write failed did not return within 30 s of its 5 s deadline")
	}
	armed.Store(false)
	closed := make(chan struct{})
	go func() { requester.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("Close after a failed inline write did not return")
	}
}

// cutDialer dials TCP and remembers the connection, so that a test can cut
// it from the client's side.
type cutDialer struct {
	mu   sync.Mutex
	conn net.Conn
}

func (d *cutDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conn = nc
	d.mu.Unlock()
	return nc, nil
}

func (d *cutDialer) cut() {
	d.mu.Lock()
	nc := d.conn
	d.mu.Unlock()
	if nc != nil {
		nc.Close()
	}
}

// churnDuration is how long TestChurnRunsNothingTwice cuts the sender's
// socket: 10 s without the race detector, less with it or with -short.
func churnDuration() time.Duration {
	switch {
	case testing.Short():
		return 2 * time.Second
	case hardRace:
		return 5 * time.Second
	}
	return 10 * time.Second
}

// TestChurnRunsNothingTwice: 16 workers Call through a sender whose
// socket the test cuts every 20–80 ms. No request runs twice, every Call
// that succeeded ran exactly once, and no Call or Close hangs. (Before:
// 2–4 of about 38,000 ran twice in 4 s, and the client could deadlock.)
func TestChurnRunsNothingTwice(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := uuid.New()
	rc := testpeer.NewRunCounter()
	testpeer.CountingServe(t, dialReconnecting(t, addr, ch), rc, nil)
	var d cutDialer
	sender := dialReconnecting(t, addr, ch, socketbus.WithDialer(d.dial))

	run := churnDuration()
	stop := make(chan struct{})
	cutterDone := make(chan struct{})
	go func() {
		defer close(cutterDone)
		t := time.NewTimer(time.Duration(20+rand.IntN(61)) * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d.cut()
				t.Reset(time.Duration(20+rand.IntN(61)) * time.Millisecond)
			}
		}
	}()
	const workers = 16
	type tally struct{ ok, disconnected, notDelivered, other int }
	results := make(chan tally, workers)
	var okBodies, disconnectedBodies sync.Map
	end := time.Now().Add(run)
	for w := range workers {
		go func() {
			var tl tally
			for i := 0; time.Now().Before(end); i++ {
				body := fmt.Sprintf("churn-%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, err := sender.Call(ctx, []byte(body))
				cancel()
				switch {
				case err == nil:
					tl.ok++
					okBodies.Store(body, true)
				case errors.Is(err, socketbus.ErrDisconnected):
					tl.disconnected++
					disconnectedBodies.Store(body, true)
				case errors.Is(err, socketbus.ErrNotDelivered):
					tl.notDelivered++
				default:
					tl.other++
					t.Errorf("Call %s: %v", body, err)
				}
			}
			results <- tl
		}()
	}
	var total tally
	deadline := time.NewTimer(run + 60*time.Second)
	defer deadline.Stop()
	for range workers {
		select {
		case tl := <-results:
			total.ok += tl.ok
			total.disconnected += tl.disconnected
			total.notDelivered += tl.notDelivered
			total.other += tl.other
		case <-deadline.C:
			t.Fatalf("a Call hung: the workers did not finish within 60 s of the churn's end")
		}
	}
	close(stop)
	<-cutterDone
	okBodies.Range(func(k, _ any) bool {
		if n := rc.Count(k.(string)); n != 1 {
			t.Errorf("Call %s succeeded, and its handler ran %d times", k, n)
		}
		return true
	})
	closed := make(chan struct{})
	go func() { sender.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatalf("Close hung after the churn")
	}
	disconnectedRan := 0
	disconnectedBodies.Range(func(k, _ any) bool {
		if rc.Count(k.(string)) > 0 {
			disconnectedRan++
		}
		return true
	})
	twice := rc.Twice()
	t.Logf("%v of churn: %d Calls succeeded, %d ErrDisconnected (%d of them had run by the end), %d ErrNotDelivered, %d other; %d ran twice",
		run, total.ok, total.disconnected, disconnectedRan, total.notDelivered, total.other, len(twice))
	if len(twice) > 0 {
		t.Fatalf("requests ran twice: %v", twice)
	}
}

// TestDrainCutShortRunsNothingTwice: a Shutdown whose context ends while
// a handler holds a request, then a new server on the same address, 20
// rounds. The request had reached a receiver before the drain began, so
// it is not sent again: it runs once, and the Call fails with
// ErrDisconnected. (The client took "the server said it was draining" for
// "nothing written before was taken", sent the request again after the
// restart, and it ran twice — under a new ID when no_peers had met it
// first.)
func TestDrainCutShortRunsNothingTwice(t *testing.T) {
	// A drain is cut short by its own timeout (serve --drain-timeout), or
	// by a Close while it waits, as serve's second signal ends the
	// process: either way the clients get no goodbye.
	for _, cut := range []struct {
		name string
		cut  func(t *testing.T, srv *server.Server, draining <-chan struct{})
	}{
		{"timeout", func(t *testing.T, srv *server.Server, _ <-chan struct{}) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
			defer cancel()
			if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: %v, want it cut short", err)
			}
		}},
		{"second signal", func(t *testing.T, srv *server.Server, draining <-chan struct{}) {
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(context.Background()) }()
			<-draining // the requester has read the drain notice
			srv.Close()
			<-shut // whatever it says: what counts is what the clients saw
		}},
	} {
		t.Run(cut.name, func(t *testing.T) { drainCutShort(t, cut.cut) })
	}
}

func drainCutShort(t *testing.T, cut func(t *testing.T, srv *server.Server, draining <-chan struct{})) {
	server := newRestartable(t)
	ch := uuid.New()
	rc := testpeer.NewRunCounter()
	responder := dialReconnecting(t, server.addr, ch)
	testpeer.CountingServe(t, responder, rc, func(req *socketbus.Request, body string, run int) {
		if run == 1 {
			<-req.Context().Done() // held until its connection goes
		}
	})
	draining := make(chan struct{}, 1)
	requester := dialReconnecting(t, server.addr, ch, socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
		if ev.State == socketbus.ConnectionDraining {
			select {
			case draining <- struct{}{}:
			default:
			}
		}
	}))
	const rounds = 20
	var disconnected int
	for i := range rounds {
		body := fmt.Sprintf("drain-%d", i)
		got := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			_, err := requester.Call(ctx, []byte(body))
			got <- err
		}()
		select {
		case <-rc.Started(body):
		case err := <-got:
			t.Fatalf("round %d: Call returned %v before its handler ran", i, err)
		}
		select { // a notice left from the round before
		case <-draining:
		default:
		}
		cut(t, server.srv, draining)
		server.stop(false)
		server.start()
		err := <-got
		if err == nil || !errors.Is(err, socketbus.ErrDisconnected) {
			t.Errorf("round %d: Call: %v, want ErrDisconnected", i, err)
		} else {
			disconnected++
		}
		if n := rc.Count(body); n != 1 {
			t.Errorf("round %d: the handler ran %d times, want once", i, n)
		}
	}
	t.Logf("%d drains cut short: %d Calls ErrDisconnected, %d requests ran twice", rounds, disconnected, len(rc.Twice()))
}

// TestSendsRacingShutdownAreNotDelivered: without reconnecting, Sends
// racing a graceful Shutdown that the server refused, or wrote after its
// drain notice, fail with ErrNotDelivered (safe to retry): only a request
// whose handler ran may end ErrDisconnected. No Send outlives its
// deadline by more than a margin. (Before: 331–1,068 of 1,200 Sends per
// round failed with ErrDisconnected.)
func TestSendsRacingShutdownAreNotDelivered(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	ch := uuid.New()
	rc := testpeer.NewRunCounter()
	testpeer.CountingServe(t, dial(t, addr, ch), rc, func(req *socketbus.Request, body string, _ int) {
		if strings.HasPrefix(body, "slow-") {
			<-req.Context().Done() // held until its sender's deadline
		}
	})
	sender := dial(t, addr, ch)
	const workers, each = 16, 75
	type outcome struct {
		body string
		err  error
		late time.Duration
	}
	out := make(chan outcome, workers*each+8)
	begin := make(chan struct{})
	warmed := make(chan struct{}) // 100 Calls have succeeded: Shutdown races the rest
	var succeeded atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-begin
			for i := range each {
				body := fmt.Sprintf("racing-%d-%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := sender.Call(ctx, []byte(body))
				dl, _ := ctx.Deadline()
				cancel()
				if err == nil && succeeded.Add(1) == 100 {
					close(warmed)
				}
				out <- outcome{body, err, time.Since(dl)}
			}
		})
	}
	// Requests their handlers hold until their deadline ends them, during
	// the Shutdown, which waits for them.
	const slow = 8
	for k := range slow {
		wg.Go(func() {
			body := fmt.Sprintf("slow-%d", k)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := sender.Call(ctx, []byte(body))
			dl, _ := ctx.Deadline()
			cancel()
			out <- outcome{body, err, time.Since(dl)}
		})
		<-rc.Started(fmt.Sprintf("slow-%d", k))
	}
	close(begin)
	<-warmed
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	wg.Wait()
	close(out)
	var ok, timedOut, notDelivered, disconnectedRan, disconnectedUnrun, other int
	var latest time.Duration
	for o := range out {
		latest = max(latest, o.late)
		switch {
		case o.err == nil:
			ok++
		case errors.Is(o.err, socketbus.ErrTimeout) && strings.HasPrefix(o.body, "slow-"):
			timedOut++
		case errors.Is(o.err, socketbus.ErrNotDelivered) && !errors.Is(o.err, socketbus.ErrDisconnected):
			notDelivered++
			if n := rc.Count(o.body); n != 0 {
				t.Errorf("%s: ErrNotDelivered, but its handler ran %d times", o.body, n)
			}
		case errors.Is(o.err, socketbus.ErrDisconnected) && rc.Count(o.body) > 0:
			disconnectedRan++
		case errors.Is(o.err, socketbus.ErrDisconnected):
			disconnectedUnrun++
			if disconnectedUnrun <= 3 {
				t.Logf("%s: %v", o.body, o.err)
			}
		default:
			other++
			if other <= 5 {
				t.Errorf("%s: %v", o.body, o.err)
			}
		}
	}
	t.Logf("%d Sends racing Shutdown: %d succeeded, %d held ones timed out, %d ErrNotDelivered, %d ErrDisconnected after their handler ran, %d ErrDisconnected unrun, %d other; latest return %v after its deadline",
		workers*each+slow, ok, timedOut, notDelivered, disconnectedRan, disconnectedUnrun, other, latest.Round(time.Millisecond))
	if disconnectedUnrun > 0 || other > 0 {
		t.Fatalf("%d Sends whose request never ran failed with ErrDisconnected, %d with another error; want ErrNotDelivered", disconnectedUnrun, other)
	}
	if latest > 2*time.Second {
		t.Fatalf("a Send returned %v after its deadline", latest)
	}
}

// blackholeConn swallows every write once armed, as a connection whose
// peer has gone and whose loss the client has not noticed yet does.
type blackholeConn struct {
	net.Conn
	armed     *atomic.Bool
	swallowed chan struct{} // told of each write swallowed
}

func (c blackholeConn) Write(p []byte) (int, error) {
	if c.armed.Load() {
		select {
		case c.swallowed <- struct{}{}:
		default:
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// TestServeStopsWhenItsStopIsLost: a Serve whose stop went out on a
// connection that is then lost returns: nothing more can be pushed from
// that connection, and the stopping Serve grants nothing on the next.
// (It waited for ever for the server's answer to the stop; Close and the
// test's cleanup hung with it.)
func TestServeStopsWhenItsStopIsLost(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := uuid.New()
	var armed atomic.Bool
	swallowed := make(chan struct{}, 1)
	var d cutDialer
	responder := dialReconnecting(t, addr, ch, socketbus.WithDialer(func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := d.dial(ctx, network, a)
		if err != nil {
			return nil, err
		}
		return blackholeConn{Conn: nc, armed: &armed, swallowed: swallowed}, nil
	}))
	rc := testpeer.NewRunCounter()
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- responder.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			rc.Ran("x")
			_ = req.Respond(strings.NewReader("ok"))
		}))
	}()
	requester := dialReconnecting(t, addr, ch)
	callCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := requester.Call(callCtx, []byte("x")); err != nil {
		t.Fatalf("Call: %v", err)
	}
	armed.Store(true)
	stop()
	<-swallowed // the stop went nowhere
	armed.Store(false)
	d.cut() // and its connection is lost
	select {
	case err := <-served:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Serve: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve did not return 30 s after its stop was lost with its connection")
	}
}
