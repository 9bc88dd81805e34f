package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// cancelAfterReader cancels a context once n bytes have been read from it:
// a sender that gives up part-way through its body.
type cancelAfterReader struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfterReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
	}
	k, err := c.r.Read(p[:min(len(p), max(c.n, 1))])
	c.n -= k
	return k, err
}

// cancelAfterWriter cancels a context once n response bytes have arrived.
type cancelAfterWriter struct {
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfterWriter) Write(p []byte) (int, error) {
	c.n -= len(p)
	if c.n <= 0 {
		c.cancel()
	}
	return len(p), nil
}

// TestCancelStorm: 10,000 requests whose senders cancel at random points —
// before sending, part-way through the body, while waiting, part-way
// through the response. Afterwards nothing is left in the server: no
// request, queue entry or stream (its own counters) and no goroutine
// (goleak, in TestMain).
func TestCancelStorm(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("cancel-storm")
	const senders, receivers = 8, 4
	ctx, cancelAll := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancelAll()

	var rwg sync.WaitGroup
	rctx, stopReceivers := context.WithCancel(ctx)
	for i := range receivers {
		r := dial(t, addr, ch)
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			for {
				req, err := r.Receive(rctx)
				if err != nil {
					return
				}
				n, err := io.Copy(io.Discard, req.Body)
				if err != nil {
					continue // cancelled by its sender: nothing to answer
				}
				// Answer with a body as long as the request, from a reader
				// that is slower than the network for odd receivers.
				_ = req.Respond(io.LimitReader(testpeer.NewPattern(uint64(i), n+1), n+1))
			}
		}()
	}

	var cancelled, completed, other atomic.Int64
	var swg sync.WaitGroup
	per := total / senders
	clients := make([]*socketbus.Client, senders)
	for s := range senders {
		c := dial(t, addr, ch)
		clients[s] = c
		swg.Add(1)
		go func() {
			defer swg.Done()
			rng := rand.New(rand.NewPCG(uint64(s), 42))
			for range per {
				size := rng.IntN(96 << 10)
				cctx, cancel := context.WithCancel(ctx)
				var body io.Reader = testpeer.NewPattern(rng.Uint64(), int64(size))
				var resp io.Writer = io.Discard
				switch rng.IntN(4) {
				case 0:
					cancel() // before the first frame
				case 1:
					body = &cancelAfterReader{r: body, n: rng.IntN(size + 1), cancel: cancel}
				case 2:
					resp = &cancelAfterWriter{n: rng.IntN(size + 2), cancel: cancel}
				case 3: // a cancel racing with everything else
					go cancel()
				}
				err := c.Send(cctx, body, resp)
				cancel()
				switch {
				case err == nil:
					completed.Add(1)
				case errors.Is(err, context.Canceled):
					cancelled.Add(1)
				default:
					other.Add(1)
					t.Errorf("Send: %v", err)
				}
			}
		}()
	}
	swg.Wait()

	// Each sender's connection is read in order, so once one more round
	// trip from each has completed, the server has handled every cancel.
	for _, c := range clients {
		if err := c.Send(ctx, bytes.NewReader([]byte("sync")), io.Discard); err != nil {
			t.Fatalf("final round trip: %v", err)
		}
	}
	st := srv.Stats()
	t.Logf("%d requests: %d completed, %d cancelled, %d other; server outcomes %v",
		senders*per+senders, completed.Load(), cancelled.Load(), other.Load(), st.Requests)
	if st.InFlight != 0 {
		t.Errorf("server still has %d requests in flight, want 0", st.InFlight)
	}
	for _, c := range st.Channels {
		if c.Queued != 0 || c.InFlight != 0 || c.QueuedBytes != 0 {
			t.Errorf("channel %v: queued %d (%d bytes), in flight %d; want all 0", c.ID, c.Queued, c.QueuedBytes, c.InFlight)
		}
	}
	var ended int64
	for _, n := range st.Requests {
		ended += n
	}
	if want := st.RequestsStarted; ended < want {
		t.Errorf("server counted %d requests started but only %d ended", want, ended)
	}
	stopReceivers()
	rwg.Wait()
}
