package socketbus

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// Client is one client of a bus, joined to one channel, over one
// connection at a time: when the connection is lost it reconnects (see
// ReconnectPolicy and the package documentation). It is safe for
// concurrent use: any number of Sends and Receives may be in flight at
// once, each an independent stream.
type Client struct {
	id         ID
	key        []byte // the client key sent with every join, or nil (PROTOCOL.md §7)
	channel    ID
	maxMessage int64 // the server's body limit, from the first join; 0 = none
	callLimit  int64 // the longest response Call accepts
	opts       dialOptions
	addrs      []string // Dial's addr, then WithServers'

	conn atomic.Pointer[clientConn] // the current connection, live or lost; replaced under mu
	// pushLimit is the server's limit on the polls, held requests and
	// push credit of one connection, from the last join's answer (0: not
	// announced): Serve's push credit stays within it (PROTOCOL.md §7).
	pushLimit atomic.Int64

	mu      sync.Mutex
	sends   map[ID]*sendCall // Sends in flight, by request ID
	held    map[ID]*Request  // requests received and not yet finished
	waiters []*receiveWaiter // Receive calls waiting, oldest first
	ready   []*Request       // delivered requests no Receive was waiting for
	polls   map[ID]uint64    // Receive IDs outstanding at the server, with the order they were sent in
	pollSeq uint64           // the order of the last poll sent
	push    *pushState       // the Serve that holds the push credit (v2), nil if none
	err     error            // set once the client is closed
	link    linkState        // the connection's state (client_reconnect.go)
	// retired are the connections the client moved away from on a drain
	// notice, still open for what they carry (client_conn.go).
	retired map[*clientConn]struct{}

	returned atomic.Int64 // pushed requests given back to the server

	ctx    context.Context // cancelled when the client closes
	cancel context.CancelCauseFunc
	done   chan struct{}
	closed sync.Once
	events *eventQueue // connection events for WithConnectionHook, or nil
	wg     sync.WaitGroup
}

// Dial connects to the server at addr and joins channel. It returns once
// the server has acknowledged the join: a Send by another client made after
// Dial returns sees this client as a peer. With WithServers, a server that
// cannot be reached is skipped: Dial tries addr, then each of the others
// in order, until one takes the join (a refusal for the token or the
// client ID ends the search, since another server of the bus would refuse
// the same). When ctx has no deadline, each connection and join must
// finish within two ping intervals (60 s by default; see
// WithPingInterval); with a deadline, each server tried gets an equal
// share of the time left, so that one that never answers leaves time for
// the next. Dial itself does not retry; once it has returned, the client
// reconnects by itself when its connection is lost.
func Dial(ctx context.Context, addr string, channel ID, opts ...DialOption) (*Client, error) {
	var o dialOptions
	for _, opt := range opts {
		opt(&o)
	}
	var key []byte
	if o.clientID == (ID{}) {
		// A random ID comes with a key of the client's own, registered
		// with every join: while the server remembers the ID, only this
		// client can join with it (PROTOCOL.md §7). A chosen ID
		// (WithClientID) has none, so that a process restarted with it
		// is not locked out: Authenticate can bind it to a token instead.
		o.clientID = uuid.New()
		key = make([]byte, wire.ClientKeySize)
		rand.Read(key)
	}
	if o.channelName != "" {
		if err := wire.CheckChannelName(o.channelName, channel); err != nil {
			return nil, err
		}
	}
	if o.pingInterval == 0 {
		o.pingInterval = DefaultPingInterval
	}
	if o.version == 0 {
		o.version = wire.Version3 // tests set 1 or 2 (WithProtocolVersion)
	}
	if o.reconnect.MaxAttempts >= 0 {
		o.reconnect = o.reconnect.withDefaults()
	}
	c := &Client{
		id:      o.clientID,
		key:     key,
		channel: channel,
		opts:    o,
		addrs:   append([]string{addr}, o.servers...),
		sends:   make(map[ID]*sendCall),
		held:    make(map[ID]*Request),
		polls:   make(map[ID]uint64),
		done:    make(chan struct{}),
	}
	nc, settings, idx, err := c.connectFirst(ctx)
	if err != nil {
		return nil, err
	}
	c.maxMessage, c.callLimit = settings.maxMessage, callLimitFor(settings.maxMessage)
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.link.init(c.addrs[idx])
	c.link.addrIndex = idx
	if o.onConnection != nil {
		c.events = newEventQueue(o.onConnection, &c.wg, c.link.stop)
	}
	c.start(c.newConn(nc, c.addrs[idx], idx, 1, settings.window))
	return c, nil
}

