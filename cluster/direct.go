package cluster

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/socketbus/socketbus/internal/budget"
	"github.com/socketbus/socketbus/internal/frame"
)

// Direct connections between nodes (issue 23; opt-in with
// Config.DirectListen; docs/PROTOCOL.md section 21.8 has the wire,
// SECURITY.md the costs and the trust). NATS keeps membership, state and
// claims; a node that listens says where in its announcement ("<name>
// <incarnation> <host:port>"), and of two such nodes the one whose name
// sorts lower dials the other and says hello. Once a link has a live
// connection, the outbox queues all of that link's messages for the
// connection's writer (the same envelopes it would publish, each after a
// 4-byte big-endian length; direct_writer.go), which writes what a batch
// queued at once; otherwise it publishes on NATS as before.
//
// The switch keeps the link's order: the outbox publishes a marker
// (kindDirect, the connection's ID) on NATS, numbered like any message of
// the link, and writes everything after it to the connection; the far
// node's reader handles nothing from the connection before the marker has
// come through NATS, behind every message published before it. A read or
// write error, a write queue that may not grow, or a connection silent
// for deadAfter (direct_reader.go) drops the connection, and the link goes
// back to NATS; messages lost on the way show as a gap in the sequence,
// and the far node resets the link, as for a message NATS lost.
//
// The files: direct.go, the connection, its listener and its dial;
// direct_hello.go, the challenge-response hello keyed with the route
// credentials (New refuses DirectListen without RoutePassword:
// ErrDirectNeedsCredentials); direct_tls.go, TLS with RouteTLS, both ways
// like the routes; direct_writer.go, the writer and the write queue's
// bound; direct_reader.go, the reader, its deadline and the wait for the
// marker; direct_budget.go, what a connection is charged;
// direct_backoff.go, redialing after a failure and the hellos' slots per
// address; direct_knobs.go, what tests may change.
//
// The write queue's bound (the decision; direct_writer.go has the rule):
// credit lets a peer be sent more at once than a fixed bound, so the
// queue has a base charged with the connection and grows past it, each
// step charged, while its writer keeps writing; it stops growing, and the
// connection is dropped, when a write has not finished for directStall,
// when the account refuses, or past directQueueMax. The outbox never
// waits: a peer that stopped reading loses only its own connection.
//
// What is left: a connection is per pair of nodes, not pooled; the
// announced address is the one listened on (no separate advertise
// address for NAT); and the hello's key is the route password, so
// rotating it means restarting every node.

// ErrDirectNeedsCredentials is returned by New for a Config with
// DirectListen and no RoutePassword: the hello of a direct connection is
// keyed with RouteUser and RoutePassword, and without a secret anyone who
// can reach the port could pass it.
var ErrDirectNeedsCredentials = errors.New("socketbus: cluster: DirectListen needs RoutePassword, the key of the direct connections' hello")

// maxDirectEnvelope is the largest link message the outbox makes: a state
// message of maxStateEntries channels (a frame message, at most
// envelopeSize+1+wire.HeaderSize+wire.MaxFramePayload, is smaller). A
// length prefix past it ends the connection before anything is allocated.
const maxDirectEnvelope = envelopeSize + 12 + maxStateEntries*stateEntrySize

const (
	directDialTimeout = 2 * time.Second
	// directWriteTimeout bounds one write of the connection's writer
	// (direct_writer.go): a peer that does not read for that long loses
	// its connection (the link goes back to NATS).
	directWriteTimeout = 5 * time.Second
	directRedial       = 50 * time.Millisecond
	// directFinishTimeout bounds how long a closing node waits for its
	// connections' queues to go out and the far nodes to close.
	directFinishTimeout = time.Second
	// directWriteBuffer: a batch this large wakes the writer before the
	// batch ends.
	directWriteBuffer = 128 << 10
	// directBlock is the size of the blocks the write queue holds its
	// bytes in, each written whole; directSpareBlocks of them are kept
	// between batches, within the queue's charged base. One growing
	// buffer was regrown and copied from nothing for every batch a large
	// body made (growslice was a tenth of a 16 MiB cross-node transfer's
	// CPU).
	directBlock       = 256 << 10
	directSpareBlocks = 4
	// directQueueBytes is the base of a connection's write queue's bound,
	// charged with the connection: the queue passes it only while the
	// peer reads, each step charged (direct_writer.go). It holds the
	// largest link message (maxDirectEnvelope) several times over.
	directQueueBytes = 4 << 20
	directReadBuffer = 64 << 10
)

