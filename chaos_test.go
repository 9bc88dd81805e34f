package socketbus_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// faultMode is what a faultConn does once its byte budget runs out.
type faultMode int

const (
	faultNone  faultMode = iota
	faultCut             // close the connection
	faultReset           // abort it with a TCP reset
	faultStall           // stop reading and writing until closed
)

// faultConn is a net.Conn that injects one fault after a random number of
// bytes have crossed it in either direction.
type faultConn struct {
	net.Conn
	mode   faultMode
	budget atomic.Int64
	once   sync.Once
	closed chan struct{}
	fired  atomic.Bool
}

func newFaultConn(c net.Conn, mode faultMode, budget int64) *faultConn {
	f := &faultConn{Conn: c, mode: mode, closed: make(chan struct{})}
	f.budget.Store(budget)
	return f
}

var errInjected = errors.New("injected fault")

// spend charges n bytes and reports whether the fault fires now.
func (f *faultConn) spend(n int) error {
	if f.mode == faultNone {
		return nil
	}
	if f.budget.Add(-int64(n)) > 0 && !f.fired.Load() {
		return nil
	}
	f.fired.Store(true)
	switch f.mode {
	case faultCut:
		f.Conn.Close()
		return errInjected
	case faultReset:
		if tc, ok := f.Conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		f.Conn.Close()
		return errInjected
	default: // stall until closed
		<-f.closed
		return net.ErrClosed
	}
}

func (f *faultConn) Read(p []byte) (int, error) {
	if f.fired.Load() {
		if err := f.spend(0); err != nil {
			return 0, err
		}
	}
	n, err := f.Conn.Read(p)
	if err == nil {
		if ferr := f.spend(n); ferr != nil && f.mode != faultStall {
			return n, nil // deliver what was read; the next call fails
		} else if ferr != nil {
			return 0, ferr
		}
	}
	return n, err
}

func (f *faultConn) Write(p []byte) (int, error) {
	if err := f.spend(len(p)); err != nil {
		return 0, err
	}
	return f.Conn.Write(p)
}

func (f *faultConn) Close() error {
	f.once.Do(func() { close(f.closed) })
	return f.Conn.Close()
}

// chaosDialer dials through a faultConn: most connections are healthy, the
// rest fail one of three ways after a random number of bytes.
func chaosDialer(rng *rand.Rand, mu *sync.Mutex) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		mode := faultMode(rng.IntN(4))
		if rng.IntN(2) == 0 {
			mode = faultNone
		}
		budget := int64(200 + rng.IntN(2<<20))
		mu.Unlock()
		return newFaultConn(c, mode, budget), nil
	}
}