// connectFirst joins the first of the client's servers that takes the
// join, in the order of c.addrs, and says which it was.
func (c *Client) connectFirst(ctx context.Context) (net.Conn, joinSettings, int, error) {
	var errs []error
	for i, addr := range c.addrs {
		attempt, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && i < len(c.addrs)-1 {
			attempt, cancel = context.WithTimeout(ctx, time.Until(dl)/time.Duration(len(c.addrs)-i))
		}
		nc, settings, err := c.connect(attempt, addr)
		cancel()
		if err == nil {
			return nc, settings, i, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil || errors.Is(err, ErrUnauthorized) || errors.Is(err, ErrConflict) {
			break
		}
	}
	if len(errs) == 1 {
		return nil, joinSettings{}, 0, errs[0]
	}
	return nil, joinSettings{}, 0, fmt.Errorf("socketbus: none of %d servers took the join: %w", len(c.addrs), errors.Join(errs...))
}

// connect dials addr and joins, within ctx (or two ping intervals when ctx
// has no deadline): the part of Dial a reconnect repeats.
func (c *Client) connect(ctx context.Context, addr string) (net.Conn, joinSettings, error) {
	o := &c.opts
	// Keepalive starts after the join; until then, without a deadline of
	// the caller's, a server that accepts and says nothing is given two
	// ping intervals, as a silent server is later.
	if _, ok := ctx.Deadline(); !ok && o.pingInterval > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*o.pingInterval)
		defer cancel()
	}
	dial := o.dial
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, joinSettings{}, fmt.Errorf("socketbus: dial %s: %w", addr, err)
	}
	if o.tls != nil {
		cfg := o.tls.Clone()
		if cfg.MinVersion < tls.VersionTLS12 {
			cfg.MinVersion = tls.VersionTLS12
		}
		if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, joinSettings{}, fmt.Errorf("socketbus: TLS handshake with %s: %w", addr, err)
		}
		nc = tc
	}
	answer := &answerRecorder{Conn: nc}
	settings, err := handshake(ctx, answer, o.version, c.id, c.channel, string(wire.AppendJoinPayload(nil, o.token, o.channelName, c.key)))
	if err != nil {
		err = answer.explain(ctx, err)
		nc.Close()
		return nil, joinSettings{}, err
	}
	c.pushLimit.Store(settings.maxPolls)
	return nc, settings, nil
}

// newConn makes a joined connection, to addrs[idx], the client's current
// one, numbered gen, whose join announced the stream window window; the
// caller starts it (start).
func (c *Client) newConn(nc net.Conn, addr string, idx int, gen uint64, window int) *clientConn {
	cc := &clientConn{addr: addr, addrIndex: idx, gen: gen, window: window}
	cc.conn = frameconn.New(nc, frameconn.Config{
		PingInterval: c.opts.pingInterval,
		PingHeader:   wire.Header{ClientID: c.id, ChannelID: c.channel},
		Version:      c.opts.version,
		InlineWrites: true,
	})
	cc.conn.SetOnClose(func(err error) { c.connClosed(cc, err) })
	c.conn.Store(cc)
	return cc
}

// start starts cc's reader and writer: its frames are handled knowing
// which connection they came on.
func (c *Client) start(cc *clientConn) {
	cc.conn.Start(func(f frame.Frame) error { return c.handle(cc, f) })
}

