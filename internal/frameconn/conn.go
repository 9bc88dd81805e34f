// Package frameconn is the framed-connection layer that the socketbus client
// and server share: one reader goroutine and one writer goroutine per
// connection, frames in both directions, writes coalesced.
package frameconn

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

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
	Sent SentNotifier
	// Lazy frames do not wake the writer: they go out with the next write
	// something else causes. For acknowledgements nobody waits on.
	Lazy bool
	// Payer, when set, pays for the frame while it is queued, instead of
	// the connection's account, and the frame does not count toward
	// MaxControlBytes: something other than the slow-consumer cap bounds
	// it (a whole message the reader asked for, by a request it sent or
	// credit it granted, charged to the member that sent it).
	Payer Memory
}

// Batch collects connections that have frames queued but whose writers
// have not been woken yet, so that frames for one connection produced in a
// burst go out in one write. A Batch belongs to one goroutine.
type Batch struct{ conns []*Conn }

func (b *Batch) add(c *Conn) {
	for _, x := range b.conns {
		if x == c {
			return
		}
	}
	b.conns = append(b.conns, c)
}

// Flush writes what the batch's connections have queued: on the calling
// goroutine, for a connection with Config.InlineWrites whose writer is
// idle and whose socket takes it without blocking, and otherwise by waking
// the connection's writer goroutine. The caller must hold no lock that a
// SentNotifier takes (router locks): Flush may call them.
func (b *Batch) Flush() {
	for i, c := range b.conns {
		c.writeInline()
		b.conns[i] = nil
	}
	b.conns = b.conns[:0]
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

// tellTaken tells the frames' TakeNotifiers that they are being written.
func tellTaken(batch []Frame) {
	for i := range batch {
		if t, ok := batch[i].Sent.(TakeNotifier); ok {
			t.FrameTaken()
		}
	}
}

// Handler is called by the reader goroutine for every frame read. It owns
// f.Payload. Returning an error closes the connection with that error.
type Handler func(f Frame) error

// Config tunes a Conn. The zero value works.
type Config struct {
	// WriteTimeout bounds each write to the socket (one writev of
	// everything queued at that moment): a peer that does not take it in
	// time is cut off. Zero means no limit.
	WriteTimeout time.Duration
	// FrameDeadline bounds the time from a frame's first byte to its last:
	// a peer that starts a frame and stalls is cut off. Zero means no limit.
	FrameDeadline time.Duration
	// PingInterval, when positive, makes the connection ping a peer it has
	// heard nothing from for that long, with PingHeader as the ping frame's
	// header (its type and flags are set here). After two pings go
	// unanswered the connection closes with ErrIdle.
	PingInterval time.Duration
	PingHeader   wire.Header
	// MaxQueuedBytes bounds the write queue as far as the peer can grow it:
	// while frames costing more than this much memory (FrameCost) are
	// queued, the reader stops reading, so a peer that sends without
	// reading (pings, requests that are refused) meets its own TCP
	// backpressure instead of growing our memory. Zero means 4 MiB. The
	// writer never waits for the reader, so this cannot deadlock.
	MaxQueuedBytes int
	// MaxControlBytes bounds the memory of queued frames that no flow
	// control bounds — everything but relayed stream bytes, which carry a
	// SentNotifier, and whole messages, which carry a Payer — however they
	// were caused (other connections' cancels included): a connection
	// whose queue holds more is cut off with ErrSlowConsumer. Zero means
	// no limit (a client's own queue holds the bodies it sends).
	MaxControlBytes int
	// Account, when set, is charged for the memory the connection holds
	// beyond flow-controlled stream bytes: queued control frames, the
	// payload of the frame being read and the writer's scratch buffer.
	Account Memory
	// InlineWrites lets Batch.Flush write small batches on the flushing
	// goroutine, with one non-blocking write, while no write is in
	// progress, saving the hand-off to the writer goroutine; what the
	// socket does not take at once goes to the writer. It needs a socket
	// that offers syscall.Conn (plain TCP), and is ignored otherwise.
	InlineWrites bool
	// Version is the protocol version the connection speaks (the version
	// byte of its join): every frame read must carry it, and the frames
	// the connection makes itself (pings, error frames) carry it. Zero
	// means wire.Version (1).
	Version uint8
}

// FrameOverhead is what a queued frame costs beyond its payload buffer: the
// Frame itself in queue slices that may be twice their length.
const FrameOverhead = 160

// FrameCost is the memory a queued frame holds.
func FrameCost(f *Frame) int64 { return FrameOverhead + int64(cap(f.Payload)) }

// ErrSlowConsumer is the error a connection closes with when more than
// MaxControlBytes of frames are queued for a peer that does not read them.
var ErrSlowConsumer = errors.New("frameconn: slow consumer: too much queued for a peer that does not read")

// ErrIdle is the error a connection closes with when its peer missed two
// keepalive pings.
var ErrIdle = errors.New("frameconn: peer missed two keepalive pings")

// ErrClosed is returned by Enqueue once the connection is closed.
var ErrClosed = errors.New("frameconn: connection closed")

// Conn runs a framed conversation over a net.Conn.
//
// The reader goroutine owns br and batch and calls the handler; the writer
// goroutine owns scratch, bufs, writing and spare; the ping timer's callback
// owns pingSeen and missed. mu guards queue, closing, err and the timers.
type Conn struct {
	nc  net.Conn
	cfg Config

	br      *bufio.Reader
	scratch []byte      // the writer's buffer for headers and small payloads
	bufs    net.Buffers // the writer's writev list
	writing net.Buffers // what WriteTo has left to write

	mu    sync.Mutex
	queue []Frame
	spare []Frame
	// busy says a write is in progress, the writer goroutine's or an
	// inline one's (writeInline): whoever set it owns scratch, bufs,
	// writing and spare until it clears it. rest and restBatch are an
	// inline write the socket did not take whole, handed to the writer
	// with busy still set.
	busy      bool
	rest      []byte
	restBatch []Frame
	raw       syscall.RawConn // nil without InlineWrites or a socket that offers it
	// writerGone is set when the writer goroutine has stopped.
	writerGone bool
	// writesDone is closed once the writer goroutine has stopped and no
	// inline write is running (WaitWrites).
	writesDone chan struct{}
	// The inline write's arguments and results, owned by the busy holder;
	// inlineWrite is c.rawWrite, made once.
	inlineBuf   []byte
	inlineN     int
	inlineErr   error
	inlineWrite func(fd uintptr) bool
	closing     bool // set by CloseAfterFlush: close once the queue is written
	lingers     bool // set by CloseAfterFlush: half-close after the last frame (linger)
	err         error
	// shutDown is set by the first shutdown. Later ones return at once
	// rather than wait for it: a goroutine that writes inline may close
	// while it holds a lock (a Send's window) that the first shutdown's
	// OnClose is waiting for, as a sync.Once's waiters would deadlock.
	shutDown atomic.Bool

	batch Batch // frames the handler queued for other connections; reader-owned

	// Keepalive state, owned by the ping timer's callback.
	pingTimer  *time.Timer
	drainTimer *time.Timer // bounds Drain; guarded by mu
	pingSeen   int64       // FramesIn at the last tick
	missed     int         // silent half-interval ticks since the peer last spoke

	queuedBytes  atomic.Int64  // memory of the frames in queue, not yet written (FrameCost)
	controlBytes atomic.Int64  // the part of queuedBytes without a SentNotifier
	slowCut      atomic.Bool   // the connection is being cut as a slow consumer
	scratchCost  int64         // the writer's scratch capacity charged to the account
	drained      chan struct{} // capacity 1: the writer wrote a batch

	kick     chan struct{} // capacity 1: wakes the writer
	done     chan struct{} // closed when the connection closes
	readDone chan struct{} // closed when the reader goroutine returns
	wg       sync.WaitGroup

	// Traffic counters, frames and bytes (headers included) in each direction.
	FramesIn, BytesIn, FramesOut, BytesOut atomic.Int64

	// OnClose, when set before Start, is called once from the goroutine
	// that closes the connection, after the socket is closed. That may be
	// a goroutine writing inline (EnqueueAllInline, Batch.Flush), which
	// may hold its caller's locks: OnClose must not take those, nor wait
	// for the connection's writes to end (WaitWrites).
	OnClose func(err error)
}

// New wraps nc. Call Start to begin reading and writing.
func New(nc net.Conn, cfg Config) *Conn {
	c := &Conn{
		nc:      nc,
		cfg:     cfg,
		kick:    make(chan struct{}, 1),
		drained: make(chan struct{}, 1),
		done:    make(chan struct{}),

		writesDone: make(chan struct{}),
		readDone:   make(chan struct{}),
	}
	if c.cfg.MaxQueuedBytes <= 0 {
		c.cfg.MaxQueuedBytes = 4 << 20
	}
	if c.cfg.Version == 0 {
		c.cfg.Version = wire.Version
	}
	// 16 KiB holds a burst of small frames; a large payload bypasses the
	// buffer and is read straight into its own.
	c.br = bufio.NewReaderSize(nc, 16<<10)
	if sc, ok := nc.(syscall.Conn); ok && cfg.InlineWrites {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
			c.inlineWrite = c.rawWrite
		}
	}
	return c
}

