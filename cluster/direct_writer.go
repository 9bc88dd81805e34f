package cluster

import "time"

// Each direct connection has its own writer: the outbox only appends a
// message to the connection's queue (enqueue) and wakes the writer once per
// batch (kick), so that a peer that reads slowly, or not at all, holds up
// its own link and no other.
//
// The queue's bound. What the queue holds is bounded already by what
// produced it: stream frames by the credit the far node granted (at most
// one window, 1 MiB, per stream direction: docs/PROTOCOL.md section 21.6),
// the rest by the requests and channels they are about. Many streams at
// once may be granted more than any fixed bound, and a healthy peer that
// is sent all of it at once must not lose its connection for that (its
// requests would end with peer_gone). So the queue has a base
// (directQueueBytes, charged with the connection: direct_budget.go) that
// it may pass while the writer keeps going: each step past it
// (directQueueStep) is charged to the cluster account before the bytes are
// queued, and released once the writer has brought the queue back under
// half its base. What tells a peer that stopped reading from a busy one is
// the writer, not the queue's size: the connection is dropped when the
// queue would pass its base while one write of the writer (at most
// one block, directBlock) has not finished for directStall — the peer has not
// read for that long — or when the account refuses the step, or past
// directQueueMax (what the NATS path lets wait for one subscription,
// pendingBytes) whatever the budget; and a write that does not finish
// within directWriteTimeout drops it too. Either way the link goes back
// to NATS: what the queue held is lost, the far node sees the gap in the
// sequence and resets the link (the requests the two nodes were part of
// together end with peer_gone; none runs twice).

const (
	// directQueueStep is how much the queue's bound grows at a time past
	// its base, each step charged.
	directQueueStep = 1 << 20
	// directQueueMax bounds the queue whatever the budget: the most the
	// NATS path lets wait for one subscription (pendingBytes).
	directQueueMax = pendingBytes
	// directStall: a queue past its base while a write has not finished
	// for this long is a peer that stopped reading.
	directStall = 2 * time.Second
)

// enqueue appends a message, head then tail (its length prefix at the
// head's start), to the write queue; it never blocks. false: the
// connection is closed, or its queue may not grow to hold the message
// (see above); the caller drops the connection.
func (d *directConn) enqueue(head, tail []byte) bool {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if d.wclosed {
		return false
	}
	if need := d.queued + len(head) + len(tail); need > d.bound && !d.growLocked(need) {
		return false
	}
	d.queued += len(head) + len(tail)
	d.appendLocked(head)
	d.appendLocked(tail)
	if n := len(d.pending); n > 1 || n == 1 && len(d.pending[0]) >= directWriteBuffer {
		d.kick() // a large batch: the writer starts before it ends
	}
	return true
}

// appendLocked copies msg into the queue's blocks.
func (d *directConn) appendLocked(msg []byte) {
	for len(msg) > 0 {
		last := len(d.pending) - 1
		if last < 0 || len(d.pending[last]) == cap(d.pending[last]) {
			d.pending = append(d.pending, d.blockLocked())
			last++
		}
		b := d.pending[last]
		n := copy(b[len(b):cap(b)], msg)
		d.pending[last] = b[:len(b)+n]
		msg = msg[n:]
	}
}

// blockLocked returns an empty block for the queue: a spare one, or a new
// one.
func (d *directConn) blockLocked() []byte {
	if n := len(d.spare); n > 0 {
		b := d.spare[n-1]
		d.spare[n-1] = nil
		d.spare = d.spare[:n-1]
		return b
	}
	return make([]byte, 0, directBlock)
}

// growLocked raises the queue's bound to hold need bytes, a step at a time
// charged to the account, unless the writer is stuck, the account refuses,
// or need is past directQueueMax.
func (d *directConn) growLocked(need int) bool {
	if need > directQueueMax {
		return false
	}
	if !d.writeSince.IsZero() && time.Since(d.writeSince) > d.c.directStallTime() {
		return false
	}
	grow := min((need-d.bound+directQueueStep-1)/directQueueStep*directQueueStep, directQueueMax-d.bound)
	if !d.acct.TryCharge(int64(grow)) {
		return false
	}
	d.bound += grow
	d.charged += int64(grow)
	return true
}

// wroteLocked accounts for n bytes written, and gives back what the queue
// was charged past its base once it is under half of that. It returns what
// to release (outside the lock).
func (d *directConn) wroteLocked(n int) (release int64) {
	d.queued -= n
	d.writeSince = time.Time{}
	if d.bound > d.base && d.queued <= d.base/2 {
		release = int64(d.bound - d.base)
		d.bound = d.base
		d.charged -= release
	}
	return release
}

// drop closes the connection, unless it is closed already, and says why.
func (d *directConn) drop(why string) {
	select {
	case <-d.closed:
		return
	default:
	}
	d.c.directDrops.Add(1)
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
	var blocks [][]byte
	for {
		select {
		case <-d.wake:
		case <-d.closed:
			return
		}
		for {
			d.wmu.Lock()
			blocks, d.pending = d.pending, blocks[:0]
			finishing := d.finishing
			d.wmu.Unlock()
			if len(blocks) == 0 {
				if finishing {
					d.closeWrite()
					return
				}
				break
			}
			for i, b := range blocks {
				if err := d.write(b, timeout); err != nil {
					d.wmu.Lock()
					for _, rest := range blocks[i+1:] {
						d.wroteLocked(len(rest)) // not queued any more either
					}
					d.wmu.Unlock()
					d.drop("write: " + err.Error())
					return
				}
				blocks[i] = nil
			}
		}
	}
}

// write writes one block of the queue within timeout, accounts for it,
// and keeps the block for reuse when fewer than directSpareBlocks are
// spare. A block is at most directBlock, so the time since the writer's
// last write finished says whether the peer reads.
func (d *directConn) write(b []byte, timeout time.Duration) error {
	now := time.Now()
	d.wmu.Lock()
	d.writeSince = now
	d.wmu.Unlock()
	_ = d.conn.SetWriteDeadline(now.Add(timeout))
	_, err := d.conn.Write(b)
	d.wmu.Lock()
	release := d.wroteLocked(len(b)) // written, or not queued any more
	if err == nil && len(d.spare) < directSpareBlocks {
		d.spare = append(d.spare, b[:0])
	}
	acct := d.acct
	d.wmu.Unlock()
	acct.Release(release)
	return err
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