// joinSettings are what a join's answer announces (PROTOCOL.md §7).
type joinSettings struct {
	maxMessage int64 // the server's MaxMessageBytes; 0 = none
	maxPolls   int64 // its limit on a connection's polls, held requests and push credit; 0 = not announced
	// window is the credit a stream may hold on the connection (the
	// server's StreamWindow, at most maxClientWindow); the protocol's
	// implicit window when not announced.
	window int
}

// maxClientWindow bounds the stream window a client uses, whatever the
// server announces: what one body it reads may hold in its buffer.
const maxClientWindow = 1 << 20

// handshake sends the join frame and reads the server's answer, before the
// connection's goroutines start.
func handshake(ctx context.Context, nc net.Conn, version uint8, clientID, channel ID, token string) (settings joinSettings, err error) {
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
		defer nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if len(token) > wire.MaxFramePayload {
		return joinSettings{}, fmt.Errorf("socketbus: join: token of %d bytes is over %d", len(token), wire.MaxFramePayload)
	}
	join := wire.Header{Version: version, Type: wire.TypeStart, Flags: wire.FlagJoin,
		RequestID: uuid.New(), ClientID: clientID, ChannelID: channel, Final: true, Length: uint32(len(token))}
	if _, err := nc.Write(append(wire.AppendHeader(nil, &join), token...)); err != nil {
		return joinSettings{}, joinErr(ctx, err)
	}
	var hdr [wire.HeaderSize]byte
	if _, err := io.ReadFull(nc, hdr[:]); err != nil {
		return joinSettings{}, joinErr(ctx, err)
	}
	h, _, err := wire.ParseHeader(hdr[:])
	if err != nil {
		return joinSettings{}, fmt.Errorf("socketbus: join: %w: %w", ErrProtocol, err)
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(nc, payload); err != nil {
		return joinSettings{}, joinErr(ctx, err)
	}
	switch {
	case h.Type == wire.TypeStart && h.Flags == wire.FlagJoin && h.RequestID == join.RequestID:
		if len(payload) >= 8 {
			settings.maxMessage = int64(binary.BigEndian.Uint64(payload))
		}
		if len(payload) >= 12 {
			settings.maxPolls = int64(binary.BigEndian.Uint32(payload[8:]))
		}
		settings.window = wire.StreamWindow
		if len(payload) >= 16 {
			settings.window = min(max(int(binary.BigEndian.Uint32(payload[12:])), wire.StreamWindow), maxClientWindow)
		}
		return settings, nil
	case h.Type == wire.TypeError:
		e, perr := wire.ParseErrorVersion(h.Version, payload, wire.MaxHeaderBlock)
		if perr != nil {
			return joinSettings{}, fmt.Errorf("socketbus: join: %w: %w", ErrProtocol, perr)
		}
		return joinSettings{}, fmt.Errorf("socketbus: join refused: %w", errorFromWire(e))
	}
	return joinSettings{}, fmt.Errorf("socketbus: join: %w: unexpected answer %s", ErrProtocol, h)
}

func joinErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("socketbus: join: %w", ctx.Err())
	}
	// The socket's deadline is ctx's and may fire a moment before ctx does.
	if dl, ok := ctx.Deadline(); ok && frameconn.IsTimeout(err) && !time.Now().Before(dl) {
		return fmt.Errorf("socketbus: join: %w (%v)", context.DeadlineExceeded, err)
	}
	return fmt.Errorf("socketbus: join: %w", err)
}

// ID returns the client's ID, which receivers see as Request.From.
func (c *Client) ID() ID { return c.id }

// Channel returns the ID of the channel the client joined.
func (c *Client) Channel() ID { return c.channel }

