package socketbus_test

import (
	"context"
	"errors"
	"net"
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
func bouncer(t *testing.T, nc net.Conn, id, ch socketbus.ID, returns chan<- struct{}) {
	hdr := func(typ wire.FrameType, req socketbus.ID) wire.Header {
		return wire.Header{Version: 2, Type: typ, Flags: wire.FlagReceive, RequestID: req, ClientID: id, ChannelID: ch, Final: true}
	}
	write := func(h wire.Header, payload []byte) bool {
		h.Length = uint32(len(payload))
		_, err := nc.Write(append(wire.AppendHeader(nil, &h), payload...))
		return err == nil
	}
	if !write(hdr(wire.TypeStart, socketbus.ID{}), wire.AppendCredit(nil, 1)) {
		return
	}
	for {
		h, _, err := testpeer.ReadFrame(nc)
		if err != nil {
			return
		}
		if h.Type != wire.TypeStart || h.Flags != wire.FlagReceive || h.RequestID == (socketbus.ID{}) {
			continue // pings, errors
		}
		if !write(hdr(wire.TypeError, h.RequestID), wire.AppendError(nil, wire.CodeReturned, "")) ||
			!write(hdr(wire.TypeStart, socketbus.ID{}), wire.AppendCredit(nil, 1)) {
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
		nc, id := rawJoin(t, addr, ch, 2)
		nc.SetDeadline(time.Time{})
		go bouncer(t, nc, id, ch, returns)
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
