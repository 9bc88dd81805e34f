package frame

import (
	"github.com/socketbus/socketbus/internal/wire"
)

// Frame is a header and its payload, as read from or written to a connection.
type Frame struct {
	Header  wire.Header
	Payload []byte
	// Pooled says Payload came from GetBuffer; the writer returns it to the
	// pool once written, and the receiver of a read frame owns it.
	Pooled bool
	// Sent, when set, is told the payload length once the frame is written.
	// A frame with one is relayed stream data: the peer's credit bounds it.
	Sent SentNotifier
	// FlowControlled says the peer's credit bounds the frame, as it does a
	// body's chunk that its sender queues: like a frame with Sent, it
	// does not pause the connection's reader (frameconn's MaxQueuedBytes).
	FlowControlled bool
	// Lazy frames do not wake the writer: they go out with the next write
	// something else causes. For acknowledgements nobody waits on.
	Lazy bool
	// Payer, when set, pays for the frame while it is queued, instead of
	// the connection's account, and the frame does not count toward
	// the connection's MaxControlBytes: something other than the slow-consumer cap bounds
	// it (a whole message the reader asked for, by a request it sent or
	// credit it granted, charged to the member that sent it).
	Payer Memory
}

// SentNotifier learns when a relayed frame has left through the socket;
// flow control uses it to return credit only for bytes really delivered.
type SentNotifier interface {
	FrameSent(n int)
}

// TakeNotifier is a SentNotifier that also learns when a writer takes its
// frame for writing, just before the write that may put the frame's bytes
// on the wire, whatever that write's result: from then on the peer may
// have the frame. A client uses it to know which requests may have been
// seen (FrameSent comes only after a write that succeeded).
type TakeNotifier interface {
	SentNotifier
	FrameTaken()
}

// Memory is the account a connection charges the memory it holds to: the
// server's budget (internal/budget's Account) is one. Its methods must be
// safe for concurrent use; a client's connections have none.
type Memory interface {
	Charge(n int64)
	Release(n int64)
}

// Overhead is what a queued frame costs beyond its payload buffer: the
// Frame itself in queue slices that may be twice their length.
const Overhead = 160

// Cost is the memory a queued frame holds.
func Cost(f *Frame) int64 { return Overhead + int64(cap(f.Payload)) }

// ErrorFrame builds an error frame whose routing fields and version come
// from h (version 0 means wire.Version) and whose payload carries code and
// message, in the layout of h's version.
func ErrorFrame(h wire.Header, code wire.Code, message string) Frame {
	return ErrorFrameOf(h, wire.Error{Code: code, Message: message})
}

// ErrorFrameOf is ErrorFrame for an error with every field of its
// version's payload: a v3 error carries e's application code and header
// block (which the caller has checked).
func ErrorFrameOf(h wire.Header, e wire.Error) Frame {
	if h.Version == 0 {
		h.Version = wire.Version
	}
	h.Type = wire.TypeError
	h.Sequence = 0
	h.Final = true
	h.TimeoutMillis = 0
	p := wire.AppendErrorVersion(GetBuffer(wire.ErrorSize(h.Version, &e))[:0], h.Version, &e)
	return Frame{Header: h, Payload: p, Pooled: true}
}

// A Batch collects the writers that frames were queued for by one
// goroutine's work (a connection's reader handling one frame), so that
// each writes what it has once that work is done: one write per target
// rather than one per frame. A Batch belongs to one goroutine; its zero
// value is empty.
type Batch struct{ ws []Writer }

// A Writer is what a Batch flushes: a connection with frames queued.
type Writer interface {
	// WriteQueued writes what is queued, or wakes the goroutine that
	// writes it.
	WriteQueued()
}

// Add puts w in the batch, once.
func (b *Batch) Add(w Writer) {
	for _, x := range b.ws {
		if x == w {
			return
		}
	}
	b.ws = append(b.ws, w)
}

// Flush has every writer in the batch write what it has queued, and
// empties the batch. The caller must hold no lock that a SentNotifier
// takes (router locks): Flush may call them.
func (b *Batch) Flush() {
	for i, w := range b.ws {
		w.WriteQueued()
		b.ws[i] = nil
	}
	b.ws = b.ws[:0]
}
