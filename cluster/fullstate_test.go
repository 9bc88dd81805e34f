package cluster_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
)

// TestLostFullStateIsSentAgain: n1 has a receiver on a channel when n2
// joins the bus, and the full states n1 sends n2 — the only message that
// names that channel — are lost on their way, as NATS loses what it
// routes before the far node's interest has reached it (which a link's
// first messages cannot show as a gap). n1 sends its full state again
// until n2 acknowledges it: n1 sees n2 join, and a request on n2 reaches
// n1's receiver. Before, n2 never learned of the channel (every request
// there ended with no_peers) and n1 never saw n2 join, as a rolling
// restart's startup once did in CI.
func TestLostFullStateIsSentAgain(t *testing.T) {
	joined := make(chan struct{})
	var joinedOnce sync.Once
	b := startTestBus(&testBus{t: t,
		knobs: func(name string) cluster.DirectKnobs {
			if name == "n1" {
				return cluster.DirectKnobs{LoseFullStates: 3}
			}
			return cluster.DirectKnobs{}
		},
		logged: func(node, line string) {
			if node == "n1" && strings.Contains(line, "node n2 joined the bus") {
				joinedOnce.Do(func() { close(joined) })
			}
		},
	}, 1)
	serve(t, dial(t, b.node(0), "early"), echo)
	b.start("n2")
	b.settle()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-joined: // n2 acknowledged a full state of n1's
	case <-ctx.Done():
		t.Fatal("n1 never saw n2 join: its full state was not sent again")
	}
	got, err := dial(t, b.node(1), "early").Call(ctx, []byte("hi"))
	if err != nil || string(got) != "echo:hi" {
		t.Fatalf("a request on n2 for n1's receiver: %q, %v; want its echo", got, err)
	}
}
