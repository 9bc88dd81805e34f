// Package frameconn is the framed-connection layer that the socketbus client
// and server share: one reader goroutine and one writer goroutine per
// connection, frames in both directions, writes coalesced.
package frameconn

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// Handler is called by the reader goroutine for every frame read. It owns
// f.Payload. Returning an error closes the connection with that error.
type Handler func(f frame.Frame) error

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
	// while frames that no credit bounds (neither a frame.SentNotifier
	// nor FlowControlled) cost more than this much memory (FrameCost) queued, the reader stops
	// reading, so a peer that sends without reading (pings, requests that
	// are refused) meets its own TCP backpressure instead of growing our
	// memory. Zero means 4 MiB. The writer never waits for the reader, and
	// stream frames, which the peer's own credit bounds, never pause it:
	// two ends that each queue the other more stream bytes than this keep
	// reading each other, where pausing on them would deadlock both.
	MaxQueuedBytes int
	// MaxControlBytes bounds the memory of queued frames that no flow
	// control bounds — everything but relayed stream bytes, which carry a
	// frame.SentNotifier, and whole messages, which carry a Payer — however they
	// were caused (other connections' cancels included): a connection
	// whose queue holds more is cut off with ErrSlowConsumer. Zero means
	// no limit (a client's own queue holds the bodies it sends).
	MaxControlBytes int
	// Account, when set, is charged for the memory the connection holds
	// beyond flow-controlled stream bytes: queued control frames, the
	// payload of the frame being read and the writer's scratch buffer.
	Account frame.Memory
	// InlineWrites lets frame.Batch.Flush write small batches on the flushing
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

	br      *readBuffer
	scratch []byte      // the writer's buffer for headers and small payloads
	bufs    net.Buffers // the writer's writev list
	writing net.Buffers // what WriteTo has left to write

	mu    sync.Mutex
	queue []frame.Frame
	spare []frame.Frame
	// busy says a write is in progress, the writer goroutine's or an
	// inline one's (writeInline): whoever set it owns scratch, bufs,
	// writing and spare until it clears it. rest and restBatch are an
	// inline write the socket did not take whole, handed to the writer
	// with busy still set.
	busy      bool
	rest      []byte
	restBatch []frame.Frame
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

	batch frame.Batch // frames the handler queued for other connections; reader-owned

	// Keepalive state, owned by the ping timer's callback.
	pingTimer  *time.Timer
	drainTimer *time.Timer // bounds Drain; guarded by mu
	pingSeen   int64       // FramesIn at the last tick
	missed     int         // silent half-interval ticks since the peer last spoke

	queuedBytes atomic.Int64 // memory of the frames in queue, not yet written (FrameCost)
	// unboundedBytes is the part of queuedBytes that no credit bounds
	// (neither a frame.SentNotifier nor FlowControlled): the reader pauses
	// on it (MaxQueuedBytes).
	unboundedBytes atomic.Int64
	// controlBytes is the part of queuedBytes charged to the account: no
	// frame.SentNotifier and no frame.Payer (MaxControlBytes).
	controlBytes atomic.Int64
	// account is what the connection charges (Config.Account, or what
	// SetAccount set); acctMu keeps the control frames' charges and
	// controlBytes in step with a SetAccount that comes while a frame is
	// queued (Shutdown's goodbye to a connection that is joining).
	account     atomic.Pointer[memoryRef]
	acctMu      sync.Mutex
	slowCut     atomic.Bool   // the connection is being cut as a slow consumer
	scratchCost int64         // the writer's scratch capacity charged to the account
	drained     chan struct{} // capacity 1: the writer wrote a batch

	kick     chan struct{} // capacity 1: wakes the writer
	done     chan struct{} // closed when the connection closes
	readDone chan struct{} // closed when the reader goroutine returns
	wg       sync.WaitGroup

	// Traffic counters, frames and bytes (headers included) in each direction.
	FramesIn, BytesIn, FramesOut, BytesOut atomic.Int64

	// onClose is what SetOnClose set; onCloseTaken says shutdown has
	// taken it (or found none), so that a later SetOnClose calls its
	// function itself. Both are guarded by mu.
	onClose      func(err error)
	onCloseTaken bool
}

