package socketbus_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"

	"github.com/socketbus/socketbus/internal/heapsample"
)

// Helpers for the hardening tests (hardening_*_test.go). They return errors
// instead of failing the test, so that worker goroutines can use them.

// hardIOTimeout bounds every read and write on a hardConn: a server that
// neither answers nor closes fails the test instead of hanging it.
const hardIOTimeout = 30 * time.Second

// hardConn is a raw TCP connection that speaks the wire protocol by hand.
type hardConn struct {
	nc      net.Conn
	br      *bufio.Reader
	id      socketbus.ID // the client ID it joins with
	channel socketbus.ID
}

// hardDial opens a TCP connection to addr without joining.
func hardDial(addr string) (*hardConn, error) {
	nc, err := net.DialTimeout("tcp", addr, hardIOTimeout)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Now().Add(hardIOTimeout))
	return &hardConn{nc: nc, br: bufio.NewReaderSize(nc, 512), id: uuid.New()}, nil
}

// hardJoin dials addr and joins channel with token, by hand.
func hardJoin(addr string, channel socketbus.ID, token string) (*hardConn, error) {
	c, err := hardDial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.join(channel, token); err != nil {
		c.nc.Close()
		return nil, err
	}
	return c, nil
}

// join sends a join frame and reads the acknowledgement.
func (c *hardConn) join(channel socketbus.ID, token string) error {
	c.channel = channel
	join := c.header(wire.TypeStart, wire.FlagJoin, uuid.New())
	join.Final = true
	if err := c.writeFrame(join, []byte(token)); err != nil {
		return err
	}
	h, p, err := c.next()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if h.Type == wire.TypeError {
		if e, perr := wire.ParseError(p); perr == nil {
			return fmt.Errorf("join refused: %v", e)
		}
	}
	if h.Type != wire.TypeStart || h.Flags != wire.FlagJoin || h.RequestID != join.RequestID {
		return fmt.Errorf("join answer: got %v, want the acknowledgement of %x", h, join.RequestID[:4])
	}
	return nil
}

// header returns a header from c for request id.
func (c *hardConn) header(typ wire.FrameType, flags wire.Flags, id socketbus.ID) wire.Header {
	return wire.Header{Version: wire.Version, Type: typ, Flags: flags, RequestID: id, ClientID: c.id, ChannelID: c.channel}
}

// writeFrame sends h and payload, with h.Length set to the payload's.
func (c *hardConn) writeFrame(h wire.Header, payload []byte) error {
	h.Length = uint32(len(payload))
	_, err := c.nc.Write(append(wire.AppendHeader(nil, &h), payload...))
	return err
}

// next reads one frame.
func (c *hardConn) next() (wire.Header, []byte, error) { return testpeer.ReadFrame(c.br) }

// nextNotPing reads one frame, skipping keepalive pings.
func (c *hardConn) nextNotPing() (wire.Header, []byte, error) {
	for {
		h, p, err := c.next()
		if err != nil || h.Flags != wire.FlagPing {
			return h, p, err
		}
	}
}

// errHardNoErrorFrame says the server closed without an error frame.
var errHardNoErrorFrame = errors.New("the connection ended without an error frame")

// refusal reads what a server says to a connection it throws out: one
// error frame, then the end of the stream (EOF, never a reset). It returns
// the error frame's header and code. Pings before the error frame are
// skipped; any other frame is an error.
func (c *hardConn) refusal() (wire.Header, wire.Code, error) {
	h, p, err := c.nextNotPing()
	if err == io.EOF {
		return h, 0, errHardNoErrorFrame
	}
	if err != nil {
		return h, 0, fmt.Errorf("waiting for the error frame: %w", err)
	}
	if h.Type != wire.TypeError {
		return h, 0, fmt.Errorf("got %v, want an error frame", h)
	}
	e, err := wire.ParseError(p)
	if err != nil {
		return h, 0, fmt.Errorf("error frame payload: %w", err)
	}
	if err := c.expectEOF(); err != nil {
		return h, e.Code, err
	}
	return h, e.Code, nil
}

