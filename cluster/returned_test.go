package cluster_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestReturnedRemoteOfferGoesBackToItsOrigin (issue 17, finding 9): a
// request n1 offered to n2, pushed there to a v2 receiver that gives it
// back (a return), goes back to n1 when no other receiver waits on n2 —
// it must not sit in n2's queue — and runs there, once, on n1's own
// receiver.
func TestReturnedRemoteOfferGoesBackToItsOrigin(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	n1, n2 := b.node(0), b.node(1)
	const channel, requests = "returns", 10

	returner := dialRawVersion(t, n2, channel, wire.Version2)
	returner.write(wire.TypeStart, wire.FlagReceive, wire.ID{}, 0, true, wire.AppendCredit(nil, requests))

	requester := dial(t, n1, channel)
	errs := make(chan error, requests)
	for i := range requests {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			body := fmt.Sprint(i)
			got, err := requester.Call(ctx, []byte(body))
			if err == nil && string(got) != "ran "+body {
				err = fmt.Errorf("got %q", got)
			}
			if err != nil {
				err = fmt.Errorf("request %s: %w", body, err)
			}
			errs <- err
		}()
	}
	// Every request crosses to n2 and is pushed to the returner.
	var pushed []wire.ID
	for len(pushed) < requests {
		h, _ := returner.Read()
		if h.Type == wire.TypeStart && h.Flags == wire.FlagReceive && h.RequestID != (wire.ID{}) {
			pushed = append(pushed, h.RequestID)
		}
	}
	// n1's own receiver starts now, idle: nothing is queued on n1.
	var mu sync.Mutex
	runs := map[string]int{}
	serve(t, dial(t, n1, channel), func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		runs[string(body)]++
		mu.Unlock()
		_ = req.Respond(strings.NewReader("ran " + string(body)))
	}, socketbus.WithConcurrency(2))
	// The returner stops taking pushes, then gives every request back.
	returner.write(wire.TypeEnd, wire.FlagReceive, wire.ID{}, 0, true, nil)
	for _, id := range pushed {
		returner.write(wire.TypeError, wire.FlagReceive, id, 0, true, wire.AppendError(nil, wire.CodeReturned, ""))
	}
	for range requests {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i := range requests {
		if n := runs[fmt.Sprint(i)]; n != 1 {
			t.Errorf("request %d ran %d times on n1, want 1", i, n)
		}
	}
}
