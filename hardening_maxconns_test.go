package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
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
	srv, addr := startServer(t, server.Config{MaxConnections: limit})
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
				counts.Add("dial failed", err)
				return
			}
			defer c.Close()
			_, code, err := c.Refusal()
			switch {
			case err != nil:
				counts.Add("not refused cleanly", err)
			case code != wire.CodeLimit:
				counts.Add("wrong code", errors.New("got code "+code.String()+", want limit"))
			default:
				counts.Add("refused", nil)
			}
		}()
	}
	lat, err := hardLatencies(ctx, senders, rounds)
	wg.Wait()
	if err != nil {
		t.Fatalf("round trips of the joined clients while extras were refused: %v", err)
	}
	if got := counts.Get("refused"); got != extras {
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
	if open, _ := hardSettle(t, srv, limit-1, math.MaxInt, 10*time.Second); open != limit-1 {
		t.Fatalf("open connections after one client left: got %d, want %d", open, limit-1)
	}
	late := dial(t, addr, channel)
	stopReceivers = hardResponders(receivers, 1, nil)
	if _, err := hardLatencies(ctx, []*socketbus.Client{late}, 1); err != nil {
		t.Fatalf("round trip of the client that took the free place: %v", err)
	}
	st := srv.Stats()
	t.Logf("MaxConnections %d: %d extra connections refused with a limit error frame and closed, Dial at the limit got ErrLimit; the %d joined clients completed %d round trips meanwhile (p99 %v), 0 failed; server counts %d open, %v",
		limit, counts.Get("refused"), limit, len(lat), hardPercentile(lat, 99), st.Connections, st.Requests)
}

// TestHardeningRequestLimits: a client past MaxInFlightPerClient, and a
// channel past MaxQueuedRequestsPerChannel, get ErrLimit for the request
// over the limit, at once; the requests within it, and other clients,
// are untouched, and the limit frees up as requests end.
func TestHardeningRequestLimits(t *testing.T) {
	const limit = 4
	srv, addr := startServer(t, server.Config{MaxInFlightPerClient: limit, MaxQueuedRequestsPerChannel: limit})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("in flight per client", func(t *testing.T) {
		channel := socketbus.ChannelFromName("hard-limit-in-flight")
		sender := dial(t, addr, channel)
		holder := dial(t, addr, channel)
		errs := make(chan error, limit)
		for i := range limit {
			go func() {
				got, err := roundTrip(ctx, sender, []byte{byte('a' + i)})
				if err == nil && string(got) != string(upper([]byte{byte('a' + i)})) {
					err = errors.New("wrong response " + string(got))
				}
				errs <- err
			}()
		}
		var held []*socketbus.Request
		for range limit {
			req, err := holder.Receive(ctx)
			if err != nil {
				t.Fatalf("holder Receive: %v", err)
			}
			held = append(held, req)
		}
		if _, err := roundTrip(ctx, sender, []byte("one too many")); !errors.Is(err, socketbus.ErrLimit) {
			t.Fatalf("Send over MaxInFlightPerClient: got %v, want ErrLimit", err)
		}
		// Another client on the channel is not held back.
		other := dial(t, addr, channel)
		served := make(chan error, 1)
		go func() { served <- serveN(ctx, dial(t, addr, channel), 1, upper) }()
		if got, err := roundTrip(ctx, other, []byte("mine")); err != nil || string(got) != "MINE" {
			t.Fatalf("another client's round trip: got %q, %v; want %q, nil", got, err, "MINE")
		}
		if err := <-served; err != nil {
			t.Fatalf("receiver: %v", err)
		}
		for _, req := range held {
			body, err := io.ReadAll(req.Body)
			if err != nil {
				t.Fatalf("held request body: %v", err)
			}
			if err := req.Respond(bytes.NewReader(upper(body))); err != nil {
				t.Fatalf("Respond: %v", err)
			}
		}
		for range limit {
			if err := <-errs; err != nil {
				t.Fatalf("a Send within the limit: %v", err)
			}
		}
		served = make(chan error, 1)
		go func() { served <- serveN(ctx, holder, 1, upper) }()
		if got, err := roundTrip(ctx, sender, []byte("again")); err != nil || string(got) != "AGAIN" {
			t.Fatalf("Send once the requests ended: got %q, %v; want %q, nil", got, err, "AGAIN")
		}
		if err := <-served; err != nil {
			t.Fatalf("holder: %v", err)
		}
	})

	t.Run("queued per channel", func(t *testing.T) {
		channel := socketbus.ChannelFromName("hard-limit-queue")
		peer := dial(t, addr, channel) // joined, not receiving yet
		for range limit {
			c, err := hardJoin(addr, channel, "")
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			defer c.Close()
			frames := hardStreamFrames(wire.FlagRequest, c.ID, channel, uuid.New(), []byte("queued"))
			if _, err := c.NC.Write(frames); err != nil {
				t.Fatalf("raw request: %v", err)
			}
			if _, err := c.Ping(); err != nil {
				t.Fatalf("raw request: %v", err)
			}
		}
		if st := srv.Stats().Channel(channel); st.Queued != limit {
			t.Fatalf("queued requests: got %d, want %d", st.Queued, limit)
		}
		sender := dial(t, addr, channel)
		if _, err := roundTrip(ctx, sender, []byte("one too many")); !errors.Is(err, socketbus.ErrLimit) {
			t.Fatalf("Send to a full queue: got %v, want ErrLimit", err)
		}
		if err := serveN(ctx, peer, limit, upper); err != nil {
			t.Fatalf("serving the queued requests: %v", err)
		}
		served := make(chan error, 1)
		go func() { served <- serveN(ctx, peer, 1, upper) }()
		if got, err := roundTrip(ctx, sender, []byte("room now")); err != nil || string(got) != "ROOM NOW" {
			t.Fatalf("Send once the queue drained: got %q, %v; want %q, nil", got, err, "ROOM NOW")
		}
		if err := <-served; err != nil {
			t.Fatalf("peer: %v", err)
		}
	})
	t.Logf("request limits: the request over MaxInFlightPerClient (%d) and over MaxQueuedRequestsPerChannel (%d) got ErrLimit, the others completed; outcomes %v",
		limit, limit, srv.Stats().Requests)
}