// expectEOF reads until the server closes the connection; any frame but a
// ping, and any error but io.EOF, is an error.
func (c *hardConn) expectEOF() error {
	h, _, err := c.nextNotPing()
	switch {
	case err == io.EOF:
		return nil
	case err != nil:
		return fmt.Errorf("reading to the close: got %w, want EOF", err)
	}
	return fmt.Errorf("reading to the close: got frame %v, want EOF", h)
}

func (c *hardConn) Close() error { return c.nc.Close() }

// hardSettle waits until srv has no more open connections than
// baseConns and the process runs no more goroutines than baseGoroutines,
// or until timeout; it returns what it last saw. A test calls it once every
// connection it opened has read EOF, so the server has closed each socket;
// what remains is the server's connection goroutines dropping the
// connection from its count and returning, a few instructions later, which
// nothing signals. So it yields the processor to them; it never sleeps.
func hardSettle(srv *server.Server, baseConns, baseGoroutines int, timeout time.Duration) (conns, goroutines int) {
	deadline := time.Now().Add(timeout)
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

// poll sends a Receive with a fresh ID and returns once the server has
// registered it.
func (c *hardConn) poll() error {
	h := c.header(wire.TypeStart, wire.FlagReceive, uuid.New())
	h.Final = true
	if err := c.writeFrame(h, nil); err != nil {
		return err
	}
	return c.sync()
}

// sync returns once the server has handled every frame c sent before it:
// the server reads a connection's frames in order and answers a ping at
// once, so the pong comes after it has dealt with them. Frames that come
// before the pong are skipped; the connection ending is an error.
func (c *hardConn) sync() error {
	id := uuid.New()
	h := c.header(wire.TypeStart, wire.FlagPing, id)
	h.Final = true
	if err := c.writeFrame(h, nil); err != nil {
		return err
	}
	for {
		h, _, err := c.next()
		if err != nil {
			return fmt.Errorf("waiting for the pong: %w", err)
		}
		if h.Flags == wire.FlagPing && h.Type == wire.TypeEnd && h.RequestID == id {
			return nil
		}
	}
}

// receiveRequest reads a delivered request, start to end, and returns its
// ID and body.
func (c *hardConn) receiveRequest() (socketbus.ID, []byte, error) {
	h, p, err := c.nextNotPing()
	if err != nil {
		return socketbus.ID{}, nil, err
	}
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || len(p) != 16 {
		return socketbus.ID{}, nil, fmt.Errorf("got %v, want a delivered request's start", h)
	}
	id := h.RequestID
	var body []byte
	for {
		h, p, err := c.nextNotPing()
		if err != nil {
			return id, nil, err
		}
		if h.RequestID != id || h.Flags != wire.FlagReceive {
			return id, nil, fmt.Errorf("got %v, want a frame of request %x", h, id[:4])
		}
		if h.Type == wire.TypeEnd {
			return id, body, nil
		}
		if h.Type != wire.TypeChunk {
			return id, nil, fmt.Errorf("got %v inside request %x", h, id[:4])
		}
		body = append(body, p...)
	}
}

// hardResponseFrames encodes a whole response to request id, from client
// from on channel: start, one chunk with body, end.
func hardResponseFrames(from, channel, id socketbus.ID, body []byte) []byte {
	return hardStreamFrames(wire.FlagResponse, from, channel, id, body)
}

// hardStreamFrames encodes a whole stream with flags (a request or a
// response): start, one chunk with body, end.
func hardStreamFrames(flags wire.Flags, from, channel, id socketbus.ID, body []byte) []byte {
	h := wire.Header{Version: wire.Version, Type: wire.TypeStart, Flags: flags, RequestID: id, ClientID: from, ChannelID: channel}
	b := wire.AppendHeader(nil, &h)
	h.Type, h.Sequence, h.Length = wire.TypeChunk, 1, uint32(len(body))
	b = append(wire.AppendHeader(b, &h), body...)
	h.Type, h.Sequence, h.Final, h.Length = wire.TypeEnd, 2, true, 0
	return wire.AppendHeader(b, &h)
}