// rawWrite makes one write attempt of inlineBuf; it never waits for the
// socket.
func (c *Conn) rawWrite(fd uintptr) bool {
	c.inlineN, c.inlineErr = syscall.Write(int(fd), c.inlineBuf)
	return true
}

// EnqueueAllInline queues fs and writes them from the calling goroutine as
// Batch.Flush would (writeInline), or leaves them to the writer. The
// caller must hold no lock a SentNotifier takes.
func (c *Conn) EnqueueAllInline(fs []Frame) error {
	if err := c.appendQueue(fs); err != nil {
		return err
	}
	c.writeInline()
	return nil
}

// appendQueue queues fs and counts them, or releases their payloads and
// fails with ErrClosed once the connection is closing.
func (c *Conn) appendQueue(fs []Frame) error {
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		releasePayloads(fs)
		return ErrClosed
	}
	c.queue = append(c.queue, fs...)
	c.mu.Unlock()
	for i := range fs {
		c.queued(&fs[i])
	}
	return nil
}

// releasePayloads returns the pooled payloads of frames that will not be
// written.
func releasePayloads(fs []Frame) {
	for i := range fs {
		if fs[i].Pooled {
			PutBuffer(fs[i].Payload)
		}
	}
}

// drop uncounts queued frames and releases their payloads: they were
// written, or never will be.
func (c *Conn) drop(fs []Frame) {
	for i := range fs {
		c.written(&fs[i])
	}
	releasePayloads(fs)
}

