package server_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testhook"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// credit4 is a 4-byte credit grant of n bytes.
func credit4(n uint32) []byte { return wire.AppendCredit(nil, n) }

// TestTrustResponseCreditBeforeResponse is the two-frame remote crash: a
// sender grants response credit for its own request while the request is
// still queued (no receiver yet). It used to dereference the missing
// receiver and kill the whole server; now it is a protocol error that
// closes only that connection.
func TestTrustResponseCreditBeforeResponse(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	stop := testpeer.BackgroundPair(t, addr)
	ch := uuid.New()
	idle := testpeer.Join(t, addr, ch) // a member that never polls
	attacker := testpeer.Join(t, addr, ch)

	id := uuid.New()
	start := attacker.Header(wire.TypeStart, wire.FlagRequest, id)
	start.TimeoutMillis = 5000
	attacker.WriteFrame(start, nil)
	attacker.WriteFrame(attacker.Header(wire.TypeChunk, wire.FlagResponse|wire.FlagCredit, id), credit4(1))

	_, e := attacker.ReadError()
	if e.Code != wire.CodeProtocol {
		t.Fatalf("response credit before the response: got %s, want protocol", e.Code)
	}
	attacker.ExpectEOF()
	idle.Sync() // the other member of the channel is still served
	if n, err := stop(); err != nil {
		t.Fatalf("bystanders: %d round trips, then %v", n, err)
	}
}

// TestTrustClientIDSquatting: client IDs are unique per channel. A member
// of a public channel that takes the fixed ID of a client of a secret
// channel does not lock that client out of it, whichever joins first.
func TestTrustClientIDSquatting(t *testing.T) {
	public, secret := uuid.New(), uuid.New()
	_, addr := startServer(t, server.Config{
		Authenticate: func(_, channel socketbus.ID, token string) error {
			if channel == secret && token != "s3cret" {
				return errors.New("wrong token")
			}
			return nil
		},
	})
	victimID := uuid.New()
	squatter := dial(t, addr, public, socketbus.WithClientID(victimID))
	victim := dial(t, addr, secret, socketbus.WithClientID(victimID), socketbus.WithToken("s3cret"))
	if victim.ID() != squatter.ID() {
		t.Fatalf("IDs differ: %x vs %x", victim.ID(), squatter.ID())
	}
	// On its own channel the ID is still exclusive.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := socketbus.Dial(ctx, addr, public, socketbus.WithClientID(victimID))
	if !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("second join of one ID to one channel: got %v, want ErrConflict", err)
	}
}

// TestTrustHonestReceiverBurstOfEnds: a receiver holding thousands of
// requests that all end in one burst (their senders cancel) while it
// answers them sends frames for requests the server has already ended. The
// server must drop them all, however many there are, and keep the receiver.
// It used to remember only the last 1,024 ended IDs and cut the receiver
// with a protocol error.
func TestTrustHonestReceiverBurstOfEnds(t *testing.T) {
	const n = 2000
	_, addr := startServer(t, server.Config{MaxInFlightPerClient: 2 * n})
	ch := uuid.New()
	sender := dial(t, addr, ch)
	receiver := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	for round := 0; round < 3; round++ {
		sendCtx, cancelSends := context.WithCancel(ctx)
		var sends sync.WaitGroup
		for i := 0; i < n; i++ {
			sends.Add(1)
			go func() {
				defer sends.Done()
				_ = sender.Send(sendCtx, strings.NewReader("x"), io.Discard)
			}()
		}
		held := make([]*socketbus.Request, 0, n)
		for len(held) < n {
			req, err := receiver.Receive(ctx)
			if err != nil {
				t.Fatalf("round %d: Receive after %d: %v", round, len(held), err)
			}
			held = append(held, req)
		}
		// Every request ends at once while the receiver answers them all.
		var answers sync.WaitGroup
		for _, req := range held {
			answers.Add(1)
			go func() {
				defer answers.Done()
				_ = req.Respond(strings.NewReader("y"))
			}()
		}
		cancelSends()
		answers.Wait()
		sends.Wait()
		// The receiver is still connected and serving.
		done := make(chan error, 1)
		go func() { done <- serveN(ctx, receiver, 1, upper) }()
		got, err := roundTrip(ctx, sender, []byte("after"))
		if err != nil || string(got) != "AFTER" {
			t.Fatalf("round %d: round trip after the burst: got %q, %v; receiver: %v", round, got, err, receiver.Err())
		}
		if err := <-done; err != nil {
			t.Fatalf("round %d: receiver: %v", round, err)
		}
	}
}

