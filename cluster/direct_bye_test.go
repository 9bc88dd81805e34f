package cluster_test

import (
	"context"
	"testing"
	"time"
)

// TestDirectByeOnClose: a node that closes tells the nodes it has direct
// connections with at once (its bye goes on the connection, which is
// written out before it closes): they drop it without waiting for it to
// go silent (here a minute, longer than the test waits).
func TestDirectByeOnClose(t *testing.T) {
	for i := range 5 {
		b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", dead: time.Minute}, 2)
		n1, n2 := b.node(0), b.node(1)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		waitAllDirect(ctx, t, n1, n2)
		b.kill(i % 2)
		survivor := b.node(0)
		if err := survivor.c.WaitNodes(ctx, 1); err != nil {
			t.Fatalf("round %d: %s did not hear %s's bye: %v", i, survivor.name, map[bool]string{true: "n1", false: "n2"}[i%2 == 0], err)
		}
		cancel()
		b.close()
	}
}
