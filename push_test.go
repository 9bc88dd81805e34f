package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestVersionsTalkThroughOneServer runs a version-1 and a version-2 client
// through one server, each as requester and as responder (Serve) of the
// other, with bodies that fit one frame and bodies that stream.
func TestVersionsTalkThroughOneServer(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	v1 := dial(t, addr, ch, socketbus.WithProtocolVersion(1))
	v2 := dial(t, addr, ch, socketbus.WithProtocolVersion(2))
	startServe(t, v1, echoUpper)
	startServe(t, v2, echoUpper)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, size := range []int{0, 5, 16 << 10, 300 << 10} {
		body := bytes.Repeat([]byte("ab"), size/2+1)[:size]
		for _, from := range []struct {
			name string
			c    *socketbus.Client
		}{{"v1 to v2", v1}, {"v2 to v1", v2}} {
			got, err := from.c.Call(ctx, body)
			if err != nil {
				t.Fatalf("%s, %d bytes: Call: got %v, want nil", from.name, size, err)
			}
			if !bytes.Equal(got, upper(body)) {
				t.Fatalf("%s, %d bytes: got %d bytes of response, want the %d-byte body upper-cased", from.name, size, len(got), size)
			}
		}
	}
}

// callAll sends n requests from c concurrently, each with body "i" padded
// with '-' to size bytes, and returns each one's response and error.
func callAll(ctx context.Context, c *socketbus.Client, n, size int) ([]string, []error) {
	resps, errs := make([]string, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := []byte(fmt.Sprint(i))
			body = append(body, bytes.Repeat([]byte("-"), max(size-len(body), 0))...)
			b, err := c.Call(ctx, body)
			resps[i], errs[i] = string(b), err
		})
	}
	wg.Wait()
	return resps, errs
}

// stalledReceiver dials a client whose Serve handlers never take a pushed
// request: its push hooks hold each at a gate that never opens, and send
// its ID on pushed (room for n). inA is the handler to serve with; ran
// counts its runs, which must stay at zero.
func stalledReceiver(t *testing.T, addr string, ch socketbus.ID, n int) (a *socketbus.Client, pushed chan socketbus.ID, ran *atomic.Int32, inA socketbus.Handler) {
	t.Helper()
	a = dial(t, addr, ch)
	pushed = make(chan socketbus.ID, n)
	socketbus.SetPushHooks(a, make(chan struct{}), pushed)
	ran = new(atomic.Int32)
	inA = socketbus.HandlerFunc(func(req *socketbus.Request) {
		ran.Add(1)
		_ = req.Respond(strings.NewReader("a"))
	})
	return a, pushed, ran, inA
}

// TestPushedRequestsReturned pushes requests to a Serve whose handlers
// cannot take them, then ends that Serve (its ctx, or Client.Close): every
// pushed request goes back to the server and is served by another
// receiver, once, and none runs in the first.
func TestPushedRequestsReturned(t *testing.T) {
	for _, tc := range []struct {
		how  string
		size int // the request body's size: one frame, or streamed past the 16 KiB a push forwards
	}{{"serve stops", 1}, {"client closes", 1}, {"serve stops", 100 << 10}, {"client closes", 100 << 10}} {
		how := tc.how
		t.Run(fmt.Sprintf("%s, %d bytes", how, tc.size), func(t *testing.T) {
			srv, addr := startServer(t, server.Config{})
			ch := socketbus.ChannelFromName(t.Name())
			const n = 4
			a, pushed, ranInA, inA := stalledReceiver(t, addr, ch, n)
			stopA, servedA := startServe(t, a, inA, socketbus.WithConcurrency(n))
			requester := dial(t, addr, ch)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			results := make(chan []error, 1)
			var resps []string
			go func() {
				var errs []error
				resps, errs = callAll(ctx, requester, n, tc.size)
				results <- errs
			}()
			for range n {
				<-pushed // all n are pushed to a and wait for a handler
			}
			if mem := srv.Stats().MemoryBytes; mem < n*wire.HeaderSize {
				t.Errorf("MemoryBytes with %d requests pushed ahead: got %d, want their retained copies counted", n, mem)
			}
			b := dial(t, addr, ch) // a peer, so the returned requests wait for it
			if how == "serve stops" {
				stopA()
				if err := waitServe(t, servedA); !errors.Is(err, context.Canceled) {
					t.Fatalf("Serve after its ctx ended: got %v, want context.Canceled", err)
				}
			} else {
				a.Close()
			}
			if got := socketbus.ReturnedCount(a); got != n {
				t.Fatalf("requests returned: got %d, want %d", got, n)
			}
			var ranInB atomic.Int32
			startServe(t, b, socketbus.HandlerFunc(func(req *socketbus.Request) {
				ranInB.Add(1)
				body, _ := io.ReadAll(req.Body)
				_ = req.Respond(strings.NewReader(fmt.Sprintf("b%s/%d", bytes.TrimRight(body, "-"), len(body))))
			}))
			errs := <-results
			for i, err := range errs {
				want := fmt.Sprintf("b%d/%d", i, max(tc.size, len(fmt.Sprint(i))))
				if err != nil || resps[i] != want {
					t.Errorf("request %d: got %q, %v; want %q from b", i, resps[i], err, want)
				}
			}
			if ranInA.Load() != 0 || ranInB.Load() != n {
				t.Errorf("handler runs: a %d, b %d; want 0 and %d", ranInA.Load(), ranInB.Load(), n)
			}
		})
	}
}