// TestTrustPanicContained: a panic while the server handles one
// connection's frame closes that connection with an internal error, is
// counted, and leaves every other connection serving — including the
// other member of the same channel and a request it had in flight.
func TestTrustPanicContained(t *testing.T) {
	poison := uuid.New()
	poisoned := &testhook.Server{Handle: func(h *wire.Header) {
		if h.RequestID == poison {
			panic("test: poisoned frame")
		}
	}}
	srv, addr := startServer(t, server.Config{})
	testhook.Set(srv, poisoned)
	t.Cleanup(func() { testhook.Set(srv, nil) })
	stop := testpeer.BackgroundPair(t, addr)
	ch := uuid.New()
	victim := testpeer.Join(t, addr, ch)
	peer := dial(t, addr, ch)

	// The victim holds a request of the peer's when it fails.
	victim.Poll(uuid.New())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() { sent <- peer.Send(ctx, strings.NewReader("held"), io.Discard) }()
	victim.Receive()

	victim.WriteFrame(victim.Header(wire.TypeStart, wire.FlagPing, poison), nil)
	h, e := victim.ReadError()
	if e.Code != wire.CodeInternal || h.Flags != 0 {
		t.Fatalf("after the panic: got %v %s, want a connection-level internal error", h, e.Code)
	}
	victim.ExpectEOF()
	if err := <-sent; !errors.Is(err, socketbus.ErrPeerGone) {
		t.Fatalf("the request the failed connection held: got %v, want ErrPeerGone", err)
	}
	if got := srv.Stats().InternalErrors; got != 1 {
		t.Fatalf("Stats.InternalErrors: got %d, want 1", got)
	}
	if n, err := stop(); err != nil {
		t.Fatalf("bystanders: %d round trips, then %v", n, err)
	}
	if peer.Err() != nil {
		t.Fatalf("the failed connection's channel peer: %v, want it still open", peer.Err())
	}
}

// TestTrustReceiverHoldsAtMostItsLimit: a receiver that stops reading can
// hold at most MaxInFlightPerClient requests at once — its waiting polls and
// the requests delivered to it together — so a receiver that polls,
// receives and never answers cannot take more than that many of its
// channel's requests hostage (each then ends at its timeout). Held
// requests used not to count, so a receiver could poll again and again.
func TestTrustReceiverHoldsAtMostItsLimit(t *testing.T) {
	const limit = 8
	_, addr := startServer(t, server.Config{MaxInFlightPerClient: limit})
	ch := uuid.New()
	hog := testpeer.Join(t, addr, ch)
	sender := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < limit; i++ {
		hog.Poll(uuid.New())
	}
	var sends sync.WaitGroup
	for i := 0; i < limit; i++ {
		sends.Add(1)
		go func() {
			defer sends.Done()
			_ = sender.Send(ctx, strings.NewReader("hostage"), io.Discard)
		}()
	}
	for i := 0; i < limit; i++ {
		hog.Receive()
	}
	// It holds limit requests and has no poll left: one more poll is over
	// the limit.
	extra := uuid.New()
	hog.Poll(extra)
	h, e := hog.ReadError()
	if e.Code != wire.CodeLimit || h.RequestID != extra || h.Flags != wire.FlagReceive {
		t.Fatalf("a poll past the limit with %d requests held: got %v %s, want a limit error for the poll", limit, h, e.Code)
	}
	cancel() // the hostages end; the senders' Sends return
	sends.Wait()
}
