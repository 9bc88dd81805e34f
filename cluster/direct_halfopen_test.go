package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
)

// TestDirectHalfOpen: the direct connection between n1 and n2 goes silent
// both ways without closing (a proxy in between stops forwarding). Each
// node drops it within its read deadline (the time after which a silent
// node is dropped: here 2 s, three heartbeats by default; the heartbeat
// crosses every link each Heartbeat), and requests go on over NATS while
// the proxy stays silent.
func TestDirectHalfOpen(t *testing.T) {
	p := newDirectProxy(t)
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", dead: 2 * time.Second, knobs: func(name string) cluster.DirectKnobs {
		if name == "n2" {
			return cluster.DirectKnobs{Announce: p.addr()}
		}
		return cluster.DirectKnobs{}
	}}, 2)
	n1, n2 := b.node(0), b.node(1)
	p.setTarget(n2.c.DirectAddr())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	serve(t, dial(t, n2, "halfopen"), echo)
	requester := dial(t, n1, "halfopen")
	callRetry(ctx, t, requester, "before")

	p.stop(up)
	p.stop(down)
	start := time.Now()
	for _, w := range []struct {
		n    *testNode
		peer string
	}{{n1, "n2"}, {n2, "n1"}} {
		if err := w.n.c.WaitDirectDown(ctx, w.peer); err != nil {
			t.Fatalf("%s kept a silent direct connection: %v", w.n.name, err)
		}
	}
	t.Logf("both nodes dropped the silent connection within %v", time.Since(start))
	_, viaNATS := n2.c.DirectFrames()
	callRetry(ctx, t, requester, "over NATS")
	if _, v := n2.c.DirectFrames(); v == viaNATS {
		t.Fatal("the request after the drop did not cross NATS")
	}
	p.start(up)
	p.start(down)
}