// TestNothingPushedToAClosingClient starts a Serve (or a Receive) on a
// client while its Close is under way, once the pushes are stopped and
// given back and before the connection drains: it must take no push credit
// and make no poll. A request the server handed the client then would reach
// a connection that stops reading, and fail at its sender with ErrPeerGone
// without a handler having run it (TestPushExactlyOnceUnderChurn's rare
// failure). Instead it must wait for the next receiver and run there, once.
func TestNothingPushedToAClosingClient(t *testing.T) {
	for _, how := range []string{"serve", "serve after a serve", "receive"} {
		t.Run(how, func(t *testing.T) {
			_, addr := startServer(t, server.Config{})
			ch := socketbus.ChannelFromName(t.Name())
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			a, pushed, ranInA, inA := stalledReceiver(t, addr, ch, 1)
			if how == "serve after a serve" {
				startServe(t, a, inA) // holds the push credit until Close stops it
			}
			b := dial(t, addr, ch) // a peer, so that the request waits for it
			requester := dial(t, addr, ch)
			result := make(chan string, 1)
			go func() {
				resp, err := requester.Call(ctx, []byte("x"))
				result <- fmt.Sprintf("%q %v", resp, err)
			}()
			if how == "serve after a serve" {
				<-pushed // to the first Serve, whose Close gives it back
			}

			served := make(chan error, 1) // the Serve started during Close
			var once sync.Once            // the first Close only: the test's cleanup closes a again
			socketbus.SetCloseHook(a, func() {
				once.Do(func() {
					if how == "receive" {
						if req, err := a.Receive(ctx); !errors.Is(err, socketbus.ErrClosed) {
							t.Errorf("Receive during Close: got %v, %v; want ErrClosed", req != nil, err)
						}
						return
					}
					go func() { served <- a.Serve(ctx, inA) }()
					select {
					case id := <-pushed:
						t.Errorf("request %x pushed to a Serve started during Close", id[:4])
					case err := <-served:
						served <- err // refused at once; checked below
					}
				})
			})
			a.Close()
			if how != "receive" {
				if err := waitServe(t, served); !errors.Is(err, socketbus.ErrClosed) {
					t.Errorf("Serve started during Close: got %v, want ErrClosed", err)
				}
			}
			if how == "serve after a serve" {
				if got := socketbus.ReturnedCount(a); got != 1 {
					t.Errorf("requests returned by the first Serve: got %d, want 1", got)
				}
			}

			var ranInB atomic.Int32
			startServe(t, b, socketbus.HandlerFunc(func(req *socketbus.Request) {
				ranInB.Add(1)
				_ = req.Respond(strings.NewReader("b"))
			}))
			if got, want := <-result, `"b" <nil>`; got != want {
				t.Errorf("the request: got %s, want %s", got, want)
			}
			if ranInA.Load() != 0 || ranInB.Load() != 1 {
				t.Errorf("handler runs: a %d, b %d; want 0 and 1", ranInA.Load(), ranInB.Load())
			}
		})
	}
}