// inlineLimit bounds the bytes an inline write copies: more goes to the
// writer goroutine.
const inlineLimit = 16 << 10

// writeInline writes what is queued with one non-blocking write on the
// calling goroutine, if no write is in progress and it is small; whatever
// the socket does not take goes to the writer goroutine, and anything it
// cannot do inline it leaves to the writer too. It never blocks.
func (c *Conn) writeInline() {
	if c.raw == nil {
		c.wake()
		return
	}
	c.mu.Lock()
	if c.busy || c.err != nil || c.closing || len(c.queue) == 0 {
		c.mu.Unlock()
		c.wake()
		return
	}
	need := 0
	for i := range c.queue {
		if len(c.queue[i].Payload) >= copyLimit {
			need = inlineLimit + 1
			break
		}
		need += wire.HeaderSize + len(c.queue[i].Payload)
	}
	if need > inlineLimit {
		c.mu.Unlock()
		c.wake()
		return
	}
	batch := c.queue
	c.queue = c.spare[:0]
	c.busy = true
	c.mu.Unlock()

	if cap(c.scratch) < need {
		c.setScratch(make([]byte, 0, max(need, 4<<10)))
	}
	buf := c.scratch[:0]
	for i := range batch {
		f := &batch[i]
		f.Header.Length = uint32(len(f.Payload))
		buf = buf[:len(buf)+wire.HeaderSize]
		wire.PutHeader(buf[len(buf)-wire.HeaderSize:], &f.Header)
		buf = append(buf, f.Payload...)
	}
	c.inlineBuf = buf
	tellTaken(batch)
	err := c.raw.Write(c.inlineWrite)
	n, werr := c.inlineN, c.inlineErr
	c.inlineBuf, c.inlineErr = nil, nil
	if n < 0 {
		n = 0
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The writer's last deadline has passed; it arms a new one.
		err, n = nil, 0
	}
	if err == nil && (werr == nil || errors.Is(werr, syscall.EAGAIN)) && n < len(buf) {
		// The socket is full: the writer writes the rest, with its
		// deadline, and finishes the batch.
		c.mu.Lock()
		c.rest, c.restBatch = buf[n:], batch
		c.mu.Unlock()
		c.wake()
		return
	}
	if err == nil {
		err = werr
	}
	c.finishBatch(batch, len(buf), err)
	c.mu.Lock()
	c.spare = batch[:0]
	c.busy = false
	more := len(c.queue) > 0 || c.closing
	gone := c.writerGone
	if gone {
		close(c.writesDone) // the writer stopped while this write ran
	}
	c.mu.Unlock()
	if gone {
		c.setScratch(nil)
	}
	if err != nil {
		c.Close(fmt.Errorf("frameconn: write: %w", err))
		return
	}
	if more {
		c.wake()
	}
}

