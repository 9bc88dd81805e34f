package socketbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/socketbus/socketbus/internal/wire"
)

// linkState is the state of a Client's connection, guarded by Client.mu.
// Whoever changes it calls changedLocked, which wakes every call waiting
// for the connection (waitUp).
type linkState struct {
	addr      string    // the server of the current connection
	addrIndex int       // its place in Client.addrs
	gen       uint64    // the current connection's number, from 1
	connected bool      // the current connection is live
	draining  bool      // its server said it is shutting down
	dialing   bool      // redial is running: a reconnect, or a move on a drain notice
	closing   bool      // Close was called
	since     time.Time // when the current connection joined
	changed   chan struct{}
	stop      chan struct{} // closed when the client stops for good: ends the reconnect loop and the event queue
	stopOnce  sync.Once
}

func (l *linkState) init(addr string) {
	l.addr, l.gen, l.connected, l.since = addr, 1, true, time.Now()
	l.changed = make(chan struct{})
	l.stop = make(chan struct{})
}

func (l *linkState) changedLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// errResend ends a send attempt whose request no receiver has seen, so
// that Send sends it again, with the same ID, on the next connection.
var errResend = errors.New("socketbus: re-send on the next connection")

// errRetryHere ends a send attempt refused with no_peers just after a
// reconnect: the channel's other members may still be reconnecting, so
// Send tries again on the same connection after a pause.
var errRetryHere = errors.New("socketbus: re-send after a pause")

// peersMayBeReconnecting reports whether a no_peers refusal may only mean
// that the channel's other members have not reconnected yet: the client
// reconnected less than twice the policy's MaxDelay (at least a second)
// ago.
func (c *Client) peersMayBeReconnecting() bool {
	if !c.reconnects() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link.gen > 1 && time.Since(c.link.since) < max(2*c.opts.reconnect.MaxDelay, time.Second)
}

// pause waits a jittered MinDelay, or until ctx ends or the client stops.
func (c *Client) pause(ctx context.Context) error {
	d := c.opts.reconnect.MinDelay
	t := time.NewTimer(d/2 + rand.N(d/2+1))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctxError(ctx)
	case <-c.link.stop:
		return c.closedErr()
	}
}

// reconnects reports whether the client reconnects when its connection is
// lost.
func (c *Client) reconnects() bool { return c.opts.reconnect.MaxAttempts > 0 }

// waitUp waits until the client has a live connection whose number is
// above after and that is not draining (a client that does not reconnect
// sends to a draining server all the same, and is refused), and returns
// its number. It
// fails with ctx's error, or the client's once it has closed.
func (c *Client) waitUp(ctx context.Context, after uint64) (uint64, error) {
	for {
		c.mu.Lock()
		if c.err != nil || c.link.closing {
			c.mu.Unlock()
			return 0, c.closedErr()
		}
		if c.link.connected && (!c.link.draining || !c.reconnects()) && c.link.gen > after {
			gen := c.link.gen
			c.mu.Unlock()
			return gen, nil
		}
		changed := c.link.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, ctxError(ctx)
		}
	}
}

// connClosed is each connection's OnClose. It may run on a goroutine that
// is writing inline and holds a Send's window lock (see
// frameconn.Conn.SetOnClose), so it only marks the connection lost, and
// afterLoss (the current connection) or afterRetiredLoss (one the client
// moved away from), on a goroutine of its own, does the rest.
func (c *Client) connClosed(cc *clientConn, err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	current := c.conn.Load() == cc
	if current {
		c.link.connected = false
		c.link.changedLocked()
	} else if _, ok := c.retired[cc]; !ok {
		c.mu.Unlock()
		return
	}
	if c.link.closing {
		c.mu.Unlock()
		return // Close finishes the client
	}
	c.wg.Add(1) // counted before Close can wait for it
	c.mu.Unlock()
	if current {
		go c.afterLoss(cc, err)
	} else {
		go c.afterRetiredLoss(cc, err)
	}
}

