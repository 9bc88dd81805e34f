package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/router"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// bouncer is a raw v2 receiver that returns every request pushed to it
// and grants the credit back at once; it counts the returns.
func bouncer(c *testpeer.Conn, returns chan<- struct{}) {
	hdr := func(typ wire.FrameType, req socketbus.ID) wire.Header {
		h := c.Header(typ, wire.FlagReceive, req)
		h.Final = true
		return h
	}
	if c.Send(hdr(wire.TypeStart, socketbus.ID{}), wire.AppendCredit(nil, 1)) != nil {
		return
	}
	for {
		h, _, err := c.ReadFrame()
		if err != nil {
			return
		}
		if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || h.RequestID == (socketbus.ID{}) {
			continue // pings, errors
		}
		if c.Send(hdr(wire.TypeError, h.RequestID), wire.AppendError(nil, wire.CodeReturned, "")) != nil ||
			c.Send(hdr(wire.TypeStart, socketbus.ID{}), wire.AppendCredit(nil, 1)) != nil {
			return
		}
		returns <- struct{}{}
	}
}

// TestReturnsAreBounded: two receivers that return every request pushed
// to them could bounce one between them until its timeout, thousands of
// times a second. After MaxReturns returns the request fails at its
// sender with ErrLimit, long before its timeout (issue 17, finding 16).
func TestReturnsAreBounded(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(t.Name())
	returns := make(chan struct{}, 1<<16)
	for range 2 {
		c := rawJoin(t, addr, ch, 2)
		c.NC.SetDeadline(time.Time{})
		go bouncer(c, returns)
	}
	requester := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := requester.Call(ctx, []byte("bounce me"))
	if !errors.Is(err, socketbus.ErrLimit) {
		t.Fatalf("Call: got %v after %d returns, want ErrLimit once the returns run out", err, len(returns))
	}
	// Each return was counted before its credit was granted again, so
	// the count is final once the request has failed, give or take the
	// last bouncer's frame in flight.
	if n := len(returns); n > router.MaxReturns+1 {
		t.Fatalf("the request was returned %d times, want at most %d", n, router.MaxReturns+1)
	}
}
