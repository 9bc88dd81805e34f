package socketbus_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// hardCountingReader calls reached once, when more than threshold bytes
// have been read from r.
type hardCountingReader struct {
	r         io.Reader
	threshold int
	read      int
	reached   func()
}

func (c *hardCountingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	before := c.read
	c.read += n
	if before <= c.threshold && c.read > c.threshold {
		c.reached()
	}
	return n, err
}

// TestHardeningStalledRequester: a requester stops reading its socket while
// the responses to its 32 requests, 1 MiB each, arrive. The server routes
// at most a window of each toward it, its writes to the requester block,
// and after WriteTimeout it cuts the requester off: every responder's
// Respond fails with ErrPeerGone, and once the requester reads again its
// Sends all fail. 16 bystanders on the same channel and the same server
// keep their round trips going; their p99 before and during the stall is
// reported. (The receiver-side variant is TestSlowConsumerCutOff.)
func TestHardeningStalledRequester(t *testing.T) {
	const (
		writeTimeout = 3 * time.Second
		heavy        = 32
		// Four stream windows (server.Config.StreamWindow), so that the
		// server holds only part of each response.
		heavySize = 4 * server.DefaultStreamWindow
		rounds    = 10
	)
	srv, addr := startServer(t, server.Config{WriteTimeout: writeTimeout})
	channel := socketbus.ChannelFromName("hard-stalled-requester")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bystanders := make([]*socketbus.Client, 16)
	for i := range bystanders {
		bystanders[i] = dial(t, addr, channel)
	}
	conns := make(chan *hardStallConn, 1)
	// A receive buffer of 128 KiB: small enough that the 8 MiB routed to
	// the stalled requester overflows the socket buffers, and over
	// loopback's 64 KiB segment size, so that once it reads again the
	// window reopens at once rather than by zero-window probes.
	requester := dial(t, addr, channel, hardStallDialer(false, 128<<10, conns))
	stall := <-conns
	defer stall.Release()

	// Responders answer "heavy" with 1 MiB, anything else in upper case.
	// Enough of them that the heavy requests leave some free.
	var pushed sync.WaitGroup // a window of every heavy response is on its way
	pushed.Add(heavy)
	type answer struct {
		err error
		at  time.Time
	}
	answers := make(chan answer, heavy)
	responders := make([]*socketbus.Client, 4)
	for i := range responders {
		responders[i] = dial(t, addr, channel)
	}
	stopResponders := hardResponders(responders, heavy/2, func(req *socketbus.Request, body []byte) {
		if string(body) != "heavy" {
			req.Respond(strings.NewReader(strings.ToUpper(string(body))))
			return
		}
		r := &hardCountingReader{r: testpeer.NewPattern(7, heavySize), threshold: wire.StreamWindow - 1, reached: pushed.Done}
		err := req.Respond(r)
		answers <- answer{err, time.Now()}
	})
	defer stopResponders()

	before, err := hardLatencies(ctx, bystanders, rounds)
	if err != nil {
		t.Fatalf("bystanders before the stall: %v", err)
	}

	stall.Stall()
	stalled := time.Now()
	sendErrs := make(chan error, heavy)
	for range heavy {
		go func() { sendErrs <- requester.Send(ctx, strings.NewReader("heavy"), io.Discard) }()
	}
	// Every heavy response has put a window's worth (8 MiB in all) on its
	// way to the requester, more than its socket buffers hold: the
	// server's writes to it are blocked.
	allPushed := make(chan struct{})
	go func() { pushed.Wait(); close(allPushed) }()
	select {
	case <-allPushed:
	case <-ctx.Done():
		t.Fatalf("the heavy responses never got a window out each")
	}

	during, err := hardLatencies(ctx, bystanders, rounds)
	if err != nil {
		t.Fatalf("bystanders while the requester stalls: %v", err)
	}
	duringEnd := time.Now()

	var cutAt time.Time
	peerGone := 0
	for range heavy {
		a := <-answers
		if cutAt.IsZero() || a.at.Before(cutAt) {
			cutAt = a.at
		}
		if errors.Is(a.err, socketbus.ErrPeerGone) {
			peerGone++
		} else {
			t.Errorf("heavy Respond: got %v, want ErrPeerGone", a.err)
		}
	}
	if cutAt.Before(duringEnd) {
		t.Fatalf("the requester was cut off %v after the stall began, before the bystanders finished: the stall was cut short, so it proves nothing", cutAt.Sub(stalled))
	}
	cutAfter := cutAt.Sub(stalled)
	if cutAfter < writeTimeout || cutAfter > writeTimeout+10*time.Second {
		t.Errorf("requester cut off %v after it stalled, want WriteTimeout (%v) or a little more", cutAfter, writeTimeout)
	}

	// Reading again, the requester finds its connection gone.
	stall.Release()
	var sendCounts hardCounts
	for range heavy {
		err := <-sendErrs
		switch {
		case err == nil:
			sendCounts.Add("succeeded", nil)
		case errors.Is(err, socketbus.ErrDisconnected):
			sendCounts.Add("ErrDisconnected", nil)
		default:
			sendCounts.Add("other error", err)
		}
	}
	if sendCounts.Get("ErrDisconnected") != heavy {
		t.Errorf("the stalled requester's Sends: got %v, want all %d to fail with ErrDisconnected", &sendCounts, heavy)
	}
	after, err := hardLatencies(ctx, bystanders, rounds)
	if err != nil {
		t.Fatalf("bystanders after the cut-off: %v", err)
	}
	t.Logf("stalled requester (WriteTimeout %v): cut off %v after it stopped reading; %d of %d responders got ErrPeerGone; its Sends: %v; bystander p99 %v before, %v during the stall, %v after (%d round trips each); server outcomes %v",
		writeTimeout, cutAfter.Round(time.Millisecond), peerGone, heavy, &sendCounts,
		hardPercentile(before, 99), hardPercentile(during, 99), hardPercentile(after, 99), len(during), srv.Stats().Requests)
}