// afterLoss runs once for the current connection when it has closed,
// unless Close closed it. It first waits until the connection's reader
// and writers have stopped, so that what the client knows of each request
// (its deliveryFacts) is final: no frame is taken for writing and nothing
// is read after the decision. Then it either ends the client (reconnecting
// turned off), deciding each call, or sorts what was in flight on the
// connection (settle) and reconnects. Waiting Receive calls wait on:
// their polls are made again on the next connection.
func (c *Client) afterLoss(cc *clientConn, err error) {
	defer c.wg.Done()
	lost := c.stopped(cc, err)
	if h := hooksFor(c); h != nil && h.loss != nil {
		h.loss()
	}
	if !c.reconnects() {
		c.finish(lost) // each call's verdict: sendCall.lostError
		return
	}
	c.mu.Lock()
	calls, held := c.dropConnLocked(cc)
	// A move may have put a new connection in cc's place since cc closed
	// (its install found cc lost, so did not retire it): then the client
	// is connected, and neither a reconnect nor the event is due.
	replaced := c.conn.Load() != cc
	dial := !replaced && !c.link.dialing // else a move is under way, and goes on as the reconnect
	if dial {
		c.link.dialing = true
	}
	c.mu.Unlock()
	settle(calls, held, lost)
	if replaced {
		return
	}
	c.events.emit(ConnectionEvent{State: ConnectionLost, Addr: cc.addr, Err: err})
	if dial {
		c.redial(err)
	}
}

// afterRetiredLoss runs once for a retired connection when it has closed,
// unless Close closed it: normally after its server's drain, when it
// carries nothing more. What it still carried is sorted as afterLoss
// sorts it; the client's current connection is not touched.
func (c *Client) afterRetiredLoss(cc *clientConn, err error) {
	defer c.wg.Done()
	lost := c.stopped(cc, err)
	c.mu.Lock()
	delete(c.retired, cc)
	calls, held := c.dropConnLocked(cc)
	c.mu.Unlock()
	settle(calls, held, lost)
}

// stopped waits until cc's reader and writers have stopped and returns
// the error its requests are lost with. After the goodbye of a complete
// drain, every Send still open on it was never read by the server.
func (c *Client) stopped(cc *clientConn, err error) error {
	cc.conn.Wait()
	cc.conn.WaitWrites()
	if cc.goodbye.Load() {
		c.mu.Lock()
		for _, call := range c.sends {
			if call.cc == cc {
				call.delivery.drained.Store(true)
			}
		}
		c.mu.Unlock()
	}
	return fmt.Errorf("%w: %w", ErrDisconnected, err)
}

// settle ends what a closed connection carried, lost with lost:
//   - a Send whose request no receiver can have had (deliveryFacts.decide)
//     and whose body can be replayed is sent again on the next
//     connection, under the same ID;
//   - one that no receiver can have had but that cannot be replayed fails
//     with ErrNotDelivered;
//   - one that may have reached a receiver fails with ErrDisconnected;
//   - requests this client held are aborted with ErrDisconnected (their
//     senders get ErrPeerGone from the server).
func settle(calls []*sendCall, held []*Request, lost error) {
	for _, call := range calls {
		switch v := call.delivery.decide(call.replayable.Load()); v {
		case notDelivered:
			call.finish(fmt.Errorf("socketbus: send: %w: the connection was lost before any receiver had it, and its body cannot be replayed (%v)", ErrNotDelivered, lost))
		default:
			call.finish(verdictError(v, lost))
		}
	}
	for _, r := range held {
		r.abort(lost)
	}
}

// redial dials the client's servers in turn, starting after the current
// connection's, with jittered exponential backoff, until one takes the
// join. It runs after a loss (afterLoss), or on a drain notice when the
// client can move (serverDraining), with the draining connection still
// open: then it skips the draining server, and its dials do not count
// against the policy's attempts, for the client is not disconnected. Once
// the draining connection has closed, it is a reconnect like any other,
// which gives up after the policy's attempts.
func (c *Client) redial(cause error) {
	p := c.opts.reconnect
	delay := p.MinDelay
	last := cause
	c.mu.Lock()
	from := c.link.addrIndex
	c.mu.Unlock()
	next, attempts := from, 0
	for dials := 1; ; dials++ {
		if dials > 1 {
			t := time.NewTimer(delay/2 + rand.N(delay/2+1))
			select {
			case <-t.C:
			case <-c.link.stop:
				t.Stop()
				return
			}
			delay = min(2*delay, p.MaxDelay)
		}
		c.mu.Lock()
		moving := c.link.connected // the draining connection is still open
		if !moving {
			attempts++
		}
		if c.link.closing {
			c.mu.Unlock()
			return // Close finishes the client
		}
		if attempts > p.MaxAttempts {
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		next = (next + 1) % len(c.addrs)
		if moving && next == from {
			next = (next + 1) % len(c.addrs) // not the draining server again
		}
		addr := c.addrs[next]
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-c.link.stop:
			case <-ctx.Done():
			}
			cancel()
		}()
		nc, settings, err := c.connect(ctx, addr)
		cancel()
		if err != nil {
			last = err
			if errors.Is(err, ErrUnauthorized) {
				c.mu.Lock()
				moving := c.link.connected
				if moving {
					// No move; the draining connection's loss starts a
					// reconnect, which meets the refusal again and gives up.
					c.link.dialing = false
				}
				c.mu.Unlock()
				if moving {
					return
				}
				break // the server will not have us back
			}
			continue
		}
		if h := hooksFor(c); h != nil && h.install != nil {
			h.install()
		}
		if c.install(nc, addr, next, settings.window) {
			c.events.emit(ConnectionEvent{State: ConnectionRestored, Addr: addr, Attempt: dials})
		}
		return
	}
	err := fmt.Errorf("%w: gave up reconnecting after %d attempts: %w", ErrDisconnected, p.MaxAttempts, last)
	c.events.emit(ConnectionEvent{State: ConnectionGaveUp, Err: err})
	c.link.stopOnce.Do(func() { close(c.link.stop) })
	c.finish(err)
}