// finishBatch does what follows the write of batch (bytes long, failed
// with err if not nil): it uncounts and releases the frames, counts the
// traffic, signals the reader and tells the frames' notifiers.
func (c *Conn) finishBatch(batch []Frame, bytes int, err error) {
	c.drop(batch)
	c.FramesOut.Add(int64(len(batch)))
	c.BytesOut.Add(int64(bytes))
	select {
	case c.drained <- struct{}{}:
	default:
	}
	if err == nil {
		for i := range batch {
			if batch[i].Sent != nil {
				batch[i].Sent.FrameSent(len(batch[i].Payload))
			}
		}
	}
	clear(batch)
}

// Start launches the reader and writer goroutines.
func (c *Conn) Start(h Handler) {
	c.wg.Add(2)
	go c.readLoop(h)
	go c.writeLoop()
	if c.cfg.PingInterval > 0 {
		c.mu.Lock()
		if c.err == nil {
			c.pingTimer = time.AfterFunc(c.cfg.PingInterval/2, c.keepalive)
		}
		c.mu.Unlock()
	}
}

// keepalive ticks every half PingInterval and counts the ticks in which
// nothing arrived from the peer (any frame counts as an answer): after one
// silent interval it pings, half an interval later it pings again, and when
// a second full interval has passed in silence — both pings missed — it
// closes with ErrIdle. A dead peer is noticed two intervals after it last
// spoke.
func (c *Conn) keepalive() {
	if n := c.FramesIn.Load(); n != c.pingSeen {
		c.pingSeen, c.missed = n, 0
	} else {
		c.missed++ // counts silent half-interval ticks
		switch {
		case c.missed >= 4:
			c.Close(ErrIdle)
			return
		case c.missed >= 2:
			h := c.cfg.PingHeader
			h.Version, h.Type, h.Flags = c.cfg.Version, wire.TypeStart, wire.FlagPing
			h.Final = true
			if c.Enqueue(Frame{Header: h}) != nil {
				return
			}
		}
	}
	c.mu.Lock()
	if c.err == nil {
		c.pingTimer.Reset(c.cfg.PingInterval / 2)
	}
	c.mu.Unlock()
}

// Done is closed when the connection has closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns the error the connection closed with (the first one wins), or
// nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Wait blocks until both goroutines have returned. It must not be called
// from the handler.
func (c *Conn) Wait() { c.wg.Wait() }

// WaitWrites blocks until the connection has closed, its writer goroutine
// has stopped and no inline write is running: from then on no frame is
// taken for writing, and no notifier is told anything more. It needs
// Start to have been called, and must not be called from OnClose.
func (c *Conn) WaitWrites() { <-c.writesDone }

