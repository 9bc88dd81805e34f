// Package wsconn adapts a WebSocket (github.com/coder/websocket) to a
// net.Conn that carries socketbus frames as a byte stream in binary
// messages (docs/PROTOCOL.md section 22), for the server's WebSocket
// listener and for Go clients and tests that dial one.
package wsconn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// closeWait bounds the WebSocket close handshake when a conn closes: a
// peer that does not answer the close frame within it is cut off.
const closeWait = time.Second

// readBuffer is the size of the buffer a wsConn reads messages into.
const readBuffer = 32 << 10

// errTextMessage ends a connection whose peer sent a text message: frames
// travel in binary messages only.
var errTextMessage = errors.New("socketbus: a text WebSocket message (frames travel in binary messages)")

// conn adapts a WebSocket to a net.Conn for the server's connection code:
// the payloads of the binary messages it reads are one byte stream, and each
// Write is one binary message (docs/PROTOCOL.md section 22).
//
// The WebSocket library can interrupt a read only by closing the
// connection, but the server sets read deadlines that must not close it
// (a graceful close stops reading and then writes its last frames). So a
// pump goroutine does the reading, into one buffer it hands to Read and
// waits to get back; Read waits on it, on the deadline and on Close. Writes
// go straight to the WebSocket, bounded by the write deadline (whose expiry
// closes the connection, which the server does anyway on a write timeout).
type conn struct {
	ws  *websocket.Conn
	raw net.Conn // the hijacked connection under ws (TLS, if any, included)

	chunks   chan []byte   // pump → Read: the next bytes read
	consumed chan struct{} // Read → pump: the last chunk is used up
	ended    chan struct{} // closed by the pump when reading failed
	readErr  error         // why; written by the pump before it closes ended
	closed   chan struct{} // closed by Close
	once     sync.Once

	rest []byte   // what Read has left of its chunk; the reader's
	rd   deadline // the read deadline

	wmu sync.Mutex
	wdl time.Time // the write deadline
}

// New wraps ws, upgraded on raw (the connection under it, whose deadline
// bounds the close handshake), and starts the goroutine that reads it,
// which ends once the conn is closed or the WebSocket fails.
func New(ws *websocket.Conn, raw net.Conn) net.Conn {
	w := &conn{
		ws:       ws,
		raw:      raw,
		chunks:   make(chan []byte),
		consumed: make(chan struct{}),
		ended:    make(chan struct{}),
		closed:   make(chan struct{}),
		rd:       makeDeadline(),
	}
	go w.pump()
	return w
}

// pump reads messages until the WebSocket fails or the conn closes.
func (w *conn) pump() {
	defer close(w.ended)
	buf := make([]byte, readBuffer)
	for {
		typ, r, err := w.ws.Reader(context.Background())
		if err != nil {
			w.readErr = readEnd(err)
			return
		}
		if typ != websocket.MessageBinary {
			w.readErr = errTextMessage
			return
		}
		for {
			n, err := r.Read(buf)
			if n > 0 {
				select {
				case w.chunks <- buf[:n]:
				case <-w.closed:
					w.readErr = net.ErrClosed
					return
				}
				select {
				case <-w.consumed:
				case <-w.closed:
					w.readErr = net.ErrClosed
					return
				}
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				w.readErr = readEnd(err)
				return
			}
		}
	}
}

// readEnd turns the WebSocket's read error into the conn's: a close by
// the peer is the end of the stream.
func readEnd(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway:
		return io.EOF
	}
	return fmt.Errorf("socketbus: websocket read: %w", err)
}

// Read implements net.Conn.
func (w *conn) Read(p []byte) (int, error) {
	if len(w.rest) == 0 {
		select {
		case <-w.rd.wait():
			return 0, os.ErrDeadlineExceeded
		default:
		}
		select {
		case b := <-w.chunks:
			w.rest = b
		case <-w.ended:
			return 0, w.readErr
		case <-w.closed:
			return 0, net.ErrClosed
		case <-w.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
	n := copy(p, w.rest)
	w.rest = w.rest[n:]
	if len(w.rest) == 0 {
		select {
		case w.consumed <- struct{}{}:
		case <-w.closed:
		}
	}
	return n, nil
}

// Write implements net.Conn: p goes as one binary message.
func (w *conn) Write(p []byte) (int, error) {
	w.wmu.Lock()
	dl := w.wdl
	w.wmu.Unlock()
	ctx := context.Background()
	if !dl.IsZero() {
		if !time.Now().Before(dl) {
			return 0, os.ErrDeadlineExceeded
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	if err := w.ws.Write(ctx, websocket.MessageBinary, p); err != nil {
		if ctx.Err() != nil {
			return 0, fmt.Errorf("socketbus: websocket write: %w (%w)", os.ErrDeadlineExceeded, err)
		}
		return 0, fmt.Errorf("socketbus: websocket write: %w", err)
	}
	return len(p), nil
}

// Close implements net.Conn: it sends a close frame and waits up to
// closeWait for the peer's, so that what was written before is read
// rather than lost to a reset.
func (w *conn) Close() error {
	err := net.ErrClosed
	w.once.Do(func() {
		close(w.closed)
		_ = w.raw.SetDeadline(time.Now().Add(closeWait))
		_ = w.ws.Close(websocket.StatusNormalClosure, "")
		err = nil
	})
	return err
}

// LocalAddr implements net.Conn.
func (w *conn) LocalAddr() net.Addr { return w.raw.LocalAddr() }

// RemoteAddr implements net.Conn.
func (w *conn) RemoteAddr() net.Addr { return w.raw.RemoteAddr() }

// SetDeadline implements net.Conn.
func (w *conn) SetDeadline(t time.Time) error {
	w.SetReadDeadline(t)
	return w.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn. Unlike the WebSocket library's own
// adapter, a deadline that passes fails the read and leaves the
// connection open.
func (w *conn) SetReadDeadline(t time.Time) error {
	w.rd.set(t)
	return nil
}

// SetWriteDeadline implements net.Conn.
func (w *conn) SetWriteDeadline(t time.Time) error {
	w.wmu.Lock()
	w.wdl = t
	w.wmu.Unlock()
	return nil
}

// deadline is a settable deadline whose channel is closed once it has
// passed, as net.Pipe's.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	cancel chan struct{} // closed when the deadline passes
}

func makeDeadline() deadline { return deadline{cancel: make(chan struct{})} }

// set sets the deadline; the zero time means none.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.cancel // the timer fired: wait for it to close cancel
	}
	d.timer = nil
	closed := isClosed(d.cancel)
	if t.IsZero() {
		if closed {
			d.cancel = make(chan struct{})
		}
		return
	}
	if dur := time.Until(t); dur > 0 {
		if closed {
			d.cancel = make(chan struct{})
		}
		c := d.cancel
		d.timer = time.AfterFunc(dur, func() { close(c) })
		return
	}
	if !closed {
		close(d.cancel)
	}
}

// wait returns a channel closed when the deadline has passed.
func (d *deadline) wait() chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cancel
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
