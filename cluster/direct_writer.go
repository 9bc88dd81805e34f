package cluster

import "time"

// Each direct connection has its own writer: the outbox only appends a
// message to the connection's queue (enqueue) and wakes the writer once per
// batch (kick), so that a peer that reads slowly, or not at all, holds up
// its own link and no other. The queue is bounded in bytes
// (directQueueBound): what it holds is bounded already by what produced
// it — stream frames by the credit the far node granted, the rest by the
// requests and channels they are about — so a queue past its bound means a
// peer that does not keep up, and the connection is dropped; so is one
// whose write does not finish within directWriteDeadline. Either way the
// link goes back to NATS: what the queue held is lost, the far node sees
// the gap in the sequence and resets the link (the requests the two nodes
// were part of together end with peer_gone; none runs twice).

// enqueue appends msg (its length prefix included) to the write queue; it
// never blocks. false: the connection is closed or its queue would pass its
// bound; the caller drops the connection.
func (d *directConn) enqueue(msg []byte) bool {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.wclosed || d.queued+len(msg) > d.bound {
		return false
	}
	d.pending = append(d.pending, msg...)
	d.queued += len(msg)
	if len(d.pending) >= directWriteBuffer {
		d.kick() // a large batch: the writer starts before it ends
	}
	return true
}

// drop closes the connection, unless it is closed already, and says why.
func (d *directConn) drop(why string) {
	select {
	case <-d.closed:
		return
	default:
	}
	d.c.warnLimitedf("direct", "cluster: direct connection to %s dropped: %s", d.peerName(), why)
	d.close()
}

// kick wakes the writer; it never blocks.
func (d *directConn) kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// queuedBytes returns what waits in the queue or is being written.
func (d *directConn) queuedBytes() int {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	return d.queued
}

// writeLoop writes what the queue holds, all of it at once, until the
// connection closes or a write fails.
func (d *directConn) writeLoop() {
	defer d.c.directWG.Done()
	timeout := d.c.directWriteDeadline()
	d.wmu.Lock()
	d.writing = true
	d.wmu.Unlock()
	var buf []byte
	for {
		select {
		case <-d.wake:
		case <-d.closed:
			return
		}
		for {
			d.wmu.Lock()
			buf, d.pending = d.pending, buf[:0]
			finishing := d.finishing
			d.wmu.Unlock()
			if len(buf) == 0 {
				if finishing {
					d.closeWrite()
					return
				}
				break
			}
			_ = d.conn.SetWriteDeadline(time.Now().Add(timeout))
			_, err := d.conn.Write(buf)
			d.wmu.Lock()
			d.queued -= len(buf)
			d.wmu.Unlock()
			if err != nil {
				d.drop("write: " + err.Error())
				return
			}
			if cap(buf) > directWriteBuffer {
				buf = nil // a burst's buffer is not kept
			}
		}
	}
}

// peerName names the far node, or its address before its hello.
func (d *directConn) peerName() string {
	if d.n != nil {
		return d.n.name
	}
	return d.conn.RemoteAddr().String()
}

// finish ends the connection when the node closes: the writer writes what
// the queue holds (the bye among it) and half-closes the connection; the
// reader reads on until the far node closes its side. Closing at once
// would lose what the queue holds, and a socket closed with bytes unread
// resets the connection, which can discard what the far node had not
// read yet. finish reports whether there is a writer to wait for (d.closed
// is closed once the far node has closed its side); if not, d is closed.
func (d *directConn) finish() bool {
	d.wmu.Lock()
	d.finishing = true
	writing := d.writing
	d.wmu.Unlock()
	if !writing {
		d.close()
		return false
	}
	d.kick()
	return true
}

// closeWrite half-closes the connection: the far node reads to its end.
func (d *directConn) closeWrite() {
	if tc, ok := d.conn.(interface{ CloseWrite() error }); ok {
		_ = tc.CloseWrite()
		return
	}
	d.close()
}
