package socketbus

import (
	"bytes"
	"context"
	"io"
	"sync"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

// inStream is the client's buffer for one incoming body: a request body
// delivered to a receiver, or a response body arriving at its sender. The
// connection's reader goroutine pushes chunks without blocking; the consumer
// takes them in order and, as it does, grants the sender fresh credit, so
// the buffer never holds more than one window.
//
// The stream owns the pooled buffers in chunks (package frame's rule): it
// releases each once the consumer has read it, and abandon releases the
// rest; failDetached swaps them for copies, for a reader who may come
// late or never. A piece next returns stays the stream's, lent to the
// consumer until it calls consume: a buffer abandon or failDetached finds
// on loan is released by that consume, so it is never given back while
// being read.
type inStream struct {
	// Credit frames go to c, on connection cc (the stream's, set before
	// its first frame arrives), for stream id with flags (FlagReceive for
	// a request body, FlagResponse for a response).
	c     *Client
	cc    *clientConn
	flags wire.Flags
	id    ID

	mu       sync.Mutex
	chunks   [][]byte // pooled buffers, oldest first
	off      int      // bytes of chunks[0] already read
	buffered int
	nextSeq  uint32
	ended    bool
	err      error // terminal error; reported once the buffer is drained
	consumed int   // bytes consumed since the last grant
	window   int   // the most it buffers: its connection's window (setConn)
	wake     chan struct{}
	first    [1][]byte // chunks' first backing array: a whole body costs no slice
	reading  bool      // the consumer holds a piece of chunks[0], from next to consume
	lent     []byte    // the pooled buffer taken out of chunks while reading; consume releases it
	detached bool      // chunks are copies on the heap (failDetached), not the pool's
}

func newInStream(c *Client, flags wire.Flags, id ID) *inStream {
	s := &inStream{c: c, flags: flags, id: id, nextSeq: 1, wake: make(chan struct{}, 1), window: wire.StreamWindow}
	s.chunks = s.first[:0]
	return s
}

func (s *inStream) signal() { poke(s.wake) }

// setConn makes cc the stream's connection, before its first frame
// arrives, and its window cc's. When that is more than the protocol's
// implicit window, the difference is granted with the first grant, once
// the reader has consumed a piece (so never before the stream has
// started); open says so. A pushed request's body opens its window when
// it is taken instead (nextPushed).
func (s *inStream) setConn(cc *clientConn, open bool) {
	s.cc = cc
	if cc.window > wire.StreamWindow {
		s.window = cc.window
		if open {
			s.consumed = s.window - wire.StreamWindow
		}
	}
}

// push adds a chunk or end frame of the stream. It takes ownership of the
// payload. A frame out of sequence, or more bytes than the window allows,
// is a protocol error.
func (s *inStream) push(f frame.Frame) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := &f.Header
	if s.ended || s.err != nil {
		f.Release()
		if s.ended {
			return wire.Errorf(wire.CodeProtocol, "%s frame after the end of stream %x", h.Type, h.RequestID)
		}
		return nil // the stream was abandoned; drop what was in flight
	}
	if h.Sequence != s.nextSeq {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "stream %x: got sequence %d, want %d", h.RequestID, h.Sequence, s.nextSeq)
	}
	s.nextSeq++
	if h.Type == wire.TypeEnd {
		s.ended = true
		s.signal()
		return nil
	}
	if s.buffered+len(f.Payload) > s.window {
		f.Release()
		return wire.Errorf(wire.CodeProtocol, "stream %x: %d bytes over the window", h.RequestID, s.buffered+len(f.Payload)-s.window)
	}
	if len(f.Payload) == 0 {
		f.Release()
		return nil
	}
	s.chunks = append(s.chunks, f.Payload)
	s.buffered += len(f.Payload)
	s.signal()
	return nil
}

// setWhole makes a new stream hold body, complete: a v2 whole delivery.
// body is copied.
func (s *inStream) setWhole(body []byte) {
	if len(body) > 0 {
		b := frame.GetBuffer(len(body))
		copy(b, body)
		s.chunks = append(s.chunks, b)
		s.buffered = len(b)
	}
	s.ended = true
	s.nextSeq = 3
}

