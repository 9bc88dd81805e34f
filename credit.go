package socketbus

import (
	"sync"

	"github.com/socketbus/socketbus/internal/frame"
)

// poke wakes whoever waits on a capacity-1 signal channel, without
// blocking: several pokes before the wait count as one.
func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// sendWindow is the credit a client holds for sending one body — a
// request's (Send) or a response's (Respond): the server grants bytes, the
// sending goroutine takes them a frame at a time, and ending the window
// wakes a sender that waits.
type sendWindow struct {
	cc   *clientConn // the connection the body goes on, set before the first frame
	mu   sync.Mutex
	n    int
	err  error         // why nothing more may be sent; the first one wins
	wake chan struct{} // capacity 1
}

func (w *sendWindow) init() { w.wake = make(chan struct{}, 1) }

// add records n bytes of credit.
func (w *sendWindow) add(n int) {
	w.mu.Lock()
	w.n += n
	w.mu.Unlock()
	poke(w.wake)
}

// end stops the window with err; the first error wins.
func (w *sendWindow) end(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
	poke(w.wake)
}

// ended returns the error the window ended with, or nil while it is open.
func (w *sendWindow) ended() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// take waits for credit and takes up to max bytes of it. It fails with the
// window's error once the window has ended, and with ErrClosed when done
// closes first.
func (w *sendWindow) take(max int, done <-chan struct{}) (int, error) {
	for {
		w.mu.Lock()
		if err := w.err; err != nil {
			w.mu.Unlock()
			return 0, err
		}
		n := min(w.n, max)
		w.n -= n
		w.mu.Unlock()
		if n > 0 {
			return n, nil
		}
		select {
		case <-w.wake:
		case <-done:
			return 0, ErrClosed
		}
	}
}

// sendWhileOpen queues f on c only while the window is open, under its
// lock (see sendPiece), and otherwise drops it and returns the window's
// error.
func (w *sendWindow) sendWhileOpen(c *Client, f frame.Frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		f.Release()
		return w.err
	}
	return c.sendOn(w.cc, f)
}