// TestReturnsGoOutBeforeCloseDrains stops a Serve (its ctx) and closes its
// client at the same time, in the order that lost returns: the Serve's stop
// has emptied its queue of pushed requests (and given the credit up), and
// the Close, finding no credit to stop, drains the connection before the
// Serve has sent the returns. They must be on the connection by then, and
// the requests served by another receiver, once.
func TestReturnsGoOutBeforeCloseDrains(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	const n = 2
	a, pushed, ranInA, inA := stalledReceiver(t, addr, ch, n)
	stopA, servedA := startServe(t, a, inA, socketbus.WithConcurrency(n))
	b := dial(t, addr, ch) // a peer, so that the returned requests wait for it
	requester := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	results := make(chan []error, 1)
	var resps []string
	go func() {
		var errs []error
		resps, errs = callAll(ctx, requester, n, 1)
		results <- errs
	}()
	for range n {
		<-pushed
	}

	emptied, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	socketbus.SetEndPushHook(a, func() {
		once.Do(func() {
			close(emptied)
			<-resume
		})
	})
	stopA()
	<-emptied // the Serve's stop holds the requests it took from its queue
	a.Close()
	close(resume)
	if err := waitServe(t, servedA); !errors.Is(err, socketbus.ErrClosed) {
		t.Errorf("Serve stopped as its client closed: got %v, want ErrClosed", err)
	}
	if got := socketbus.ReturnedCount(a); got != n {
		t.Errorf("requests returned: got %d, want %d", got, n)
	}

	var ranInB atomic.Int32
	startServe(t, b, socketbus.HandlerFunc(func(req *socketbus.Request) {
		ranInB.Add(1)
		body, _ := io.ReadAll(req.Body)
		_ = req.Respond(strings.NewReader("b" + string(body)))
	}))
	for i, err := range <-results {
		if want := fmt.Sprintf("b%d", i); err != nil || resps[i] != want {
			t.Errorf("request %d: got %q, %v; want %q from b", i, resps[i], err, want)
		}
	}
	if ranInA.Load() != 0 || ranInB.Load() != n {
		t.Errorf("handler runs: a %d, b %d; want 0 and %d", ranInA.Load(), ranInB.Load(), n)
	}
}

// TestPushedMemoryReturnsToZero checks that bytes pushed ahead (retained
// at the server until taken) show in MemoryBytes and that the server's
// memory returns to zero once the clients have gone.
func TestPushedMemoryReturnsToZero(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	const n, size = 8, 8 << 10
	a := dial(t, addr, ch)
	gate := make(chan struct{})
	pushed := make(chan socketbus.ID, n)
	socketbus.SetPushHooks(a, gate, pushed)
	startServe(t, a, socketbus.HandlerFunc(func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		_ = req.Respond(bytes.NewReader(body))
	}), socketbus.WithConcurrency(n))
	requester := dial(t, addr, ch)
	base := srv.Stats().MemoryBytes
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, n)
	for range n {
		go func() {
			_, err := requester.Call(ctx, make([]byte, size))
			done <- err
		}()
	}
	for range n {
		<-pushed
	}
	if mem := srv.Stats().MemoryBytes; mem < base+n*size {
		t.Errorf("MemoryBytes with %d requests of %d bytes pushed ahead: got %d, want at least %d", n, size, mem, base+n*size)
	}
	close(gate) // the handlers take them
	for range n {
		if err := <-done; err != nil {
			t.Fatalf("Call: got %v, want nil", err)
		}
	}
	watch := testpeer.WatchServer(t, srv)
	a.Close()
	requester.Close()
	watch.Until(10*time.Second, func() bool {
		st := srv.Stats()
		return st.MemoryBytes == 0 && st.Connections == 0
	})
	if st := srv.Stats(); st.MemoryBytes != 0 {
		t.Errorf("MemoryBytes once the clients have gone: got %d, want 0", st.MemoryBytes)
	}
}