// pushWhole takes a v2 whole response (its start frame, with the body as
// payload after skip bytes: v3's header block): the stream is complete at
// once. It takes ownership of f; the body is read where it is, from
// offset skip of the frame's buffer.
func (s *inStream) pushWhole(f frame.Frame, skip int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.err != nil || s.nextSeq != 1 {
		f.Release()
		return nil // abandoned, or a protocol error caught by the caller
	}
	if len(f.Payload) > skip {
		s.chunks = append(s.chunks, f.Payload)
		s.off = skip
		s.buffered = len(f.Payload) - skip
	} else {
		f.Release()
	}
	s.ended = true
	s.nextSeq = 3
	s.signal()
	return nil
}

// fail ends the stream with err, after whatever is buffered. The first
// error wins; a stream that already ended whole keeps its data and EOF.
func (s *inStream) fail(err error) {
	s.mu.Lock()
	if s.err == nil && !s.ended {
		s.err = err
	}
	s.mu.Unlock()
	s.signal()
}

// failDetached fails the stream with err as fail does, and swaps what is
// buffered for copies on the heap, releasing the pooled buffers: the data
// stays readable, by a reader who may come late or never (a Request whose
// handler stops at its end, unanswered). A buffer on loan to the consumer
// is copied too, and released by its consume. Nothing pooled is added
// after: a push to a stream that has failed or ended is released at once.
func (s *inStream) failDetached(err error) {
	s.mu.Lock()
	if s.err == nil && !s.ended {
		s.err = err
	}
	if !s.detached {
		s.detached = true
		for i, b := range s.chunks {
			s.chunks[i] = bytes.Clone(b)
			if i == 0 && s.reading {
				s.lent = b
			} else {
				frame.PutBuffer(b)
			}
		}
	}
	s.mu.Unlock()
	s.signal()
}

// abandon drops everything buffered, releasing it, and makes later
// pushes release their frames at once; reads return err. A buffer the
// consumer is reading from (between next and consume) is released by its
// consume instead. Whoever stops consuming a stream abandons it, so that
// nothing it holds is left to the garbage collector.
func (s *inStream) abandon(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.ended = false
	for i, b := range s.chunks {
		switch {
		case s.detached: // a copy; the original is released or lent already
		case i == 0 && s.reading:
			s.lent = b
		default:
			frame.PutBuffer(b)
		}
		s.chunks[i] = nil
	}
	s.chunks, s.off, s.buffered = nil, 0, 0
	s.mu.Unlock()
	s.signal()
}

// next blocks until it can return the next piece of the body, which the
// caller must hand back with consume. It returns io.EOF at the end of a
// complete body and the stream's error otherwise. ctx's end interrupts
// the wait with its cause; a Body's reads wait with context.Background(),
// for as long as the request lasts.
func (s *inStream) next(ctx context.Context) ([]byte, error) {
	for {
		s.mu.Lock()
		if len(s.chunks) > 0 {
			c := s.chunks[0][s.off:]
			s.reading = true
			s.mu.Unlock()
			return c, nil
		}
		ended, err := s.ended, s.err
		s.mu.Unlock()
		if ended {
			return nil, io.EOF
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
}

// consume marks n bytes of the piece next returned as read, and ends
// its loan: the caller must not touch the piece again.
func (s *inStream) consume(n int) {
	s.mu.Lock()
	s.reading = false
	if s.lent != nil {
		frame.PutBuffer(s.lent) // taken out of chunks while the piece was read
		s.lent = nil
	}
	if len(s.chunks) == 0 {
		s.mu.Unlock()
		return // abandoned while the piece was read
	}
	s.off += n
	s.buffered -= n
	if s.off == len(s.chunks[0]) {
		if !s.detached {
			frame.PutBuffer(s.chunks[0])
		}
		s.chunks[0] = nil
		s.chunks = s.chunks[1:]
		s.off = 0
	}
	s.consumed += n
	grant := 0
	if !s.ended && s.err == nil && s.consumed >= s.window/2 {
		grant, s.consumed = s.consumed, 0
	}
	s.mu.Unlock()
	if grant > 0 {
		_ = s.c.sendOn(s.cc, s.c.creditFrame(s.flags, s.id, grant))
	}
}

// Read implements io.Reader over the stream.
func (s *inStream) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := s.next(context.Background())
	if err != nil {
		return 0, err
	}
	n := copy(p, c)
	s.consume(n)
	return n, nil
}

// WriteTo implements io.WriterTo, so io.Copy hands chunks over without an
// intermediate buffer.
func (s *inStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		c, err := s.next(context.Background())
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		n, werr := w.Write(c)
		total += int64(n)
		s.consume(len(c))
		if werr != nil {
			return total, werr
		}
	}
}