// install makes nc, joined to addrs[idx] with the stream window window,
// the client's current connection, retiring the current one if it is
// still open (a move), and moves the waiting Receives' polls and a
// Serve's push credit onto it. It reports false when the client is
// closing, and nc is closed.
func (c *Client) install(nc net.Conn, addr string, idx int, window int) bool {
	c.mu.Lock()
	c.link.dialing = false
	if c.link.closing {
		c.mu.Unlock()
		nc.Close()
		return false
	}
	old := c.conn.Load()
	var back []*Request
	if c.link.connected {
		back = c.retireLocked(old)
	}
	clear(c.polls) // made on the old connection, which refuses or lost them
	cc := c.newConn(nc, addr, idx, old.gen+1, window)
	c.link.addr, c.link.addrIndex = addr, idx
	c.link.gen = cc.gen
	c.link.connected, c.link.draining = true, false
	c.link.since = time.Now()
	for range c.waiters {
		_ = c.pollLocked() // the waiting Receives' polls, again
	}
	if c.push != nil {
		c.regrantLocked(c.push) // and a Serve's push credit
	}
	c.link.changedLocked()
	// Started in the same hold of mu that made it current: a close from
	// now on finds it started, and afterLoss can wait for its goroutines.
	c.start(cc)
	c.mu.Unlock()
	for _, r := range back {
		r.dropReturned()
	}
	return true
}

// serverDraining handles a drain notice, or a refusal that says the
// server is shutting down, read on cc. On the current connection, new
// requests wait for the next one: a client that can move (canMove) starts
// joining another server at once, and one that cannot waits for this
// server's restart or another, once this connection has closed.
func (c *Client) serverDraining(cc *clientConn) {
	c.mu.Lock()
	if c.conn.Load() != cc || c.link.closing {
		c.mu.Unlock()
		return // a retired connection: the client has moved already
	}
	already := c.link.draining
	c.link.draining = true
	c.link.changedLocked()
	move := !already && c.link.connected && !c.link.dialing && c.canMove()
	if move {
		c.link.dialing = true
		c.wg.Add(1)
	}
	c.mu.Unlock()
	if !already {
		c.events.emit(ConnectionEvent{State: ConnectionDraining, Addr: cc.addr})
	}
	if move {
		go func() {
			defer c.wg.Done()
			c.redial(nil)
		}()
	}
}

// eventQueue hands connection events to the application's hook, in order,
// from a goroutine of its own, so that no connection goroutine waits on
// the hook. It holds 64 events; more are dropped while the hook is slow.
type eventQueue struct {
	ch   chan ConnectionEvent
	hook func(ConnectionEvent)
}

func newEventQueue(hook func(ConnectionEvent), wg *sync.WaitGroup, stop <-chan struct{}) *eventQueue {
	q := &eventQueue{ch: make(chan ConnectionEvent, 64), hook: hook}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case ev := <-q.ch:
				q.hook(ev)
			case <-stop:
				for {
					select {
					case ev := <-q.ch:
						q.hook(ev)
					default:
						return
					}
				}
			}
		}
	}()
	return q
}

func (q *eventQueue) emit(ev ConnectionEvent) {
	if q == nil {
		return
	}
	select {
	case q.ch <- ev:
	default:
	}
}

// drainPingID is the request ID of the ping with which a server says it is
// shutting down (wire.DrainPingID).
var drainPingID = wire.DrainPingID
