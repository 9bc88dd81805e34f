package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testhook"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// TestRequestWrittenAfterTheNoticeIsRefused: a request a client writes
// after reading the server's drain notice reaches no receiver, however
// long the server takes to go on with its Shutdown: the server refuses
// new requests before it sends the notice. The Call fails with
// ErrNotDelivered and the handler never runs. (The router was closed only
// after the notices went out, and a request read in between was
// delivered, though the client counted on it not being.)
func TestRequestWrittenAfterTheNoticeIsRefused(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	ch := uuid.New()
	rc := testpeer.NewRunCounter()
	testpeer.CountingServe(t, dial(t, addr, ch, socketbus.WithReconnect(socketbus.ReconnectPolicy{MinDelay: 10 * time.Millisecond, MaxDelay: 50 * time.Millisecond})), rc, nil)
	called := make(chan error, 1)
	var sender *socketbus.Client
	sender = dial(t, addr, ch, socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
		if ev.State != socketbus.ConnectionDraining {
			return
		}
		go func() { // the hook must not wait on the client
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := sender.Call(ctx, []byte("after the notice"))
			called <- err
		}()
	}))
	if _, err := sender.Call(context.Background(), []byte("before")); err != nil {
		t.Fatalf("Call before the Shutdown: %v", err)
	}
	var err error
	testhook.Set(srv, &testhook.Server{Noticed: func() {
		// Shutdown waits here, after its notices, until the request
		// written after the notice has ended.
		err = <-called
	}})
	defer testhook.Set(srv, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if serr := srv.Shutdown(ctx); serr != nil {
		t.Fatalf("Shutdown: %v", serr)
	}
	if n := rc.Count("after the notice"); n != 0 || !errors.Is(err, socketbus.ErrNotDelivered) || errors.Is(err, socketbus.ErrDisconnected) {
		t.Fatalf("a request written after the drain notice: Call %v, handler ran %d times; want ErrNotDelivered and no run", err, n)
	}
}
