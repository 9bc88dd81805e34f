package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

func TestCallRoundTrip(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	startServe(t, responder, echoUpper)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, body := range []string{"hello, bus", "", strings.Repeat("abc", 100_000)} {
		got, err := requester.Call(ctx, []byte(body))
		if err != nil {
			t.Fatalf("Call(%d bytes): %v", len(body), err)
		}
		if want := strings.ToUpper(body); string(got) != want {
			t.Fatalf("Call(%d bytes): got %d bytes, want %d bytes of the upper-cased body", len(body), len(got), len(want))
		}
	}
}

// waitOutHandler starts a handler that signals on started and returns the
// cause of its request's end on ended.
func waitOutHandler(t *testing.T, responder *socketbus.Client) (started chan struct{}, ended chan error) {
	started, ended = make(chan struct{}, 1), make(chan error, 1)
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		started <- struct{}{}
		<-req.Context().Done()
		ended <- context.Cause(req.Context())
	}))
	return started, ended
}

func TestCallTimeout(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	_, ended := waitOutHandler(t, responder)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got, err := requester.Call(ctx, []byte("slow"))
	if !errors.Is(err, socketbus.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call: got %q, %v; want an error matching ErrTimeout and context.DeadlineExceeded", got, err)
	}
	if cause := <-ended; !errors.Is(cause, socketbus.ErrTimeout) {
		t.Errorf("the receiver's request ended with %v, want ErrTimeout", cause)
	}
}

func TestCallCancel(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	started, ended := waitOutHandler(t, responder)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	if _, err := requester.Call(ctx, []byte("never mind")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Call: got %v, want context.Canceled", err)
	}
	if cause := <-ended; !errors.Is(cause, socketbus.ErrCancelled) {
		t.Errorf("the receiver's request ended with %v, want ErrCancelled", cause)
	}
}

func TestCallNoPeers(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	alone := dial(t, addr, socketbus.ChannelFromName(t.Name()))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := alone.Call(ctx, []byte("anyone?")); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Call: got %v, want ErrNoPeers", err)
	}
}

func TestCallResponseOverCallLimit(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{})
	const limit = 64 << 10
	socketbus.SetCallLimit(requester, limit) // the default, 64 MiB, is long to stream
	responded := make(chan error, 1)
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		responded <- req.Respond(bytes.NewReader(make([]byte, 4<<20)))
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := requester.Call(ctx, []byte("big"))
	if !errors.Is(err, socketbus.ErrTooLarge) || got != nil {
		t.Fatalf("Call: got %d bytes, %v; want nil and an error matching ErrTooLarge", len(got), err)
	}
	// The request is cancelled: the responder stops streaming.
	if err := <-responded; !errors.Is(err, socketbus.ErrCancelled) {
		t.Errorf("Respond of the over-long response returned %v, want ErrCancelled", err)
	}
}

func TestCallResponseOverServerLimit(t *testing.T) {
	_, _, responder, requester := serveClients(t, server.Config{MaxMessageBytes: 1024})
	startServe(t, responder, socketbus.HandlerFunc(func(req *socketbus.Request) {
		_ = req.Respond(bytes.NewReader(make([]byte, 4096)))
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := requester.Call(ctx, []byte("big")); !errors.Is(err, socketbus.ErrTooLarge) {
		t.Fatalf("Call: got %d bytes, %v; want an error matching ErrTooLarge", len(got), err)
	}
}