// Enqueue queues f for writing and returns at once. The writer owns f's
// payload from here on. Flow control, not this queue, bounds how much is
// queued.
func (c *Conn) Enqueue(f Frame) error { return c.EnqueueIn(f, nil) }

// ReadBatch returns the batch of the reader goroutine: a handler passes it
// to EnqueueIn so that what it queues is written when the reader has
// handled the burst of frames it read. Only the handler may use it.
func (c *Conn) ReadBatch() *Batch { return &c.batch }

func (c *Conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// EnqueueIn is Enqueue, except that with a non-nil batch the writer is
// woken when the batch is flushed rather than at once.
func (c *Conn) EnqueueIn(f Frame, b *Batch) error {
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		if f.Pooled {
			PutBuffer(f.Payload)
		}
		return ErrClosed
	}
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	c.queued(&f)
	switch {
	case f.Lazy:
	case b != nil:
		b.add(c)
	default:
		c.wake()
	}
	return nil
}

// EnqueueAll queues several frames at once, so that they go out in one
// write when the writer is idle. It takes ownership of their payloads.
func (c *Conn) EnqueueAll(fs []Frame) error { return c.EnqueueAllIn(fs, nil) }

// EnqueueAllIn is EnqueueAll, except that with a non-nil batch the writer
// is woken (or the frames written inline) when the batch is flushed.
func (c *Conn) EnqueueAllIn(fs []Frame, b *Batch) error {
	if err := c.appendQueue(fs); err != nil {
		return err
	}
	if b != nil {
		b.add(c)
	} else {
		c.wake()
	}
	return nil
}

// Version returns the protocol version the connection speaks.
func (c *Conn) Version() uint8 { return c.cfg.Version }

// SetAccount sets Config.Account; call it before Start.
func (c *Conn) SetAccount(a Memory) { c.cfg.Account = a }

// QueuedBytes returns the memory of the frames queued and not yet written.
func (c *Conn) QueuedBytes() int64 { return c.queuedBytes.Load() }

// queued counts a frame just queued, and cuts the connection off as a slow
// consumer when unbounded frames pile up. It is called with router locks
// held, so the cut runs in a goroutine of its own.
func (c *Conn) queued(f *Frame) {
	cost := FrameCost(f)
	c.queuedBytes.Add(cost)
	if f.Sent != nil {
		return // flow control bounds it, and the relay pays for it
	}
	if f.Payer != nil {
		f.Payer.Charge(cost) // bounded by what the reader asked for
		return
	}
	c.charge(cost)
	if limit := int64(c.cfg.MaxControlBytes); c.controlBytes.Add(cost) > limit && limit > 0 && c.slowCut.CompareAndSwap(false, true) {
		go c.Close(ErrSlowConsumer)
	}
}

// written uncounts a frame that was written or dropped.
func (c *Conn) written(f *Frame) {
	cost := FrameCost(f)
	c.queuedBytes.Add(-cost)
	switch {
	case f.Sent != nil:
	case f.Payer != nil:
		f.Payer.Release(cost)
	default:
		c.controlBytes.Add(-cost)
		c.uncharge(cost)
	}
}

// CloseAfterFlush queues f as the last frame: once everything queued before
// it and f itself are written, the connection closes with err. Later
// Enqueues fail. The socket is closed anyway after the write timeout.
func (c *Conn) CloseAfterFlush(f Frame, err error) { c.closeAfterQueue(&f, err, 0) }

// Drain closes the connection with err once everything queued has been
// written, or after timeout, whichever comes first. Later Enqueues fail.
func (c *Conn) Drain(err error, timeout time.Duration) { c.closeAfterQueue(nil, err, timeout) }

