package cluster_test

import (
	"context"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
)

// TestDirectLostMarker: n1's first marker — the last message of its link
// on NATS before the link goes on the direct connection — is lost on the
// way (NATS drops a message published before the far server has learnt of
// the subscription). n2's reader, which waits for it before handing on
// anything read from the connection, gives up after a while (three
// heartbeats, at least a second) and drops the connection; the nodes
// connect again and the link comes up, with the node's silence bound (a
// minute here) far off.
func TestDirectLostMarker(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", dead: time.Minute, knobs: func(name string) cluster.DirectKnobs {
		if name == "n1" {
			return cluster.DirectKnobs{LoseMarkers: 1}
		}
		return cluster.DirectKnobs{}
	}}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	serve(t, dial(t, n2, "marker"), echo)
	callRetry(ctx, t, dial(t, n1, "marker"), "after a lost marker")
}
