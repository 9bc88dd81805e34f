package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// TestReceiveCtxEndDuringCloseNoDeadlock closes a client that holds an
// unanswered request while one of its Receive calls has a context that
// ends at the same moment. Close must return, and the Receive with it
// (issue 9, finding 5: Receive waited for its result holding the client's
// lock while the closing connection needed that lock to abort the held
// request before it sent the waiters their results).
func TestReceiveCtxEndDuringCloseNoDeadlock(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	const iterations = 300
	for i := range iterations {
		ch := socketbus.ChannelFromName(fmt.Sprintf("close-race-%d", i))
		sender := dial(t, addr, ch)
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		// Not dial: a deadlocked client must not hang the test's cleanup.
		receiver, err := socketbus.Dial(dctx, addr, ch)
		dcancel()
		if err != nil {
			t.Fatalf("dial: %v", err)
		}

		sent := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			sent <- sender.Send(ctx, bytes.NewReader([]byte("held")), io.Discard)
		}()
		rctx, rcancel := context.WithTimeout(context.Background(), 10*time.Second)
		held, err := receiver.Receive(rctx)
		rcancel()
		if err != nil {
			t.Fatalf("iteration %d: Receive: %v", i, err)
		}
		// The held request is never answered: the close must abort it. Its
		// context ends as the connection closes, after the client has
		// taken its waiting Receive calls and before it aborts what it
		// holds: the moment the deadlock needed.
		ctx := held.Context()
		received := make(chan error, 1)
		waiting := make(chan struct{})
		go func() {
			close(waiting)
			_, err := receiver.Receive(ctx)
			received <- err
		}()
		<-waiting
		closed := make(chan struct{})
		go func() {
			receiver.Close()
			close(closed)
		}()

		timeout := time.After(10 * time.Second)
		select {
		case <-closed:
		case <-timeout:
			t.Fatalf("iteration %d: Close did not return within 10s (deadlock)", i)
		}
		select {
		case err := <-received:
			if err == nil {
				t.Fatalf("iteration %d: Receive returned a request, want an error", i)
			}
		case <-timeout:
			t.Fatalf("iteration %d: Receive did not return within 10s after Close", i)
		}
		select {
		case err := <-sent:
			if !errors.Is(err, socketbus.ErrPeerGone) {
				t.Fatalf("iteration %d: Send of the held request returned %v, want ErrPeerGone", i, err)
			}
		case <-timeout:
			t.Fatalf("iteration %d: Send did not return within 10s after its receiver closed", i)
		}
	}
}

// TestReceiveWithdrawnPollsDoNotLeak has receiver A wait in two Receive
// calls and end one as a request is delivered, then checks that the next
// request, sent once A receives no more, goes to receiver B, which waits in
// Receive (issue 9, finding 6: a withdrawal that lost the race with a
// delivery left A with a poll live at the server and no Receive to take
// what it was handed, so requests went to A and timed out).
func TestReceiveWithdrawnPollsDoNotLeak(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("withdrawn-polls")
	a, b, sender := dial(t, addr, ch), dial(t, addr, ch), dial(t, addr, ch)
	answer := func(req *socketbus.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Respond(bytes.NewReader(upper([]byte("from A"))))
	}

	const iterations = 400
	for i := range iterations {
		// A waits in two Receive calls; one gives up as the request is
		// on its way, the other answers until the request is answered.
		short, cancelShort := context.WithCancel(context.Background())
		long, cancelLong := context.WithCancel(context.Background())
		var receivers sync.WaitGroup
		receivers.Go(func() {
			if req, err := a.Receive(short); err == nil {
				answer(req)
			}
		})
		receivers.Go(func() {
			for {
				req, err := a.Receive(long)
				if err != nil {
					return
				}
				answer(req)
			}
		})
		waitReceivers(t, srv, ch, 2)
		sent := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := roundTrip(ctx, sender, []byte("to A"))
			sent <- err
		}()
		// Give up a little later each time, to end the Receive while the
		// delivery is on the wire in some of the iterations.
		giveUp := time.AfterFunc(time.Duration(i%25)*20*time.Microsecond, cancelShort)
		err := <-sent
		giveUp.Stop()
		cancelShort()
		cancelLong()
		receivers.Wait()
		if err != nil {
			t.Fatalf("iteration %d: request to A: %v, want A's answer", i, err)
		}

		// A receives no more; B does. A withdraws its polls
		// asynchronously: a request from A, which the server handles
		// after the withdrawals A queued before it, marks the moment they
		// have all reached the server. The next request must go to B.
		bctx, bstop := context.WithCancel(context.Background())
		served := make(chan error, 1)
		go func() { served <- serveN(bctx, b, 2, upper) }()
		check := func(from *socketbus.Client, what string) {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			got, err := roundTrip(ctx, from, []byte("to b"))
			if err != nil || string(got) != "TO B" {
				bstop()
				<-served
				t.Fatalf("iteration %d: %s: got %q, %v; want B's answer %q (A kept a poll live)", i, what, got, err, "TO B")
			}
		}
		check(a, "A's request to B")
		check(sender, "the request after A stopped receiving")
		if err := <-served; err != nil {
			t.Fatalf("iteration %d: B: %v", i, err)
		}
		bstop()
	}
}

// waitReceivers waits until the server has n Receive calls waiting on ch.
func waitReceivers(t *testing.T, srv *server.Server, ch socketbus.ID, n int) {
	t.Helper()
	waitChannel(t, srv, ch, fmt.Sprintf("%d receivers waiting", n), func(c server.ChannelStats) bool {
		return c.ReceiversWaiting == n
	})
}

// waitChannel waits, for up to 10 seconds, until the server's stats for ch
// satisfy ok. It checks after every frame the server handles and every
// connection it is done with (testpeer.Watch), never by polling.
func waitChannel(t *testing.T, srv *server.Server, ch socketbus.ID, what string, ok func(server.ChannelStats) bool) {
	t.Helper()
	met := testpeer.WatchServer(t, srv).Until(10*time.Second, func() bool {
		for _, c := range srv.Stats().Channels {
			if c.ID == ch && ok(c) {
				return true
			}
		}
		return false
	})
	if !met {
		t.Fatalf("channel %s: not %s within 10s; stats %+v", ch, what, srv.Stats().Channels)
	}
}