// directConn is a connection to another node.
type directConn struct {
	c  *Cluster
	n  *peerNode
	id uint64
	// conn is what the connection is read and written through: raw, or
	// TLS over it (direct_tls.go). raw is what close closes, which never
	// blocks (closing TLS would send an alert).
	conn net.Conn
	raw  net.Conn
	br   *bufio.Reader
	rbuf [framePrefix]byte // a frame message's prefix (readMessage); the reader's
	// batch collects the local connections the reader's frames were
	// queued for, flushed once a burst is handled; the reader's.
	batch frame.Batch
	// dirty: queued to in the current batch, its writer not woken yet
	// (the outbox's goroutine only).
	dirty bool

	// The write queue (direct_writer.go), guarded by wmu.
	wmu     sync.Mutex
	pending [][]byte // what waits for the writer, in blocks of directBlock (direct_writer.go)
	spare   [][]byte // empty blocks kept for the next batches, at most directSpareBlocks
	queued  int      // bytes in pending and in the writer's hands
	bound   int      // the most queued may be now: base, and the steps charged past it
	base    int      // the bound charged with the connection
	// writeSince is when the writer's write under way began (zero when
	// none is): the queue does not grow past its base for a writer
	// stuck since longer than directStall (direct_writer.go).
	writeSince time.Time
	wclosed    bool
	wake       chan struct{}
	// writing: the writer runs; finishing: the node closes, and the
	// writer half-closes the connection once the queue is empty.
	writing, finishing bool
	acct               *budget.Account // what the connection is charged to (direct_budget.go)
	charged            int64

	ready     chan struct{} // closed once the far node's marker came through NATS
	readyOnce sync.Once
	closeOnce sync.Once
	closed    chan struct{}
}

// markReady lets the reader start; it reports whether this call did.
func (d *directConn) markReady() (first bool) {
	d.readyOnce.Do(func() {
		close(d.ready)
		first = true
	})
	return first
}

// close ends the connection; the link goes back to NATS. Any goroutine
// may call it, with or without Cluster.mu.
func (d *directConn) close() {
	d.closeOnce.Do(func() {
		close(d.closed)
		_ = d.raw.Close()
		d.wmu.Lock()
		d.wclosed, d.pending, d.spare = true, nil, nil
		n := d.n // set under wmu too: an accepted connection learns it late
		d.wmu.Unlock()
		d.releaseCharge()
		if n != nil {
			n.direct.CompareAndSwap(d, nil)
		}
		d.c.directMu.Lock()
		delete(d.c.directConns, d)
		close(d.c.directDown)
		d.c.directDown = make(chan struct{})
		d.c.directMu.Unlock()
	})
}

// track registers a connection, so that Close can end it; false once the
// node is closing (the connection is closed then).
func (c *Cluster) track(d *directConn) bool {
	c.directMu.Lock()
	defer c.directMu.Unlock()
	if c.directClosed {
		_ = d.raw.Close()
		return false
	}
	c.directConns[d] = struct{}{}
	return true
}

// startDirect opens the listener, before the node first announces itself.
func (c *Cluster) startDirect() error {
	if c.cfg.DirectListen == "" {
		return nil
	}
	ln, err := net.Listen("tcp", c.cfg.DirectListen)
	if err != nil {
		return fmt.Errorf("cluster: DirectListen %q: %w", c.cfg.DirectListen, err)
	}
	c.directLn = ln
	c.directAddr = ln.Addr().String()
	c.directWG.Add(1)
	go c.acceptDirect(ln)
	return nil
}

// stopDirect ends the listener, the dials and every connection, and waits
// for their goroutines.
func (c *Cluster) stopDirect() {
	c.directCancel()
	if c.directLn != nil {
		_ = c.directLn.Close()
	}
	c.directMu.Lock()
	c.directClosed = true
	conns := make([]*directConn, 0, len(c.directConns))
	for d := range c.directConns {
		conns = append(conns, d)
	}
	c.directMu.Unlock()
	// What the connections' queues hold (the byes) goes out, for
	// directFinishTimeout at most, before they close.
	var finishing []*directConn
	for _, d := range conns {
		if d.finish() {
			finishing = append(finishing, d)
		}
	}
	if len(finishing) > 0 {
		t := time.NewTimer(directFinishTimeout)
		for _, d := range finishing {
			select {
			case <-d.closed:
			case <-t.C:
			}
		}
		t.Stop()
	}
	for _, d := range finishing {
		d.close()
	}
	c.directWG.Wait()
}

// maybeDialLocked dials n if this node is the one to: both listen, this
// one's name sorts lower, n has no connection and no dial under way, and
// this node routes for a Server (so that both subscribe to their links
// before the first marker).
func (c *Cluster) maybeDialLocked(n *peerNode) {
	if n.direct.Load() != nil || c.directLn == nil || n.directAddr == "" || n.incarnation == "" || c.closing || c.sub == nil ||
		n.dropped || n.dialing || !(c.cfg.Node < n.name) || time.Now().Before(n.dialAfter) {
		return
	}
	acct, ok := c.chargeDirectLocked(n.name)
	if !ok {
		c.refusedDirectLocked(n)
		return
	}
	n.dialing = true
	c.directWG.Add(1)
	go c.dialDirect(n, n.directAddr, n.incarnation, acct)
}

