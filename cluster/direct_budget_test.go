package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/socketbus/socketbus/server"
)

// TestDirectChargedToBudget: a direct connection's buffers are charged to
// the node's cluster account while it is up, and released with it: once
// the peer is gone the account is back to nothing.
func TestDirectChargedToBudget(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", cfg: server.Config{MaxMemory: 256 << 20}}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	for _, n := range []*testNode{n1, n2} {
		if used, limit := n.c.Charged(); used < n.c.DirectCost() {
			t.Fatalf("%s: %d of %d charged with a direct connection up, want at least its %d", n.name, used, limit, n.c.DirectCost())
		}
	}
	b.kill(1)
	waitNodes(t, n1.c, 1)
	if err := n1.c.WaitDirectDown(ctx, "n2"); err != nil {
		t.Fatal(err)
	}
	if used, _ := n1.c.Charged(); used != 0 {
		t.Fatalf("n1: %d bytes still charged with no other node", used)
	}
}

// TestDirectOverBudget: nodes whose memory budget's cluster share cannot
// hold a direct connection's buffers keep their links on NATS, and
// requests go through.
func TestDirectOverBudget(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", cfg: server.Config{MaxMemory: server.MinMaxMemory}}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, limit := n1.c.Charged(); limit >= n1.c.DirectCost() {
		t.Fatalf("the cluster share (%d) holds a direct connection (%d): the test needs a smaller budget", limit, n1.c.DirectCost())
	}
	serve(t, dial(t, n2, "budget"), echo)
	requester := dial(t, n1, "budget")
	for i := range 20 {
		callRetry(ctx, t, requester, "over NATS "+string(rune('a'+i)))
	}
	for _, w := range []struct {
		n    *testNode
		peer string
	}{{n1, "n2"}, {n2, "n1"}} {
		if up, _ := w.n.c.DirectUp(w.peer); up {
			t.Fatalf("%s has a direct connection to %s its budget cannot hold", w.n.name, w.peer)
		}
		if direct, viaNATS := w.n.c.DirectFrames(); direct != 0 || viaNATS == 0 {
			t.Fatalf("%s read %d frames direct, %d over NATS", w.n.name, direct, viaNATS)
		}
	}
}
