package frameconn_test

import (
	"errors"
	"io"
	"testing"

	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/internal/frameconn"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestLastFrameReachesAPeerStillWriting: the last frame of CloseAfterFlush
// reaches a peer that is still writing when the connection closes, as a
// server's goodbye must reach a client still sending requests. (Closed
// with the peer's bytes unread, the socket was reset: the peer's writes
// failed, and it could lose the frame.)
func TestLastFrameReachesAPeerStillWriting(t *testing.T) {
	for round := range 20 {
		a, b := pair(t)
		conn := frameconn.New(a, frameconn.Config{})
		conn.Start(func(f frame.Frame) error {
			f.Release()
			return nil
		})
		// The peer writes frames until its writes fail.
		wrote := make(chan error, 1)
		go func() {
			f := chunk(1, make([]byte, 4<<10))
			f.Header.Length = uint32(len(f.Payload))
			buf := append(wire.AppendHeader(nil, &f.Header), f.Payload...)
			frame.PutBuffer(f.Payload)
			for {
				if _, err := b.Write(buf); err != nil {
					wrote <- err
					return
				}
			}
		}()
		last := frame.ErrorFrame(wire.Header{}, wire.CodeServerClosed, "goodbye")
		conn.CloseAfterFlush(last, errors.New("closing"))
		h, payload := readFrame(t, b)
		if h.Type != wire.TypeError {
			t.Fatalf("round %d: read a %s frame, want the last one, an error frame", round, h.Type)
		}
		if e, err := wire.ParseError(payload); err != nil || e.Code != wire.CodeServerClosed {
			t.Fatalf("round %d: the last frame says %v (%v), want server_closed", round, e, err)
		}
		if _, err := b.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("round %d: after the last frame: %v, want EOF (a half-close, not a reset)", round, err)
		}
		b.Close()
		<-wrote
		conn.Wait()
	}
}