// closeAfterQueue is CloseAfterFlush (with a last frame) and Drain (with a
// timeout of its own): it marks the connection closing, stops reading, and
// lets the writer write what is queued and then close.
func (c *Conn) closeAfterQueue(last *Frame, err error, timeout time.Duration) {
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		if last != nil && last.Pooled {
			PutBuffer(last.Payload)
		}
		return
	}
	if last != nil {
		c.queue = append(c.queue, *last)
		c.queued(last)
		c.lingers = true
	}
	c.closing = true
	c.err = err
	if timeout > 0 {
		c.drainTimer = time.AfterFunc(timeout, c.shutdown)
	}
	c.mu.Unlock()
	// Stop reading at once: nothing more the peer says matters.
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	c.wake()
}

// Close closes the connection with err (the first error wins) and returns
// without waiting for the goroutines.
func (c *Conn) Close(err error) {
	if err == nil {
		err = ErrClosed
	}
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.shutdown()
}

// Refuse makes the connection refuse every frame queued from now on, as a
// closed one does, with err as its error, but leaves it open: Close still
// closes it. A server closing all its connections at once refuses them
// all first, so that no client is told of another's end (a request's
// sender gone) before its own connection ends.
func (c *Conn) Refuse(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *Conn) shutdown() {
	if c.shutDown.Swap(true) {
		return
	}
	c.mu.Lock()
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	if c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
	if c.OnClose != nil {
		c.OnClose(c.Err())
	}
}

func (c *Conn) readLoop(h Handler) {
	defer c.wg.Done()
	defer close(c.readDone)
	var hdr [wire.HeaderSize]byte
	defer c.batch.Flush()
	for {
		if c.br.Buffered() == 0 {
			c.batch.Flush() // the burst is handled: write what it produced
		}
		for c.queuedBytes.Load() > int64(c.cfg.MaxQueuedBytes) {
			c.batch.Flush()
			select {
			case <-c.drained:
			case <-c.done:
				return
			}
		}
		err := c.readFrame(hdr[:], h)
		if err == nil {
			continue
		}
		c.mu.Lock()
		closing := c.closing
		c.mu.Unlock()
		if closing {
			return // the writer flushes the last frame and closes
		}
		var werr *wire.Error
		if errors.As(err, &werr) {
			// Bad input: tell the peer why, then close.
			c.CloseAfterFlush(ErrorFrame(wire.Header{Version: c.cfg.Version}, werr.Code, werr.Message), err)
			return
		}
		c.Close(err)
		return
	}
}

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

// readFrame reads one frame and hands it to h.
func (c *Conn) readFrame(hdr []byte, h Handler) error {
	// A frame may take as long as it likes to begin, but once its first
	// byte is here the rest must follow within FrameDeadline. Deadlines
	// are only set when a read would really wait on the socket.
	armed := false
	if c.cfg.FrameDeadline > 0 && c.br.Buffered() < wire.HeaderSize {
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			return err
		}
		if _, err := c.br.Peek(1); err != nil {
			return readErr(err)
		}
		if c.br.Buffered() < wire.HeaderSize {
			if err := c.nc.SetReadDeadline(time.Now().Add(c.cfg.FrameDeadline)); err != nil {
				return err
			}
			armed = true
		}
	}
	if _, err := io.ReadFull(c.br, hdr); err != nil {
		return readErr(err)
	}
	header, _, err := wire.ParseHeader(hdr)
	if err != nil {
		return err
	}
	if header.Version != c.cfg.Version {
		return wire.Errorf(wire.CodeBadVersion, "a version %d frame on a connection that joined with version %d", header.Version, c.cfg.Version)
	}
	if c.cfg.FrameDeadline > 0 && !armed && c.br.Buffered() < int(header.Length) {
		if err := c.nc.SetReadDeadline(time.Now().Add(c.cfg.FrameDeadline)); err != nil {
			return err
		}
	}
	f := Frame{Header: header}
	c.FramesIn.Add(1)
	c.BytesIn.Add(int64(wire.HeaderSize) + int64(header.Length))
	if header.Length > 0 {
		// The buffer is charged while this goroutine holds it: a peer that
		// announces a large frame and trickles it holds real memory.
		// Whatever the handler keeps of it is charged again where it is
		// kept.
		cost := int64(BufferSize(int(header.Length)))
		c.charge(cost)
		defer c.uncharge(cost)
		f.Payload = GetBuffer(int(header.Length))
		f.Pooled = true
		if _, err := io.ReadFull(c.br, f.Payload); err != nil {
			PutBuffer(f.Payload)
			return readErr(err)
		}
	}
	return h(f)
}

