package cluster

import (
	"encoding/binary"
	"sync"

	"github.com/socketbus/socketbus/internal/frame"
)

// outbox is the node's one queue of messages to other nodes, and the
// goroutine that publishes them. The router hands frames to remote members
// with its channel lock held, so their Send only queues here; one
// publisher keeps each link's messages in the order they were queued and
// numbers them.
//
// What waits here is bounded by what produced it: stream frames by the
// credit the far node granted, control frames (grants, errors, states) by
// the requests and channels they are about. A frame's write notification
// (the router's flow control) fires once it is published, as a socket
// writer's does once the frame is written.
type outbox struct {
	mu      sync.Mutex
	queue   []outMsg
	spare   []outMsg
	wake    chan struct{}
	closed  bool
	done    chan struct{}
	publish func(n *peerNode, data []byte) error
}

type outMsg struct {
	to    *peerNode
	kind  byte
	role  byte
	frame frame.Frame // kindFrame, kindPing, kindPong
	body  []byte      // the other kinds: what follows the envelope
}

func newOutbox(publish func(*peerNode, []byte) error) *outbox {
	o := &outbox{wake: make(chan struct{}, 1), done: make(chan struct{}), publish: publish}
	go o.run()
	return o
}

// push queues m; it never blocks. After close, frames are released.
func (o *outbox) push(m outMsg) {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		drop(&m)
		return
	}
	o.queue = append(o.queue, m)
	first := len(o.queue) == 1
	o.mu.Unlock()
	if first {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

// close publishes what is queued, then stops the publisher.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	<-o.done
}

func (o *outbox) run() {
	defer close(o.done)
	// scratch holds one message after 4 bytes kept for its length on a
	// direct connection (direct.go); NATS is given scratch[4:].
	var scratch []byte
	var kick []*directConn // the connections queued to in this batch
	for {
		<-o.wake
		for {
			o.mu.Lock()
			batch, closed := o.queue, o.closed
			o.queue, o.spare = o.spare[:0], nil
			o.mu.Unlock()
			if len(batch) == 0 {
				if closed {
					return
				}
				break
			}
			for i := range batch {
				m := &batch[i]
				n := m.to
				if d := n.direct.Load(); d != n.outDirect {
					// A connection came up, or went down (back to NATS).
					n.outDirect = nil
					if d != nil {
						// The marker, on NATS behind what went there:
						// everything after it goes on d.
						n.outSeq++
						scratch = appendEnvelope(scratch[:0], kindDirect, n.outSeq)
						scratch = binary.BigEndian.AppendUint64(scratch, d.id)
						if o.publish(n, scratch) == nil {
							n.outDirect = d
						}
					}
				}
				n.outSeq++
				// The message is its head, in scratch, and its tail: the
				// frame's payload or the body, which a direct connection
				// copies straight into its queue (one copy of a chunk,
				// not two).
				scratch = appendEnvelope(append(scratch[:0], 0, 0, 0, 0), m.kind, n.outSeq)
				tail := m.body
				if m.kind == kindFrame || m.kind == kindPing || m.kind == kindPong {
					scratch = appendFrameHead(scratch, m.role, &m.frame)
					tail = m.frame.Payload
				}
				if d := n.outDirect; d != nil {
					binary.BigEndian.PutUint32(scratch, uint32(len(scratch)-4+len(tail)))
					if !d.dirty {
						d.dirty = true
						kick = append(kick, d)
					}
					if !d.enqueue(scratch, tail) {
						// Lost, and what the queue held: the far node
						// sees the gap and resets the link.
						d.drop("its write queue is past its bound: the peer does not keep up")
					}
				} else {
					scratch = append(scratch, tail...)
					// A failed publish (NATS disconnected) loses the
					// message; the far node sees the gap in the sequence
					// and resets.
					_ = o.publish(n, scratch[4:])
				}
				if s := m.frame.Sent; s != nil {
					s.FrameSent(len(m.frame.Payload))
				}
				drop(m)
			}
			// One wake-up of each connection's writer per batch: it
			// writes what the batch queued, and the outbox goes on.
			for _, d := range kick {
				d.dirty = false
				d.kick()
			}
			clear(kick)
			kick = kick[:0]
			clear(batch)
			o.mu.Lock()
			o.spare = batch[:0]
			o.mu.Unlock()
		}
	}
}

// drop releases a message's pooled payload.
func drop(m *outMsg) {
	if m.frame.Pooled {
		frame.PutBuffer(m.frame.Payload)
	}
	m.frame = frame.Frame{}
}
