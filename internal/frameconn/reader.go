package frameconn

// The reader goroutine: it owns the read buffer (readbuf.go) and the read batch, reads
// one frame at a time and hands it to the handler.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/wire"
)

func (c *Conn) readLoop(h Handler) {
	defer c.wg.Done()
	defer close(c.readDone)
	var hdr [wire.HeaderSize]byte
	defer c.batch.Flush()
	for {
		if c.br.Buffered() == 0 {
			c.batch.Flush() // the burst is handled: write what it produced
		}
		for c.unboundedBytes.Load() > int64(c.cfg.MaxQueuedBytes) {
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
			c.CloseAfterFlush(frame.ErrorFrame(wire.Header{Version: c.cfg.Version}, werr.Code, werr.Message), err)
			return
		}
		c.Close(err)
		return
	}
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
	f := frame.Frame{Header: header}
	c.FramesIn.Add(1)
	c.BytesIn.Add(int64(wire.HeaderSize) + int64(header.Length))
	if header.Length > 0 {
		// The buffer is charged while this goroutine holds it: a peer that
		// announces a large frame and trickles it holds real memory.
		// Whatever the handler keeps of it is charged again where it is
		// kept.
		cost := int64(frame.BufferSize(int(header.Length)))
		c.charge(cost)
		defer c.uncharge(cost)
		f.Payload = frame.GetBuffer(int(header.Length))
		f.Pooled = true
		if _, err := io.ReadFull(c.br, f.Payload); err != nil {
			frame.PutBuffer(f.Payload)
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
