package cluster_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
)

// TestDirectBusyPeerKeepsItsConnection: n1 sends n2 many large requests at
// once over a connection whose write queue's base (256 KiB here) is far
// less than what n2's credit lets through (1 MiB per stream): n2 reads
// them all, so the queue grows past its base, charged, and the connection
// stays up. Every request ends with its response — none with peer_gone —
// and n1 drops no connection. (Before, the queue past its bound dropped
// the connection of a peer that was only busy.)
func TestDirectBusyPeerKeepsItsConnection(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", knobs: func(string) cluster.DirectKnobs {
		return cluster.DirectKnobs{Queue: 256 << 10}
	}}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	serve(t, dial(t, n2, "busy"), echo)
	requester := dial(t, n1, "busy")
	callRetry(ctx, t, requester, "before")
	drops := n1.c.DirectDrops() + n2.c.DirectDrops()

	const streams = 32
	body := bytes.Repeat([]byte("y"), 2<<20)
	var wg sync.WaitGroup
	for range streams {
		wg.Go(func() {
			got, err := requester.Call(ctx, body)
			if err != nil || len(got) != len("echo:")+len(body) {
				t.Errorf("a request to a busy peer: %d bytes, %v; want its echo", len(got), err)
			}
		})
	}
	wg.Wait()
	if now := n1.c.DirectDrops() + n2.c.DirectDrops(); now != drops {
		t.Fatalf("%d direct connections dropped while the peer read everything, want 0", now-drops)
	}
	if up, _ := n1.c.DirectUp("n2"); !up {
		t.Fatal("n1 lost its direct connection to n2")
	}
}
