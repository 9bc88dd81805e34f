package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestRawRequestBodyAborted checks on the wire what a receiver sees when the
// sender's body reader fails inside the first chunk: the chunk, then an
// aborted error frame, and never an end frame.
func TestRawRequestBodyAborted(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	channel := socketbus.ChannelFromName("raw-abort")
	a := dial(t, addr, channel)
	r := testpeer.Join(t, addr, channel)
	r.Poll(uuid.New())
	if early := r.Sync(); len(early) != 0 { // the poll is registered before the request arrives
		t.Fatalf("frames before any request: got %v, want none", early)
	}

	errBoom := errors.New("boom")
	body := io.MultiReader(bytes.NewReader(make([]byte, 1000)), &failingReader{err: errBoom})
	err := a.Send(context.Background(), body, nil)
	if !errors.Is(err, errBoom) {
		t.Fatalf("Send: got %v, want an error wrapping the reader's", err)
	}

	h, p := r.Read()
	if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive {
		t.Fatalf("got %v, want the delivered request's start", h)
	}
	id := h.RequestID
	var got int
	for {
		h, p = r.Read()
		if h.RequestID != id {
			t.Fatalf("got %v, want a frame of request %x", h, id[:4])
		}
		if h.Type == wire.TypeEnd {
			t.Fatalf("got an end frame after %d bytes: a truncated body must never end cleanly", got)
		}
		if h.Type == wire.TypeError {
			break
		}
		got += len(p)
	}
	e, err := wire.ParseError(p)
	if err != nil {
		t.Fatalf("error payload: %v", err)
	}
	if e.Code != wire.CodeAborted || h.Flags != wire.FlagReceive {
		t.Fatalf("error frame: got %v %v, want receive aborted", h.Flags, e)
	}
	if got != 1000 {
		t.Fatalf("body bytes before the error: got %d, want 1000", got)
	}
}

// failingReader returns err on every Read.
type failingReader struct{ err error }

func (r *failingReader) Read([]byte) (int, error) { return 0, r.err }
