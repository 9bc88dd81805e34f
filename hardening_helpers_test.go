package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"

	"github.com/socketbus/socketbus/internal/heapsample"
)

// Helpers for the hardening tests (hardening_*_test.go). They return errors
// instead of failing the test, so that worker goroutines can use them.

// hardDial opens a raw connection to addr without joining. Its reads and
// writes fail after 30 s; its read buffer is small, for tests that hold
// thousands of connections.
func hardDial(addr string) (*testpeer.Conn, error) {
	return testpeer.Open(addr, testpeer.Options{ReaderSize: 512})
}

// hardJoin dials addr and joins channel with token, by hand.
func hardJoin(addr string, channel socketbus.ID, token string) (*testpeer.Conn, error) {
	c, err := hardDial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.JoinChannel(channel, []byte(token)); err != nil {
		c.NC.Close()
		return nil, err
	}
	return c, nil
}

// hardSettle waits until srv has no more open connections than
// baseConns and the process runs no more goroutines than baseGoroutines,
// or until timeout; it returns what it last saw. A test calls it once every
// connection it opened has read EOF, so the server has closed each socket.
// The connections leaving Stats it waits for as events (testpeer.Watch);
// what remains then is their goroutines returning, a few instructions
// after, which no event can tell: for that alone it yields the processor
// until the count is down. It never sleeps.
func hardSettle(t testing.TB, srv *server.Server, baseConns, baseGoroutines int, timeout time.Duration) (conns, goroutines int) {
	deadline := time.Now().Add(timeout)
	testpeer.WatchServer(t, srv).Until(timeout, func() bool { return srv.Stats().Connections <= baseConns })
	for {
		conns, goroutines = srv.Stats().Connections, runtime.NumGoroutine()
		if conns <= baseConns && goroutines <= baseGoroutines || time.Now().After(deadline) {
			return conns, goroutines
		}
		runtime.Gosched()
	}
}

// hardLiveHeap collects garbage and returns the live heap in bytes.
func hardLiveHeap() uint64 { return heapsample.Live() }

// hardResponders runs n goroutines per client that answer every request
// they receive: with respond, or when it is nil with upper(body). Requests
// that end before their body is read (cancelled, peer gone) are skipped.
// stop ends them and waits.
func hardResponders(clients []*socketbus.Client, n int, respond func(req *socketbus.Request, body []byte)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, c := range clients {
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, err := c.Receive(ctx)
					if err != nil {
						if ctx.Err() != nil || errors.Is(err, socketbus.ErrClosed) {
							return
						}
						continue
					}
					body, err := io.ReadAll(req.Body)
					if err != nil {
						continue
					}
					if respond != nil {
						respond(req, body)
					} else {
						req.Respond(bytes.NewReader(upper(body)))
					}
				}
			}()
		}
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// hardLatencies runs rounds round trips from each requester, one at a
// time per requester, and returns their latencies sorted, or the first
// failure.
func hardLatencies(ctx context.Context, requesters []*socketbus.Client, rounds int) ([]time.Duration, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var first error
	var wg sync.WaitGroup
	for i, c := range requesters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				body := fmt.Sprintf("bystander %d round %d", i, r)
				start := time.Now()
				got, err := roundTrip(ctx, c, []byte(body))
				d := time.Since(start)
				if err == nil && !bytes.Equal(got, upper([]byte(body))) {
					err = fmt.Errorf("round trip: got %q, want %q", got, upper([]byte(body)))
				}
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				lat = append(lat, d)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat, first
}

// hardPercentile returns the p-th percentile (0 < p <= 100) of sorted.
func hardPercentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

// hardStallConn wraps a client's connection so a test can make its peer
// look stalled or dead. After stall is closed, Read blocks (bytes pile up
// in the socket) until release is closed or the connection is closed; when
// swallow is set as well, writes after the stall are dropped, so that the
// other side hears nothing: a half-open connection.
type hardStallConn struct {
	net.Conn
	swallow bool

	stall     chan struct{}
	release   chan struct{}
	closed    chan struct{}
	stallOnce sync.Once
	relOnce   sync.Once
	closeOnce sync.Once
}

func newHardStallConn(nc net.Conn, swallow bool) *hardStallConn {
	return &hardStallConn{Conn: nc, swallow: swallow,
		stall: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
}

// Stall makes the connection go quiet from now on.
func (c *hardStallConn) Stall() { c.stallOnce.Do(func() { close(c.stall) }) }

// Release lets blocked and later reads through again.
func (c *hardStallConn) Release() { c.relOnce.Do(func() { close(c.release) }) }

func (c *hardStallConn) stalled() bool {
	select {
	case <-c.stall:
		select {
		case <-c.release:
			return false
		default:
			return true
		}
	default:
		return false
	}
}

func (c *hardStallConn) Read(p []byte) (int, error) {
	if c.stalled() {
		select {
		case <-c.release:
		case <-c.closed:
			return 0, net.ErrClosed
		}
	}
	return c.Conn.Read(p)
}

func (c *hardStallConn) Write(p []byte) (int, error) {
	if c.swallow && c.stalled() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *hardStallConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// hardStallDialer returns a WithDialer option whose connections are
// hardStallConns, sent on conns as they are made. readBuffer, when
// positive, shrinks the socket's receive buffer so that a stalled reader
// pushes back on the server sooner.
func hardStallDialer(swallow bool, readBuffer int, conns chan<- *hardStallConn) socketbus.DialOption {
	return socketbus.WithDialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if readBuffer > 0 {
			nc.(*net.TCPConn).SetReadBuffer(readBuffer)
		}
		sc := newHardStallConn(nc, swallow)
		conns <- sc
		return sc, nil
	})
}

// hardCounts tallies outcomes from many goroutines.
type hardCounts struct {
	mu    sync.Mutex
	n     map[string]int
	first map[string]error
}

func (c *hardCounts) add(kind string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n, c.first = make(map[string]int), make(map[string]error)
	}
	c.n[kind]++
	if err != nil && c.first[kind] == nil {
		c.first[kind] = err
	}
}

func (c *hardCounts) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

// String lists the counts by kind, sorted, with each kind's first error.
func (c *hardCounts) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	kinds := make([]string, 0, len(c.n))
	for k := range c.n {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	var b bytes.Buffer
	for i, k := range kinds {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %d", k, c.n[k])
		if err := c.first[k]; err != nil {
			fmt.Fprintf(&b, " (first: %v)", err)
		}
	}
	return b.String()
}

// hardResponseFrames encodes a whole response to request id, from client
// from on channel: start, one chunk with body, end.
func hardResponseFrames(from, channel, id socketbus.ID, body []byte) []byte {
	return hardStreamFrames(wire.FlagResponse, from, channel, id, body)
}

// hardStreamFrames encodes a whole stream with flags (a request or a
// response): start, one chunk with body, end.
func hardStreamFrames(flags wire.Flags, from, channel, id socketbus.ID, body []byte) []byte {
	return testpeer.Stream(wire.Header{Version: wire.Version, Flags: flags, RequestID: id, ClientID: from, ChannelID: channel}, body)
}
