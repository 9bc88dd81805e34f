package cluster

import (
	"encoding/binary"
	"io"
	"strconv"
	"time"
)

// The reader of a direct connection. The far node sends on every link at
// least a heartbeat each Heartbeat (tick), so a connection that brings
// nothing for as long as a silent node takes to be dropped (deadAfter:
// three heartbeats by default) is half-open — the far node gone quiet
// while TCP still looks up — and is dropped: the link goes back to NATS.
// The far node's marker, which must come through NATS before the reader
// hands on the first message, may be lost (NATS drops a message published
// before the far server has learnt of this node's subscription, and the
// marker is the last message of the link on NATS, so no gap shows it):
// the reader waits for it for directReadyWait, then drops the connection,
// and the nodes connect again.

// read reads link messages from the connection and handles them as
// onMessage does NATS's, once the far node's marker has come through NATS.
func (d *directConn) read() {
	defer d.c.directWG.Done()
	defer d.close()
	idle := d.c.deadAfter()
	var hdr [4]byte
	var armed time.Time // when the read deadline was last pushed back
	first := true
	for {
		// The deadline moves with the messages; pushing it back once per
		// eighth of it, rather than per message, costs little.
		if now := time.Now(); now.Sub(armed) > idle/8 {
			armed = now
			_ = d.conn.SetReadDeadline(now.Add(idle))
		}
		if _, err := io.ReadFull(d.br, hdr[:]); err != nil {
			d.readFailed(err)
			return
		}
		size := binary.BigEndian.Uint32(hdr[:])
		if size < envelopeSize || size > maxDirectEnvelope {
			d.c.directBadSizes.Add(1)
			d.drop("a message of " + strconv.FormatUint(uint64(size), 10) + " bytes, past the bounds")
			return
		}
		// A buffer for this message alone, as nats.go makes: the router
		// may keep a large chunk in it (parseFrame).
		buf := make([]byte, size)
		if _, err := io.ReadFull(d.br, buf); err != nil {
			d.readFailed(err)
			return
		}
		if first {
			if !d.awaitReady(d.c.directReadyWait()) {
				return
			}
			first = false
		}
		d.c.handleLink(d.n.name, d, buf)
	}
}

// awaitReady waits for the far node's marker, at most idle.
func (d *directConn) awaitReady(idle time.Duration) bool {
	t := time.NewTimer(idle)
	defer t.Stop()
	select {
	case <-d.ready:
		return true
	case <-d.closed:
		return false
	case <-t.C:
		d.drop("the far node's marker did not come through NATS within " + idle.String())
		return false
	}
}

// readFailed drops the connection after a failed read, saying why unless
// it was closed here or by the far node.
func (d *directConn) readFailed(err error) {
	if err == io.EOF {
		d.close()
		return
	}
	d.drop("read: " + err.Error())
}

// directReadyWait is how long a reader waits for the far node's marker:
// three heartbeats, at least a second, at most deadAfter.
func (c *Cluster) directReadyWait() time.Duration {
	return min(c.deadAfter(), max(3*c.cfg.Heartbeat, time.Second))
}
