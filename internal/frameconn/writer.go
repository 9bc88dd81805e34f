package frameconn

// The writer goroutine: it owns the scratch buffer and the writev list,
// and writes what is queued in as few system calls as it can.

import (
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

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
			batch[i] = frame.Frame{}
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

// writeDone makes the writer idle after writing batch, keeping batch's
// array for the next one, and closes the connection if the write failed;
// it reports whether it did.
func (c *Conn) writeDone(batch []frame.Frame, err error) bool {
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
func (c *Conn) writeBatch(batch []frame.Frame) error {
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
func (c *Conn) writeSegment(batch []frame.Frame, need int) error {
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

// tellTaken tells the frames' TakeNotifiers that they are being written.
func tellTaken(batch []frame.Frame) {
	for i := range batch {
		if t, ok := batch[i].Sent.(frame.TakeNotifier); ok {
			t.FrameTaken()
		}
	}
}
