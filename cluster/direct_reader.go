package cluster

import (
	"encoding/binary"
	"io"
	"strconv"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
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
	defer d.batch.Flush()
	idle := d.c.deadAfter()
	var hdr [4]byte
	var armed time.Time // when the read deadline was last pushed back
	first := true
	for {
		if d.br.Buffered() == 0 {
			// The burst is handled: its frames for local connections
			// are written now, a batch per connection, on this
			// goroutine when they are small (frameconn's inline writes).
			d.batch.Flush()
		}
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
		buf, payload, err := d.readMessage(int(size))
		if err != nil {
			d.readFailed(err)
			return
		}
		if first {
			if !d.awaitReady(d.c.directReadyWait()) {
				frame.PutBuffer(payload)
				return
			}
			first = false
		}
		d.c.handleLink(d.n.name, d, buf, payload)
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

// framePrefix is a frame message up to its payload: the envelope, the
// role and the frame's header.
const framePrefix = envelopeSize + 1 + wire.HeaderSize

// readMessage reads a message of size bytes. A frame message's payload
// is read into a pooled buffer of its own (payload), which the router
// owns from then on as it owns a frame read from a client's socket, and
// prefix, d's to reuse, holds the rest: the frame's header is parsed
// from it before the next read. Any other message is read whole into a
// buffer of its own, which its handler may keep.
func (d *directConn) readMessage(size int) (prefix, payload []byte, err error) {
	head := min(size, framePrefix)
	prefix = d.rbuf[:head]
	if _, err := io.ReadFull(d.br, prefix); err != nil {
		return nil, nil, err
	}
	rest := size - head
	if prefix[0] == kindFrame && rest == 0 {
		return prefix, nil, nil // a frame without payload: nothing of it is kept
	}
	if prefix[0] != kindFrame || head < framePrefix || rest > wire.MaxFramePayload {
		whole := make([]byte, size)
		copy(whole, prefix)
		if _, err := io.ReadFull(d.br, whole[head:]); err != nil {
			return nil, nil, err
		}
		return whole, nil, nil
	}
	payload = frame.GetBuffer(rest)
	if _, err := io.ReadFull(d.br, payload); err != nil {
		frame.PutBuffer(payload)
		return nil, nil, err
	}
	return prefix, payload, nil
}
