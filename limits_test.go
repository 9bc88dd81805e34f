package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// TestMaxMessageBytes: a body exactly at the limit passes; one byte over
// fails with ErrTooLarge at the sender and an error at the receiver, for
// requests and for responses.
func TestMaxMessageBytes(t *testing.T) {
	const limit = 1 << 20
	_, addr := startServer(t, server.Config{MaxMessageBytes: limit})
	ch := socketbus.ChannelFromName("limits")
	a := dial(t, addr, ch)
	b := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, size := range []int64{limit, limit + 1} {
		received := make(chan error, 1)
		go func() {
			req, err := b.Receive(ctx)
			if err != nil {
				received <- err
				return
			}
			n, err := io.Copy(io.Discard, req.Body)
			if err != nil {
				req.Fail(err)
				received <- err
				return
			}
			if n != size {
				received <- errors.New("short body read as complete")
				return
			}
			received <- req.Respond(bytes.NewReader([]byte("ok")))
		}()
		err := a.Send(ctx, testpeer.NewPattern(1, size), io.Discard)
		rerr := <-received
		if size == limit {
			if err != nil || rerr != nil {
				t.Fatalf("body at the limit: Send = %v, receiver = %v; want both nil", err, rerr)
			}
			continue
		}
		if !errors.Is(err, socketbus.ErrTooLarge) {
			t.Fatalf("body one byte over: Send = %v, want ErrTooLarge", err)
		}
		if rerr == nil {
			t.Fatalf("body one byte over: receiver read it without error")
		}
	}

	// Responses: the receiver's Respond fails, and so does the Send.
	for _, size := range []int64{limit, limit + 1} {
		responded := make(chan error, 1)
		go func() {
			req, err := b.Receive(ctx)
			if err != nil {
				responded <- err
				return
			}
			io.Copy(io.Discard, req.Body)
			responded <- req.Respond(testpeer.NewPattern(3, size))
		}()
		w := newHashWriter()
		err := a.Send(ctx, bytes.NewReader([]byte("q")), w)
		rerr := <-responded
		if size == limit {
			if err != nil || rerr != nil || w.n != size {
				t.Fatalf("response at the limit: Send = %v (%d bytes), Respond = %v", err, w.n, rerr)
			}
			continue
		}
		if !errors.Is(err, socketbus.ErrTooLarge) {
			t.Fatalf("response one byte over: Send = %v, want ErrTooLarge", err)
		}
		if !errors.Is(rerr, socketbus.ErrTooLarge) {
			t.Fatalf("response one byte over: Respond = %v, want ErrTooLarge", rerr)
		}
	}
}
