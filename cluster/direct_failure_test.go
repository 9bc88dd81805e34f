package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
)

// waitAllDirect waits until every pair of the bus's nodes has its links on
// direct connections, both ways.
func waitAllDirect(ctx context.Context, t *testing.T, nodes ...*testNode) {
	t.Helper()
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				if err := a.c.WaitDirect(ctx, b.name); err != nil {
					t.Fatalf("%s's link from %s on a direct connection: %v", a.name, b.name, err)
				}
			}
		}
	}
}

// callRetry makes a request until it ends otherwise than with peer_gone
// (a link reset while the connection switched), a few times at most.
func callRetry(ctx context.Context, t *testing.T, c *socketbus.Client, what string) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		got, err := c.Call(ctx, []byte(what))
		if err == nil && string(got) == "echo:"+what {
			return
		}
		if !errors.Is(err, socketbus.ErrPeerGone) || attempt == 10 {
			t.Fatalf("%s: %q, %v (attempt %d)", what, got, err, attempt)
		}
	}
}

// TestDirectSlowReader: n2 stops reading its direct connection from n1
// (a proxy in between stops forwarding n1's bytes) while n1 sends it
// large requests. n1's link to n3 keeps flowing — requests to n3 complete
// while n1's bytes for n2 pile up — and once n1's write queue for n2
// would pass its base (1 MiB here) while its writer's write has not
// finished for directStall, n1 drops that connection and the link goes
// back to NATS: the requests to n2 end (each once: a response or
// peer_gone), and new ones go through. The writes are given two minutes,
// so that only the queue's rule can drop the connection within the test's
// time.
func TestDirectSlowReader(t *testing.T) {
	p, b := busBehindProxy(t, 3, cluster.DirectKnobs{Queue: 1 << 20, WriteTimeout: 2 * time.Minute})
	n1, n2, n3 := b.node(0), b.node(1), b.node(2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2, n3)
	const streams = 16
	entered := make(chan struct{}, 64)
	serve(t, dial(t, n2, "slow"), func(req *socketbus.Request) {
		entered <- struct{}{}
		echo(req)
	})
	serve(t, dial(t, n3, "fast"), echo)
	slow, fast := dial(t, n1, "slow"), dial(t, n1, "fast")
	callRetry(ctx, t, slow, "before")
	<-entered
	callRetry(ctx, t, fast, "before")

	// The requests' bodies are under way (claimed by n2, each with a
	// window of credit) when n2 stops reading: what the windows allow
	// is more than the sockets' buffers and n1's queue hold.
	streamsDone := startLargeCalls(ctx, t, slow, entered, streams)
	p.stop(up)
	// n1's link to n3 flows while its bytes for n2 pile up, until n1
	// drops the connection to n2.
	dropped := make(chan error, 1)
	go func() { dropped <- n1.c.WaitDirectDown(ctx, "n2") }()
	calls, maxQueued := 0, 0
wait:
	for {
		select {
		case err := <-dropped:
			if err != nil {
				t.Fatalf("n1 kept its direct connection to a peer that does not read: %v", err)
			}
			break wait
		default:
		}
		fctx, fcancel := context.WithTimeout(ctx, 20*time.Second)
		got, err := fast.Call(fctx, []byte("while n2 is slow"))
		fcancel()
		if err != nil || string(got) != "echo:while n2 is slow" {
			t.Fatalf("n1 → n3 while n2 does not read: %q, %v (after %d calls)", got, err, calls)
		}
		calls++
		if _, q := n1.c.DirectUp("n2"); q > maxQueued {
			maxQueued = q
		}
	}
	t.Logf("n1 → n3: %d requests while n1's queue for n2 grew (to %d bytes seen)", calls, maxQueued)
	p.start(up)
	streamsDone()
	callRetry(ctx, t, slow, "after")
	callRetry(ctx, t, fast, "after")
}

// TestDirectWriteTimeout: as TestDirectSlowReader, but with a queue large
// enough to hold everything the stalled requests may send: what drops
// n1's connection to n2 is its writer's write, which does not finish
// within its deadline (half a second here). The link goes back to NATS,
// and requests to n2 go on.
func TestDirectWriteTimeout(t *testing.T) {
	p, b := busBehindProxy(t, 2, cluster.DirectKnobs{Queue: 64 << 20, WriteTimeout: 500 * time.Millisecond})
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	const streams = 16
	entered := make(chan struct{}, 64)
	serve(t, dial(t, n2, "stalled"), func(req *socketbus.Request) {
		entered <- struct{}{}
		echo(req)
	})
	requester := dial(t, n1, "stalled")
	callRetry(ctx, t, requester, "before")
	<-entered

	streamsDone := startLargeCalls(ctx, t, requester, entered, streams)
	p.stop(up)
	if err := n1.c.WaitDirectDown(ctx, "n2"); err != nil {
		t.Fatalf("n1 kept its direct connection to a peer that does not read: %v", err)
	}
	p.start(up)
	streamsDone()
	callRetry(ctx, t, requester, "after")
}

// busBehindProxy starts a bus of nodes with direct connections and knobs
// k, n2's announced behind a proxy that the test can stop.
func busBehindProxy(t *testing.T, nodes int, k cluster.DirectKnobs) (*directProxy, *testBus) {
	p := newDirectProxy(t)
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", knobs: func(name string) cluster.DirectKnobs {
		nk := k
		if name == "n2" {
			nk.Announce = p.addr()
		}
		return nk
	}}, nodes)
	p.setTarget(b.node(1).c.DirectAddr())
	return p, b
}

// startLargeCalls makes streams calls of 16 MiB through requester and
// returns once the handler has taken each (it sends on entered). Each
// must end with its echo or peer_gone, which the returned function
// waits for.
func startLargeCalls(ctx context.Context, t *testing.T, requester *socketbus.Client, entered <-chan struct{}, streams int) (wait func()) {
	t.Helper()
	body := bytes.Repeat([]byte("x"), 16<<20)
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			got, err := requester.Call(ctx, body)
			if err != nil && !errors.Is(err, socketbus.ErrPeerGone) || err == nil && len(got) != len("echo:")+len(body) {
				t.Errorf("a large request to the node that stops reading: %d bytes, %v", len(got), err)
			}
		})
	}
	for range streams {
		select {
		case <-entered:
		case <-ctx.Done():
			t.Fatal("the requests did not reach n2's handlers")
		}
	}
	return wg.Wait
}
