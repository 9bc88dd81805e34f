package frameconn

// Inline writes: a small batch written on the goroutine that flushes it,
// while the writer goroutine is idle, saving the hand-off.

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// inlineLimit bounds the bytes an inline write copies: more goes to the
// writer goroutine.
const inlineLimit = 16 << 10

// WriteQueued makes c a frame.Writer, which a frame.Batch flushes: on the
// calling goroutine for a connection with Config.InlineWrites whose writer
// is idle and whose socket takes it without blocking (writeInline), and
// otherwise by waking the connection's writer goroutine.
func (c *Conn) WriteQueued() { c.writeInline() }

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
	written := len(buf)
	if err == nil && (werr == nil || errors.Is(werr, syscall.EAGAIN)) && n < len(buf) {
		// The socket is full: the writer writes the rest, with its
		// deadline, and finishes the batch — unless it stopped while
		// this write ran (the connection closed), and nobody will.
		c.mu.Lock()
		if !c.writerGone {
			c.rest, c.restBatch = buf[n:], batch
			c.mu.Unlock()
			c.wake()
			return
		}
		c.mu.Unlock()
		err, written = ErrClosed, n
	}
	if err == nil {
		err = werr
	}
	c.finishBatch(batch, written, err)
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
func (c *Conn) finishBatch(batch []frame.Frame, bytes int, err error) {
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
