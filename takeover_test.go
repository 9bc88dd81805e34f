package socketbus_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestClientIDCannotBeTakenOver: a member learns a victim's client ID from
// Request.From; when the victim's connection drops, it joins with that ID.
// The victim registered a key with its join, so the server refuses the
// taker (ErrConflict) and readmits the victim's reconnect, which presents
// the key (issue 17, finding 8).
func TestClientIDCannotBeTakenOver(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The victim's first connection is one the test can cut; its
	// reconnects wait for the gate.
	var (
		mu    sync.Mutex
		first net.Conn
	)
	gate := make(chan struct{})
	dialer := func(ctx context.Context, network, a string) (net.Conn, error) {
		mu.Lock()
		redial := first != nil
		mu.Unlock()
		if redial {
			select {
			case <-gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, a)
		if err == nil && !redial {
			mu.Lock()
			first = nc
			mu.Unlock()
		}
		return nc, err
	}
	restored := make(chan struct{}, 1)
	victim := dial(t, addr, ch, socketbus.WithDialer(dialer), socketbus.WithReconnect(socketbus.ReconnectPolicy{}),
		socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
			if ev.State == socketbus.ConnectionRestored {
				restored <- struct{}{}
			}
		}))
	holder := dial(t, addr, ch)

	// The holder learns the victim's ID from a request it holds; the
	// request's end at the holder (the victim's connection gone) says
	// the server has seen the victim leave.
	learned := make(chan socketbus.ID, 1)
	left := make(chan struct{})
	go func() {
		req, err := holder.Receive(ctx)
		if err != nil {
			return
		}
		learned <- req.From
		<-req.Context().Done()
		close(left)
	}()
	go victim.Call(ctx, []byte("hello"))
	var id socketbus.ID
	select {
	case id = <-learned:
	case <-ctx.Done():
		t.Fatal("the holder got no request")
	}
	mu.Lock()
	first.Close()
	mu.Unlock()
	select {
	case <-left:
	case <-ctx.Done():
		t.Fatal("the server did not see the victim's connection end")
	}

	taker, err := socketbus.Dial(ctx, addr, ch, socketbus.WithClientID(id), noReconnect)
	if err == nil {
		taker.Close()
		t.Fatalf("a join with the victim's ID %s while the victim reconnects was accepted, want ErrConflict", id)
	}
	if !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("the taker's Dial: got %v, want ErrConflict", err)
	}
	close(gate)
	select {
	case <-restored:
	case <-ctx.Done():
		t.Fatalf("the victim did not get its connection back: %v", victim.Err())
	}
}