func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("frameconn: connection ended inside a frame: %w", err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return wire.Errorf(wire.CodeIdle, "frame not completed within the read deadline")
	}
	return err
}

// writeDone makes the writer idle after writing batch, keeping batch's
// array for the next one, and closes the connection if the write failed;
// it reports whether it did.
func (c *Conn) writeDone(batch []Frame, err error) bool {
	c.mu.Lock()
	c.spare = batch[:0]
	c.busy = false
	c.mu.Unlock()
	if err != nil {
		c.Close(fmt.Errorf("frameconn: write: %w", err))
		return true
	}
	return false
}

func (c *Conn) writeLoop() {
	defer c.wg.Done()
	defer c.dropQueue()
	for {
		select {
		case <-c.kick:
		case <-c.done:
			return
		}
		// Let goroutines that are about to queue more frames run first:
		// under load this turns many small writes into one, and on an idle
		// machine it returns at once.
		runtime.Gosched()
		c.mu.Lock()
		if rest := c.rest; rest != nil {
			// An inline write the socket did not take whole: finish it.
			batch := c.restBatch
			c.rest, c.restBatch = nil, nil
			c.mu.Unlock()
			var err error
			if t := c.cfg.WriteTimeout; t > 0 {
				err = c.nc.SetWriteDeadline(time.Now().Add(t))
			}
			if err == nil {
				_, err = c.nc.Write(rest)
			}
			c.finishBatch(batch, len(rest), err)
			if c.writeDone(batch, err) {
				return
			}
			c.wake() // look at the queue again
			continue
		}
		if c.busy {
			c.mu.Unlock() // an inline write is running; it wakes us after
			continue
		}
		batch := c.queue
		c.queue = c.spare[:0]
		closing := c.closing
		c.busy = true
		c.mu.Unlock()

		err := c.writeBatch(batch)
		for i := range batch {
			batch[i] = Frame{}
		}
		if c.writeDone(batch, err) {
			return
		}
		if closing {
			c.mu.Lock()
			drained := len(c.queue) == 0
			c.mu.Unlock()
			if drained {
				c.linger()
				c.shutdown()
				return
			}
		}
	}
}

// lingerTimeout and lingerLimit bound how long linger waits for the peer
// to close, and how much it reads meanwhile.
const (
	lingerTimeout = time.Second
	lingerLimit   = 1 << 20
)

// linger, after CloseAfterFlush's last frame is written, half-closes the
// socket and reads and drops what the peer still sends until it closes
// its end, for at most lingerTimeout and lingerLimit bytes, or until the
// connection is closed.
// Closing a socket with input unread resets the connection, and a reset
// can destroy what the peer has not read yet: the last frame (a server's
// goodbye, which tells its clients which requests it never read) would
// be lost exactly when the peer is still writing.
func (c *Conn) linger() {
	c.mu.Lock()
	lingers := c.lingers
	c.mu.Unlock()
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !lingers || !ok || cw.CloseWrite() != nil {
		return
	}
	select {
	case <-c.readDone: // the reader stopped reading (closeAfterQueue); br is free
	case <-c.done:
		return
	}
	if c.nc.SetReadDeadline(time.Now().Add(lingerTimeout)) == nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(c.br, lingerLimit))
	}
}

// dropQueue releases what is still queued when the writer stops: nothing
// can be queued after the connection has closed.
func (c *Conn) dropQueue() {
	c.mu.Lock()
	// An inline write still running releases the scratch buffer and ends
	// the writes; one that handed its rest to the writer has returned.
	inline := c.busy && c.restBatch == nil
	q := append(c.queue, c.restBatch...)
	c.queue, c.spare, c.rest, c.restBatch = nil, nil, nil, nil
	c.writerGone = true
	if !inline {
		c.busy = false
		close(c.writesDone)
	}
	c.mu.Unlock()
	c.drop(q)
	if !inline {
		c.setScratch(nil)
	}
}

