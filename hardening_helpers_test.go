package socketbus_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"

	"github.com/socketbus/socketbus/internal/heapsample"
)

// Helpers for the hardening tests (hardening_*_test.go). They return errors
// instead of failing the test, so that worker goroutines can use them. The
// ones package server's hardening tests use too are in internal/testpeer.
var (
	hardDial         = testpeer.OpenSmall
	hardJoin         = testpeer.JoinSmall
	hardSettle       = testpeer.Settle
	hardLiveHeap     = heapsample.Live
	hardResponders   = testpeer.Responders
	hardStreamFrames = testpeer.WholeStream
)

// hardCounts tallies outcomes from many goroutines.
type hardCounts = testpeer.Counts

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
