package frameconn

// The write queue: frames other goroutines hand a connection's writer,
// and what they cost while they wait.

import "github.com/socketbus/socketbus/internal/frame"

// Enqueue queues f for writing and returns at once. The writer owns f's
// payload from here on. Flow control, not this queue, bounds how much is
// queued.
func (c *Conn) Enqueue(f frame.Frame) error { return c.EnqueueIn(f, nil) }

// EnqueueIn is Enqueue, except that with a non-nil batch the writer is
// woken when the batch is flushed rather than at once.
func (c *Conn) EnqueueIn(f frame.Frame, b *frame.Batch) error {
	c.mu.Lock()
	if c.err != nil || c.closing {
		c.mu.Unlock()
		if f.Pooled {
			frame.PutBuffer(f.Payload)
		}
		return ErrClosed
	}
	c.queue = append(c.queue, f)
	c.mu.Unlock()
	c.queued(&f)
	switch {
	case f.Lazy:
	case b != nil:
		b.Add(c)
	default:
		c.wake()
	}
	return nil
}

// EnqueueAll queues several frames at once, so that they go out in one
// write when the writer is idle. It takes ownership of their payloads.
func (c *Conn) EnqueueAll(fs []frame.Frame) error { return c.EnqueueAllIn(fs, nil) }

// EnqueueAllIn is EnqueueAll, except that with a non-nil batch the writer
// is woken (or the frames written inline) when the batch is flushed.
func (c *Conn) EnqueueAllIn(fs []frame.Frame, b *frame.Batch) error {
	if err := c.appendQueue(fs); err != nil {
		return err
	}
	if b != nil {
		b.Add(c)
	} else {
		c.wake()
	}
	return nil
}

// EnqueueAllInline queues fs and writes them from the calling goroutine as
// frame.Batch.Flush would (writeInline), or leaves them to the writer. The
// caller must hold no lock a frame.SentNotifier takes.
func (c *Conn) EnqueueAllInline(fs []frame.Frame) error {
	if err := c.appendQueue(fs); err != nil {
		return err
	}
	c.writeInline()
	return nil
}

// appendQueue queues fs and counts them, or releases their payloads and
// fails with ErrClosed once the connection is closing.
func (c *Conn) appendQueue(fs []frame.Frame) error {
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
func releasePayloads(fs []frame.Frame) {
	for i := range fs {
		if fs[i].Pooled {
			frame.PutBuffer(fs[i].Payload)
		}
	}
}

// drop uncounts queued frames and releases their payloads: they were
// written, or never will be.
func (c *Conn) drop(fs []frame.Frame) {
	for i := range fs {
		c.written(&fs[i])
	}
	releasePayloads(fs)
}

func (c *Conn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// queued counts a frame just queued, and cuts the connection off as a slow
// consumer when unbounded frames pile up. It is called with router locks
// held, so the cut runs in a goroutine of its own.
func (c *Conn) queued(f *frame.Frame) {
	cost := frame.Cost(f)
	c.queuedBytes.Add(cost)
	if f.Sent != nil {
		return // flow control bounds it, and the relay pays for it
	}
	if !f.FlowControlled {
		c.unboundedBytes.Add(cost)
	}
	if f.Payer != nil {
		f.Payer.Charge(cost) // bounded by what the reader asked for
		return
	}
	c.acctMu.Lock()
	c.charge(cost)
	control := c.controlBytes.Add(cost)
	c.acctMu.Unlock()
	if limit := int64(c.cfg.MaxControlBytes); control > limit && limit > 0 && c.slowCut.CompareAndSwap(false, true) {
		go c.Close(ErrSlowConsumer)
	}
}

// written uncounts a frame that was written or dropped.
func (c *Conn) written(f *frame.Frame) {
	cost := frame.Cost(f)
	c.queuedBytes.Add(-cost)
	if f.Sent != nil {
		return
	}
	if !f.FlowControlled {
		c.unboundedBytes.Add(-cost)
	}
	switch {
	case f.Payer != nil:
		f.Payer.Release(cost)
	default:
		c.acctMu.Lock()
		c.controlBytes.Add(-cost)
		c.uncharge(cost)
		c.acctMu.Unlock()
	}
}

// ReadBatch returns the batch of the reader goroutine: a handler passes it
// to EnqueueIn so that what it queues is written when the reader has
// handled the burst of frames it read. Only the handler may use it.
func (c *Conn) ReadBatch() *frame.Batch { return &c.batch }