// SetOnClose makes f be called once when the connection closes, from the
// goroutine that closes it, after the socket is closed. That may be a
// goroutine writing inline (EnqueueAllInline, frame.Batch.Flush), which
// may hold its caller's locks: f must not take those, nor wait for the
// connection's writes to end (WaitWrites). If the connection has closed
// already, SetOnClose calls f itself, at once. A connection that another
// goroutine may close while its owner is still setting it up (a server
// closing every connection during a client's join) so never loses its f.
func (c *Conn) SetOnClose(f func(err error)) {
	c.mu.Lock()
	if !c.onCloseTaken {
		c.onClose = f
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	f(c.Err())
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
	c.account.Store(&memoryRef{cfg.Account})
	if c.cfg.MaxQueuedBytes <= 0 {
		c.cfg.MaxQueuedBytes = 4 << 20
	}
	if c.cfg.Version == 0 {
		c.cfg.Version = wire.Version
	}
	// The read buffer starts small and grows with bursts (readbuf.go); a
	// large payload bypasses it and is read straight into its own.
	c.br = newReadBuffer(nc)
	if sc, ok := nc.(syscall.Conn); ok && cfg.InlineWrites && inlineWritesSupported {
		if rc, err := sc.SyscallConn(); err == nil {
			c.raw = rc
			c.inlineWrite = c.rawWrite
		}
	}
	return c
}

// Start launches the reader and writer goroutines.
func (c *Conn) Start(h Handler) {
	c.wg.Add(2)
	go c.readLoop(h)
	go c.writeLoop()
	c.startKeepalive()
}

// Serve runs the connection until both its reader and its writer have
// stopped: the writer on a goroutine of its own, the reader on the
// calling goroutine. It is Start then Wait with one goroutine, and its
// stack, fewer per connection.
func (c *Conn) Serve(h Handler) {
	c.wg.Add(2)
	go c.writeLoop()
	c.startKeepalive()
	c.readLoop(h)
	c.wg.Wait()
}

// startKeepalive arms the first keepalive tick, if the connection pings.
func (c *Conn) startKeepalive() {
	if c.cfg.PingInterval > 0 {
		c.mu.Lock()
		if c.err == nil {
			c.pingTimer = time.AfterFunc(c.cfg.PingInterval/2, c.keepalive)
		}
		c.mu.Unlock()
	}
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

// Version returns the protocol version the connection speaks.
func (c *Conn) Version() uint8 { return c.cfg.Version }

// SetAccount sets the account the connection charges (Config.Account),
// before Start. Control frames queued before it, charged to no account,
// are charged to a now, so that their release when written balances.
func (c *Conn) SetAccount(a frame.Memory) {
	c.acctMu.Lock()
	defer c.acctMu.Unlock()
	c.account.Store(&memoryRef{a})
	if n := c.controlBytes.Load(); n > 0 && a != nil {
		a.Charge(n)
	}
}

// memoryRef holds an account for an atomic.Pointer.
type memoryRef struct{ m frame.Memory }

// QueuedBytes returns the memory of the frames queued and not yet written.
func (c *Conn) QueuedBytes() int64 { return c.queuedBytes.Load() }

// CloseAfterFlush queues f as the last frame: once everything queued before
// it and f itself are written, the connection closes with err. Later
// Enqueues fail. The socket is closed anyway after the write timeout.
func (c *Conn) CloseAfterFlush(f frame.Frame, err error) { c.closeAfterQueue(&f, err, 0) }

// Drain closes the connection with err once everything queued has been
// written, or after timeout, whichever comes first. Later Enqueues fail.
func (c *Conn) Drain(err error, timeout time.Duration) { c.closeAfterQueue(nil, err, timeout) }

// closeAfterQueue is CloseAfterFlush (with a last frame) and Drain (with a
// timeout of its own): it marks the connection closing, stops reading, and
// lets the writer write what is queued and then close.
func (c *Conn) closeAfterQueue(last *frame.Frame, err error, timeout time.Duration) {
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		if last != nil && last.Pooled {
			frame.PutBuffer(last.Payload)
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
	onClose := c.onClose
	c.onClose, c.onCloseTaken = nil, true
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
	if onClose != nil {
		onClose(c.Err())
	}
}

// IsTimeout reports whether err is a timeout of a net.Conn's deadline.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// charge charges n bytes to the connection's account, if it has one.
func (c *Conn) charge(n int64) {
	if r := c.account.Load(); r != nil && r.m != nil {
		r.m.Charge(n)
	}
}

// uncharge releases n bytes charged to the connection's account.
func (c *Conn) uncharge(n int64) {
	if r := c.account.Load(); r != nil && r.m != nil {
		r.m.Release(n)
	}
}
