package cluster_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus/cluster"
)

// TestDirectRedialBacksOff: n2 announces, for its direct connections, an
// address where something refuses every hello (it sends no challenge, and
// closes). n1 keeps hearing n2 (heartbeats every 200 ms, link messages),
// and each failed dial doubles the wait before the next: the gaps between
// n1's failures grow from 50 ms, where before n1 redialled every 50 ms for
// as long as n2 talked.
func TestDirectRedialBacksOff(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	})
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0", knobs: func(name string) cluster.DirectKnobs {
		if name == "n2" {
			return cluster.DirectKnobs{Announce: ln.Addr().String()}
		}
		return cluster.DirectKnobs{}
	}}, 2)
	n1 := b.node(0)
	const failures = 6
	failed := make(chan time.Time, failures)
	n1.c.OnDirectDialFailed(func(peer string, err error) {
		select {
		case failed <- time.Now():
		default:
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var at []time.Time
	for len(at) < failures {
		select {
		case t0 := <-failed:
			at = append(at, t0)
		case <-ctx.Done():
			t.Fatalf("%d failed dials of n2 seen, want %d", len(at), failures)
		}
	}
	// The hook may have been set between two failures: from the second
	// gap on, each is at least twice the last lower bound. The waits are
	// lower bounds whatever the machine's load.
	for i := 2; i < failures; i++ {
		gap := at[i].Sub(at[i-1])
		if min := 50 * time.Millisecond << (i - 1); gap < min {
			t.Fatalf("gaps between failed dials %v; gap %d is %v, want at least %v", gaps(at), i, gap, min)
		}
	}
	t.Logf("gaps between failed dials: %v", gaps(at))
}

func gaps(at []time.Time) []time.Duration {
	var g []time.Duration
	for i := 1; i < len(at); i++ {
		g = append(g, at[i].Sub(at[i-1]).Round(time.Millisecond))
	}
	return g
}