// chaosRequest is a request body: the sender's nonce, then filler. The
// correct response is the SHA-256 of the whole body followed by the nonce.
func chaosBody(rng *rand.Rand) []byte {
	b := make([]byte, 16+rng.IntN(64<<10))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func chaosAnswer(body []byte) []byte {
	h := sha256.Sum256(body)
	return append(h[:], body[:min(16, len(body))]...)
}

// TestChaos runs 10,000 requests between 32 clients whose connections are
// cut, reset or stalled at random, with receivers that crash mid-response
// and senders that cancel, and ends with a graceful Shutdown. It checks:
// every Send returns within its timeout (plus a grace period); every
// successful response is the one for its own request; no request is
// answered by two receivers; nothing leaks (goleak in TestMain).
func TestChaos(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	srv, addr := startServer(t, server.Config{
		WriteTimeout: time.Second,
		PingInterval: 250 * time.Millisecond,
	})
	ch := socketbus.ChannelFromName("chaos")
	ctx, cancelAll := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelAll()

	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 7))
	dialer := chaosDialer(rng, &rngMu)
	// redial connects a new client, retrying until ctx ends (then it
	// returns a closed client, whose calls fail with ErrClosed).
	redial := func(ctx context.Context) *socketbus.Client {
		for {
			c, err := socketbus.Dial(ctx, addr, ch, socketbus.WithDialer(dialer),
				socketbus.WithPingInterval(250*time.Millisecond))
			if err == nil {
				return c
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}

	// Receivers: answer each request correctly, or crash part-way.
	var answeredMu sync.Mutex
	answered := map[socketbus.ID]int{}
	var crashes atomic.Int64
	rctx, stopReceivers := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	for i := range 16 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			local := rand.New(rand.NewPCG(uint64(i), 99))
			c := redial(rctx)
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for c != nil && rctx.Err() == nil {
				req, err := c.Receive(rctx)
				if err != nil {
					if rctx.Err() != nil {
						return
					}
					c.Close()
					c = redial(rctx)
					continue
				}
				body, err := io.ReadAll(req.Body)
				if err != nil {
					continue // cancelled, timed out or its sender left
				}
				answeredMu.Lock()
				answered[req.ID]++
				answeredMu.Unlock()
				answer := chaosAnswer(body)
				if local.IntN(20) == 0 {
					// Crash mid-response: half the answer, then the process
					// "dies" (the client closes).
					crashes.Add(1)
					go func(c *socketbus.Client) {
						req.Respond(io.MultiReader(bytes.NewReader(answer[:len(answer)/2]), blockUntilClosed{c}))
					}(c)
					c.Close()
					c = redial(rctx)
					continue
				}
				req.Respond(bytes.NewReader(answer))
			}
		}()
	}

	// Senders: 16 workers, each with its own client, redialled when it dies.
	const timeout = 3 * time.Second
	const grace = 5 * time.Second
	var tried, succeeded, violations atomic.Int64
	var kindsMu sync.Mutex
	kinds := map[string]int{}
	var swg sync.WaitGroup
	per := total / 16
	for i := range 16 {
		swg.Add(1)
		go func() {
			defer swg.Done()
			local := rand.New(rand.NewPCG(uint64(i), 1234))
			c := redial(ctx)
			defer func() { c.Close() }()
			for range per {
				body := chaosBody(local)
				sctx, cancel := context.WithTimeout(ctx, timeout)
				if local.IntN(10) == 0 {
					go cancel() // a sender that gives up at a random point
				}
				var out bytes.Buffer
				start := time.Now()
				err := c.Send(sctx, bytes.NewReader(body), &out)
				elapsed := time.Since(start)
				cancel()
				tried.Add(1)
				if elapsed > timeout+grace {
					violations.Add(1)
					t.Errorf("Send took %v, past its %v timeout", elapsed, timeout)
				}
				if err == nil {
					succeeded.Add(1)
					if !bytes.Equal(out.Bytes(), chaosAnswer(body)) {
						violations.Add(1)
						t.Errorf("a successful Send returned a response that is not its own")
					}
					continue
				}
				kindsMu.Lock()
				kinds[errorKind(err)]++
				kindsMu.Unlock()
				if errors.Is(err, socketbus.ErrClosed) {
					c.Close()
					c = redial(ctx)
				}
			}
		}()
	}
	swg.Wait()

	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	stopReceivers()
	rwg.Wait()

	answeredMu.Lock()
	for id, n := range answered {
		if n > 1 {
			violations.Add(1)
			t.Errorf("request %v was received by %d receivers", id, n)
		}
	}
	answeredMu.Unlock()
	var names []string
	for k := range kinds {
		names = append(names, k)
	}
	sort.Strings(names)
	summary := ""
	for _, k := range names {
		summary += fmt.Sprintf(" %s=%d", k, kinds[k])
	}
	t.Logf("chaos: tried %d, succeeded %d, receiver crashes %d, failed by kind:%s; violations %d",
		tried.Load(), succeeded.Load(), crashes.Load(), summary, violations.Load())
	if succeeded.Load() == 0 {
		t.Errorf("no request succeeded: the run proves nothing")
	}
}

// blockUntilClosed is a reader that blocks until the client closes, then
// fails: the rest of a response that a crashing receiver never writes.
type blockUntilClosed struct{ c *socketbus.Client }

func (b blockUntilClosed) Read([]byte) (int, error) {
	<-b.c.Done()
	return 0, errors.New("receiver crashed")
}

func errorKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{context.Canceled, "cancelled"}, {socketbus.ErrTimeout, "timeout"},
		{socketbus.ErrPeerGone, "peer_gone"}, {socketbus.ErrNoPeers, "no_peers"},
		{socketbus.ErrServerClosed, "server_closed"}, {socketbus.ErrClosed, "connection_lost"},
		{socketbus.ErrProtocol, "protocol"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	var re *socketbus.RemoteError
	if errors.As(err, &re) {
		return "remote"
	}
	return "other: " + err.Error()
}