// Done is closed when the client has closed: by Close, or because it
// gave up reconnecting (or its connection was lost with reconnecting
// turned off).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client closed: ErrClosed after Close, or an error
// matching ErrDisconnected when it gave up reconnecting. It returns nil
// while the client is open, connected or reconnecting.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the client. What is already queued (the end of a response
// just given with Respond, say) is written first, for up to two seconds.
// Calls in flight return ErrClosed, and so do Send, Receive and Serve once
// Close has begun; requests this client received and has not answered fail
// at their senders with ErrPeerGone, except those pushed to a Serve that no
// handler had taken: Close first stops the pushes and gives those back to
// the server, which serves them elsewhere. A reconnect in progress stops.
// Close is idempotent and waits for the client's goroutines to stop.
func (c *Client) Close() error {
	c.mu.Lock()
	// Closing, in the same hold of c.mu as the look at the push credit: a
	// Serve that starts from here on takes no credit, and a Receive makes
	// no poll, for what the server would hand this client now reaches a
	// connection that is about to stop reading, and would neither run nor
	// go back.
	c.link.closing = true
	c.link.changedLocked()
	p := c.push
	if p != nil {
		p.closing = true
	}
	c.mu.Unlock()
	if p != nil {
		c.endPush(p, closeDrainTimeout) // pushed requests no handler took go back to the server
	}
	if h := hooksFor(c); h != nil && h.close != nil {
		h.close()
	}
	c.mu.Lock()
	var conns []*clientConn
	if c.link.connected {
		conns = append(conns, c.conn.Load())
	}
	for cc := range c.retired {
		conns = append(conns, cc) // what they carry is written too
	}
	c.mu.Unlock()
	for _, cc := range conns {
		cc.conn.Drain(ErrClosed, closeDrainTimeout)
	}
	for _, cc := range conns {
		cc.conn.Wait()
	}
	c.link.stopOnce.Do(func() { close(c.link.stop) })
	c.wg.Wait() // the reconnect loop and the event queue
	c.finish(ErrClosed)
	return nil
}

// closeDrainTimeout bounds how long Close spends writing what is queued.
const closeDrainTimeout = 2 * time.Second

// finish closes the client for good with err, once.
func (c *Client) finish(err error) {
	c.closed.Do(func() {
		c.mu.Lock()
		c.err = err
		if c.push != nil {
			c.push.closed()
		}
		sends := c.sends
		held := c.held // every request in ready is in held too, or has ended
		ready := c.ready
		waiters := c.waiters
		c.sends, c.held, c.waiters, c.ready = map[ID]*sendCall{}, map[ID]*Request{}, nil, nil
		c.link.changedLocked()
		c.mu.Unlock()

		// The waiters' results first: a Receive whose ctx ends now waits
		// for its result, and aborting a request takes c.mu.
		for _, w := range waiters {
			w.result <- receiveResult{err: err}
		}
		c.cancel(err)
		for _, call := range sends {
			call.finish(call.lostError(err))
		}
		for _, r := range held {
			r.abort(err)
		}
		for _, r := range ready {
			r.body.abandon(err) // nobody was handed it
		}
		close(c.done)
	})
}

// closing reports whether Close has been called.
func (c *Client) closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.link.closing || errors.Is(c.err, ErrClosed)
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return c.err
	}
	return ErrClosed
}

// header returns a header from this client for request id.
func (c *Client) header(t wire.FrameType, flags wire.Flags, id ID) wire.Header {
	return wire.Header{Version: c.opts.version, Type: t, Flags: flags, RequestID: id, ClientID: c.id, ChannelID: c.channel}
}

func (c *Client) creditFrame(flags wire.Flags, id ID, n int) frame.Frame {
	return frame.Frame{
		Header:  c.header(wire.TypeChunk, flags|wire.FlagCredit, id),
		Payload: wire.AppendCredit(frame.GetBuffer(wire.CreditSize)[:0], uint32(n)),
		Pooled:  true,
	}
}

func (c *Client) errorFrame(flags wire.Flags, id ID, code wire.Code, msg string) frame.Frame {
	return frame.ErrorFrame(c.header(wire.TypeError, flags, id), code, msg)
}
