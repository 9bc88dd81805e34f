package frameconn

import "io"

// The read buffer: the reader goroutine's buffer between the socket and
// the frames it parses. It adapts its size to the traffic, as
// nats-server's client read buffer does: it starts at minReadBuffer, so an
// idle connection holds little; doubles, up to maxReadBuffer, after a read
// that fills it, so a burst of small frames is read in few system calls;
// and halves after shrinkAfter (8) reads in a row that use less than a quarter
// of it. A payload at least as large as the buffer bypasses it and is read
// straight into the payload's own buffer.

const (
	minReadBuffer = 512
	maxReadBuffer = 16 << 10
	shrinkAfter   = 8
)

// readBuffer is a buffered reader with bufio.Reader's Buffered, Peek and
// Read, whose buffer grows and shrinks with the traffic. It is not safe
// for concurrent use: the reader goroutine owns it (and, after the reader
// has stopped, the linger drain).
type readBuffer struct {
	r     io.Reader
	buf   []byte
	rpos  int  // the next byte to hand out
	wpos  int  // the end of the bytes read
	small int  // reads in a row that used under a quarter of buf
	full  bool // the last read filled buf: the next fill doubles it
	err   error
}

func newReadBuffer(r io.Reader) *readBuffer {
	return &readBuffer{r: r, buf: make([]byte, minReadBuffer)}
}

// Buffered returns how many bytes can be read without a system call.
func (b *readBuffer) Buffered() int { return b.wpos - b.rpos }

// fill reads once from the socket into the free end of the buffer. First
// it resizes the buffer when the traffic says so (twice the room after a
// read that filled it; half after shrinkAfter reads that used under a
// quarter) and moves the unread bytes to its front.
func (b *readBuffer) fill() error {
	if b.err != nil {
		return b.readErr()
	}
	n := b.Buffered()
	size := len(b.buf)
	switch {
	case (b.full || n == size) && size < maxReadBuffer:
		size *= 2
	case b.small >= shrinkAfter && size > minReadBuffer && n <= size/4:
		size /= 2
		b.small = 0
	}
	b.full = false
	if size != len(b.buf) {
		nb := make([]byte, size)
		copy(nb, b.buf[b.rpos:b.wpos])
		b.buf = nb
	} else if b.rpos > 0 {
		copy(b.buf, b.buf[b.rpos:b.wpos])
	}
	b.rpos, b.wpos = 0, n
	if n == len(b.buf) {
		return nil // full of unread bytes at the largest size: nothing to read into
	}
	for range 100 {
		m, err := b.r.Read(b.buf[b.wpos:])
		b.wpos += m
		switch {
		case b.wpos == len(b.buf):
			b.full, b.small = true, 0
		case m < len(b.buf)/4:
			b.small++
		default:
			b.small = 0
		}
		if err != nil {
			b.err = err
			if m > 0 {
				return nil
			}
			return b.readErr()
		}
		if m > 0 {
			return nil
		}
	}
	return io.ErrNoProgress
}

// readErr returns the error that ended reading, once the bytes before it
// are handed out.
func (b *readBuffer) readErr() error {
	err := b.err
	if b.Buffered() == 0 {
		b.err = nil // as bufio: an error is returned once
		if err == nil {
			err = io.ErrNoProgress
		}
	}
	return err
}

// Peek returns the next n bytes without consuming them, reading until
// they are here; n must be at most maxReadBuffer.
func (b *readBuffer) Peek(n int) ([]byte, error) {
	for b.Buffered() < n {
		if len(b.buf) < n {
			b.full = true // make room: the next fill doubles the buffer
		}
		if err := b.fill(); err != nil {
			return b.buf[b.rpos:b.wpos], err
		}
	}
	return b.buf[b.rpos : b.rpos+n], nil
}

// Read reads into p: what is buffered first; otherwise a p at least as
// large as the buffer straight from the socket, and a smaller one through
// the buffer.
func (b *readBuffer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.Buffered() == 0 {
		if b.err != nil {
			return 0, b.readErr()
		}
		if len(p) >= len(b.buf) {
			n, err := b.r.Read(p)
			if n > 0 {
				b.small = 0 // traffic: no time to shrink
			}
			return n, err
		}
		if err := b.fill(); err != nil && b.Buffered() == 0 {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.rpos:b.wpos])
	b.rpos += n
	return n, nil
}