// maxScratch bounds the writer's scratch buffer: a batch whose headers and
// small payloads need more is written in several writev calls.
const maxScratch = 64 << 10

// setScratch replaces the writer's scratch buffer, charging its capacity.
func (c *Conn) setScratch(b []byte) {
	c.uncharge(c.scratchCost)
	c.scratch = b
	c.scratchCost = int64(cap(b))
	c.charge(c.scratchCost)
}

// writeBatch writes batch, in pieces whose copied bytes fit maxScratch.
func (c *Conn) writeBatch(batch []Frame) error {
	for len(batch) > 0 {
		need, n := 0, 0
		for n < len(batch) {
			k := wire.HeaderSize
			if len(batch[n].Payload) < copyLimit {
				k += len(batch[n].Payload)
			}
			if n > 0 && need+k > maxScratch {
				break
			}
			need += k
			n++
		}
		if err := c.writeSegment(batch[:n], need); err != nil {
			c.drop(batch[n:])
			return err
		}
		batch = batch[n:]
	}
	return nil
}

// writeSegment writes frames whose headers and small payloads take need
// bytes of scratch, in one writev.
func (c *Conn) writeSegment(batch []Frame, need int) error {
	if len(batch) == 0 {
		return nil // woken to close, with nothing left to write
	}
	// Headers and small payloads are copied into one scratch buffer; large
	// payloads are written from where they are, with the scratch runs
	// between them, in one writev.
	if cap(c.scratch) < need {
		c.setScratch(make([]byte, 0, min(max(need, 2*cap(c.scratch), 4<<10), maxScratch+copyLimit)))
	}
	s := c.scratch[:0]
	bufs := c.bufs[:0]
	run := 0
	for i := range batch {
		f := &batch[i]
		f.Header.Length = uint32(len(f.Payload))
		s = s[:len(s)+wire.HeaderSize]
		wire.PutHeader(s[len(s)-wire.HeaderSize:], &f.Header)
		if len(f.Payload) < copyLimit {
			s = append(s, f.Payload...)
			continue
		}
		bufs = append(bufs, s[run:], f.Payload)
		run = len(s)
	}
	if run < len(s) {
		bufs = append(bufs, s[run:])
	}
	bytes := 0
	for _, b := range bufs {
		bytes += len(b)
	}
	tellTaken(batch)
	var err error
	if t := c.cfg.WriteTimeout; t > 0 {
		err = c.nc.SetWriteDeadline(time.Now().Add(t))
	}
	switch {
	case err != nil:
	case len(bufs) == 1:
		_, err = c.nc.Write(bufs[0])
	default:
		c.writing = bufs // WriteTo consumes its receiver; a field does not escape
		_, err = c.writing.WriteTo(c.nc)
		c.writing = nil
	}
	clear(bufs)
	c.bufs = bufs[:0]
	if cap(c.scratch) > 16<<10 {
		c.setScratch(nil) // do not keep a burst's worth of memory
	}
	c.finishBatch(batch, bytes, err)
	return err
}

// copyLimit is the payload size from which the writer hands a payload to
// writev instead of copying it next to its header.
const copyLimit = 4 << 10

// IsTimeout reports whether err is a timeout of a net.Conn's deadline.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Memory is the account a connection charges the memory it holds to: the
// server's budget (internal/budget's Account) is one. Its methods must be
// safe for concurrent use; a client's connections have none.
type Memory interface {
	Charge(n int64)
	Release(n int64)
}

// charge charges n bytes to the connection's account, if it has one.
func (c *Conn) charge(n int64) {
	if c.cfg.Account != nil {
		c.cfg.Account.Charge(n)
	}
}

// uncharge releases n bytes charged to the connection's account.
func (c *Conn) uncharge(n int64) {
	if c.cfg.Account != nil {
		c.cfg.Account.Release(n)
	}
}