// dialDirect dials n; acct holds the connection's charge, which the
// connection releases when it closes (or here, if there is none).
func (c *Cluster) dialDirect(n *peerNode, addr, inc string, acct *budget.Account) {
	defer c.directWG.Done()
	d, err := c.dialHello(n, addr, inc, acct)
	c.mu.Lock()
	defer c.mu.Unlock()
	n.dialing = false
	if err != nil {
		// The far node may not know this one yet, or not route yet: the
		// next link message or announcement from it tries again, after
		// a back-off (direct_backoff.go).
		c.dialFailedLocked(n)
		if !errors.Is(err, errNotKnown) {
			c.warnLimitedf("direct", "cluster: direct connection to %s (%s): %v", n.name, addr, err)
		}
		if f := c.testDialFailed.Load(); f != nil {
			(*f)(n.name, err)
		}
		return
	}
	if c.closing || n.dropped || c.nodes[n.name] != n {
		d.close()
		return
	}
	c.installLocked(n, d)
	c.directWG.Add(2)
	go d.writeLoop()
	go d.read()
}

// dialConn dials addr for a connection to n, gives it its buffers (acct
// holds their charge) and tracks it.
func (c *Cluster) dialConn(n *peerNode, addr string, acct *budget.Account) (*directConn, error) {
	ctx, cancel := context.WithTimeout(c.directCtx, directDialTimeout)
	defer cancel()
	var dialer net.Dialer
	conn, err := dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		acct.Release(c.directCost())
		return nil, fmt.Errorf("dial: %w", err)
	}
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	d := newDirectConn(c, n, binary.BigEndian.Uint64(idb[:]), conn, c.clientTLS(conn, addr))
	d.setBuffers(acct)
	if !c.track(d) {
		d.close()
		return nil, errors.New("the node is closing")
	}
	return d, nil
}

// newDirectConn makes a connection over raw, read and written through
// conn (raw, or TLS over it).
func newDirectConn(c *Cluster, n *peerNode, id uint64, raw, conn net.Conn) *directConn {
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &directConn{c: c, n: n, id: id, conn: conn, raw: raw,
		wake: make(chan struct{}, 1), ready: make(chan struct{}), closed: make(chan struct{})}
}

// installLocked makes d n's connection, in place of any other.
func (c *Cluster) installLocked(n *peerNode, d *directConn) {
	if old := n.direct.Swap(d); old != nil {
		old.close()
	}
	select {
	case <-d.closed:
		// Closed before it was n's (its close found nothing to clear).
		n.direct.CompareAndSwap(d, nil)
		return
	default:
	}
	if n.markedID == d.id {
		c.readyLocked(d)
	}
	if c.out != nil {
		// Something for the outbox to switch with, without waiting for
		// the next heartbeat.
		c.out.push(outMsg{to: n, kind: kindHeartbeat})
	}
}

// readyLocked lets d's reader start, says so at info (the attribute
// "direct" names the far node: the bench waits for it), and tells whoever
// waits (tests).
func (c *Cluster) readyLocked(d *directConn) {
	first := d.markReady()
	if first && d.n != nil {
		d.n.dialFailures = 0 // the link is on its connection: redial at once next time
	}
	if first && c.cfg.Logger != nil {
		c.cfg.Logger.Info("cluster: the link from "+d.n.name+" comes on a direct connection",
			"bus", c.cfg.Name, "node", c.cfg.Node, "direct", d.n.name)
	}
	close(c.directChanged)
	c.directChanged = make(chan struct{})
}

// markDirectLocked handles n's marker: the link continues on connection id.
func (c *Cluster) markDirectLocked(n *peerNode, id uint64) {
	n.markedID = id
	if d := n.direct.Load(); d != nil && d.id == id {
		c.readyLocked(d)
	}
}

// acceptDirect takes connections until the listener closes. At most
// directMaxHellos of them may be saying hello at once, and
// directMaxHellosPerHost from one address (direct_backoff.go): one past
// that is closed at once, so that connections that never finish a hello
// hold little (each holds a few fixed buffers until its hello's
// deadline).
func (c *Cluster) acceptDirect(ln net.Listener) {
	defer c.directWG.Done()
	backoff := time.Duration(0)
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, or a connection reset before it was
			// taken: try again, less often while it lasts.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			c.warnLimitedf("direct", "cluster: direct connections: accept: %v", err)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-c.directCtx.Done():
				t.Stop()
				return
			}
			continue
		}
		backoff = 0
		if !c.takeHelloSlot(conn.RemoteAddr()) {
			c.warnLimitedf("direct", "cluster: direct connection from %s refused: too many hellos under way (%d at most, %d from one address)",
				conn.RemoteAddr(), directMaxHellos, directMaxHellosPerHost)
			_ = conn.Close()
			continue
		}
		d := newDirectConn(c, nil, 0, conn, c.serverTLS(conn))
		if !c.track(d) {
			c.releaseHelloSlot(conn.RemoteAddr())
			return
		}
		c.directWG.Add(1)
		go c.acceptHello(d)
	}
}