// TestPushFairness runs a slow and a fast receiver on one channel: the
// slow one must not hoard requests while the fast one is idle. With push
// credit equal to a receiver's idle handlers, the slow one takes one
// request per handler per slow turn, and the fast one the rest.
func TestPushFairness(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	const handlers, slowTurn, requests = 4, 20 * time.Millisecond, 400
	slow, fast := dial(t, addr, ch), dial(t, addr, ch)
	var slowN, fastN atomic.Int32
	startServe(t, slow, socketbus.HandlerFunc(func(req *socketbus.Request) {
		slowN.Add(1)
		time.Sleep(slowTurn) // the work of a slow receiver
		_ = req.Respond(nil)
	}), socketbus.WithConcurrency(handlers))
	startServe(t, fast, socketbus.HandlerFunc(func(req *socketbus.Request) {
		fastN.Add(1)
		_ = req.Respond(nil)
	}), socketbus.WithConcurrency(handlers))
	requester := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	var next atomic.Int32
	for range 16 {
		wg.Go(func() {
			for next.Add(1) <= requests {
				if _, err := requester.Call(ctx, []byte("x")); err != nil {
					t.Errorf("Call: got %v, want nil", err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// The slow receiver can have run at most one request per handler per
	// turn, plus the ones it started with.
	bound := int32(handlers*(elapsed/slowTurn+1)) + handlers
	t.Logf("%d requests in %v: slow %d, fast %d (slow's bound %d)", requests, elapsed, slowN.Load(), fastN.Load(), bound)
	if slowN.Load() > bound {
		t.Errorf("slow receiver ran %d requests in %v, want at most %d", slowN.Load(), elapsed, bound)
	}
	if fastN.Load() < requests/2 {
		t.Errorf("fast receiver ran %d of %d requests, want most of them", fastN.Load(), requests)
	}
}

// TestPushExactlyOnceUnderChurn sends requests from several clients while
// receivers start and stop Serve loops and close and redial at random, and
// counts every request's outcome by ID: each ends exactly once at its
// sender, none runs in two handlers, a response comes from the one handler
// that ran it, and one that fails with ErrPeerGone ran in a handler that
// its client's close cut short.
func TestPushExactlyOnceUnderChurn(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	const senders, perSender, churners = 4, 150, 3
	var (
		mu   sync.Mutex
		runs = map[string]int{}
	)
	handler := socketbus.HandlerFunc(func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		runs[string(body)]++
		mu.Unlock()
		if rand.IntN(4) == 0 {
			runtime.Gosched()
		}
		_ = req.Respond(bytes.NewReader(body))
	})
	// One steady receiver keeps the channel served.
	steady := dial(t, addr, ch)
	startServe(t, steady, handler, socketbus.WithConcurrency(2))

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stopChurn := make(chan struct{})
	var churn sync.WaitGroup
	var returned atomic.Int64
	for range churners {
		churn.Go(func() {
			for {
				select {
				case <-stopChurn:
					return
				default:
				}
				c, err := socketbus.Dial(ctx, addr, ch)
				if err != nil {
					t.Errorf("Dial: %v", err)
					return
				}
				for range 1 + rand.IntN(3) {
					sctx, scancel := context.WithCancel(ctx)
					served := make(chan error, 1)
					go func() { served <- c.Serve(sctx, handler, socketbus.WithConcurrency(1+rand.IntN(8))) }()
					// Let it take a few requests, then stop it or close.
					for range rand.IntN(200) {
						runtime.Gosched()
					}
					if rand.IntN(3) == 0 {
						c.Close()
						scancel()
						<-served
						break
					}
					scancel()
					if err := <-served; err != nil && !errors.Is(err, context.Canceled) {
						t.Errorf("Serve: got %v, want context.Canceled", err)
					}
				}
				c.Close()
				returned.Add(socketbus.ReturnedCount(c))
			}
		})
	}

	type outcome struct {
		resp string
		err  error
	}
	outcomes := make(map[string][]outcome)
	var omu sync.Mutex
	var sw sync.WaitGroup
	for s := range senders {
		c := dial(t, addr, ch)
		sw.Go(func() {
			for i := range perSender {
				id := fmt.Sprintf("%d-%d", s, i)
				resp, err := c.Call(ctx, []byte(id))
				omu.Lock()
				outcomes[id] = append(outcomes[id], outcome{string(resp), err})
				omu.Unlock()
			}
		})
	}
	sw.Wait()
	close(stopChurn)
	churn.Wait()

	mu.Lock()
	defer mu.Unlock()
	completed, gone := 0, 0
	for s := range senders {
		for i := range perSender {
			id := fmt.Sprintf("%d-%d", s, i)
			o := outcomes[id]
			switch {
			case len(o) != 1:
				t.Errorf("request %s: %d outcomes, want 1", id, len(o))
			case runs[id] > 1:
				t.Errorf("request %s ran in %d handlers, want 1", id, runs[id])
			case o[0].err == nil && (o[0].resp != id || runs[id] != 1):
				t.Errorf("request %s: response %q after %d runs, want %q after 1", id, o[0].resp, runs[id], id)
			case o[0].err == nil:
				completed++
			case errors.Is(o[0].err, socketbus.ErrPeerGone) && runs[id] == 1:
				gone++ // its handler's client closed under it
			default:
				t.Errorf("request %s: got %v after %d runs, want a response, or ErrPeerGone after 1 run", id, o[0].err, runs[id])
			}
		}
	}
	t.Logf("%d requests: %d completed, %d cut short by a close; %d returned by receivers that stopped", senders*perSender, completed, gone, returned.Load())
}

// TestSmallBodiesTravelInOneFrame counts the frames of a 128-byte round
// trip between v2 clients, and between v3 clients, through Serve: one
// frame on each of the four hops (request in, delivery, response in,
// response out) and no acknowledgements.
func TestSmallBodiesTravelInOneFrame(t *testing.T) {
	t.Run("v2", func(t *testing.T) { testSmallBodiesTravelInOneFrame(t, 2) })
	t.Run("v3", func(t *testing.T) { testSmallBodiesTravelInOneFrame(t, 3) })
}

func testSmallBodiesTravelInOneFrame(t *testing.T, version uint8) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	pa, pb := startRecordingProxy(t, addr), startRecordingProxy(t, addr)
	v := socketbus.WithProtocolVersion(version)
	a, b := dial(t, pa.addr(), ch, v), dial(t, pb.addr(), ch, v)
	ids := make(chan socketbus.ID, 1)
	startServe(t, b, socketbus.HandlerFunc(func(req *socketbus.Request) {
		ids <- req.ID
		echoUpper(req)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	body := bytes.Repeat([]byte("x"), 128)
	if got, err := a.Call(ctx, body); err != nil || !bytes.Equal(got, upper(body)) {
		t.Fatalf("Call: got %d bytes, %v; want the body upper-cased", len(got), err)
	}
	id := <-ids
	a.Close()
	b.Close()
	for _, hop := range []struct {
		name      string
		frames    []recordedFrame
		bodyBytes int
	}{
		{"request, client to server", streamFrames(pa.frames(t, true), id, wire.FlagRequest), 128},
		{"request pushed to the receiver", streamFrames(pb.frames(t, false), id, wire.FlagReceive), 16 + 128},
		{"response, receiver to server", streamFrames(pb.frames(t, true), id, wire.FlagResponse), 128},
		{"response, server to sender", streamFrames(pa.frames(t, false), id, wire.FlagResponse), 128},
	} {
		checkWholeStream(t, hop.name, hop.frames, version, hop.bodyBytes)
	}
	// Nothing else about the request travels: no acknowledgements.
	for _, f := range append(pa.frames(t, false), pb.frames(t, true)...) {
		if f.h.RequestID == id && f.h.Flags != wire.FlagResponse {
			t.Errorf("frame %v about the request besides its stream, want none", f.h)
		}
	}
}
