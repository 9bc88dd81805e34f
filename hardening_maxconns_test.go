package socketbus_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
)

// TestHardeningMaxConnections: with MaxConnections clients joined, 100
// more connections are each refused with a limit error frame and a close,
// and a Dial fails with ErrLimit, while the joined clients go on with their
// round trips untouched. Once one of them leaves, a new one gets in.
func TestHardeningMaxConnections(t *testing.T) {
	const (
		limit  = 64
		extras = 100
		rounds = 5
	)
	srv, addr := startServer(t, socketbus.ServerConfig{MaxConnections: limit})
	channel := socketbus.ChannelFromName("hard-max-connections")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	clients := make([]*socketbus.Client, limit)
	for i := range clients {
		clients[i] = dial(t, addr, channel)
	}
	if n := srv.Stats().Connections; n != limit {
		t.Fatalf("open connections: got %d, want %d", n, limit)
	}
	senders, receivers := clients[:limit/2], clients[limit/2:]
	stopReceivers := hardResponders(receivers, 1, nil)
	defer func() { stopReceivers() }()

	// The extras knock while the senders work.
	var counts hardCounts
	var wg sync.WaitGroup
	for range extras {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := hardDial(addr)
			if err != nil {
				counts.add("dial failed", err)
				return
			}
			defer c.Close()
			_, code, err := c.refusal()
			switch {
			case err != nil:
				counts.add("not refused cleanly", err)
			case code != wire.CodeLimit:
				counts.add("wrong code", errors.New("got code "+code.String()+", want limit"))
			default:
				counts.add("refused", nil)
			}
		}()
	}
	lat, err := hardLatencies(ctx, senders, rounds)
	wg.Wait()
	if err != nil {
		t.Fatalf("round trips of the joined clients while extras were refused: %v", err)
	}
	if got := counts.get("refused"); got != extras {
		t.Fatalf("extra connections refused with a limit error frame and a close: got %d, want %d (%v)", got, extras, &counts)
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if c, err := socketbus.Dial(dctx, addr, channel); !errors.Is(err, socketbus.ErrLimit) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Dial at the limit: got %v, want ErrLimit", err)
	}

	// One leaves; its place is free once the server has dropped it.
	stopReceivers()
	clients[0].Close()
	if open, _ := hardSettle(srv, limit-1, math.MaxInt, 10*time.Second); open != limit-1 {
		t.Fatalf("open connections after one client left: got %d, want %d", open, limit-1)
	}
	late := dial(t, addr, channel)
	stopReceivers = hardResponders(receivers, 1, nil)
	if _, err := hardLatencies(ctx, []*socketbus.Client{late}, 1); err != nil {
		t.Fatalf("round trip of the client that took the free place: %v", err)
	}
	st := srv.Stats()
	t.Logf("MaxConnections %d: %d extra connections refused with a limit error frame and closed, Dial at the limit got ErrLimit; the %d joined clients completed %d round trips meanwhile (p99 %v), 0 failed; server counts %d open, %v",
		limit, counts.get("refused"), limit, len(lat), hardPercentile(lat, 99), st.Connections, st.Requests)
}
