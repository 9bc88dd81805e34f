package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
)

// TestDirectConnectionCarriesLinks: two nodes with DirectListen connect
// directly once they have heard each other, and a request across them,
// with a body of many frames, goes there and its response comes back on
// the direct connection: no frame of it crosses NATS.
func TestDirectConnectionCarriesLinks(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0"}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n1.c.WaitDirect(ctx, "n2"); err != nil {
		t.Fatalf("n1's link from n2 on a direct connection: %v", err)
	}
	if err := n2.c.WaitDirect(ctx, "n1"); err != nil {
		t.Fatalf("n2's link from n1 on a direct connection: %v", err)
	}
	responder := dial(t, n2, "direct")
	serve(t, responder, echo)
	callAllDirect(ctx, t, dial(t, n1, "direct"), n1, n2)
}

// callAllDirect makes a call of 1 MiB (sixteen 64 KiB frames and more)
// through requester, on n1, to an echo on n2, and checks that every frame
// of it crossed on the direct connection between them, none on NATS.
func callAllDirect(ctx context.Context, t *testing.T, requester *socketbus.Client, n1, n2 *testNode) {
	t.Helper()
	direct1, nats1 := n1.c.DirectFrames()
	direct2, nats2 := n2.c.DirectFrames()
	body := bytes.Repeat([]byte("0123456789abcdef"), 1<<16)
	got, err := requester.Call(ctx, body)
	if err != nil || !bytes.Equal(got, append([]byte("echo:"), body...)) {
		t.Fatalf("a request across direct nodes: %d bytes, %v", len(got), err)
	}
	d1, v1 := n1.c.DirectFrames()
	d2, v2 := n2.c.DirectFrames()
	if v1 != nats1 || v2 != nats2 {
		t.Fatalf("frames over NATS during the request: n1 %d, n2 %d, want 0", v1-nats1, v2-nats2)
	}
	if d1-direct1 < 16 || d2-direct2 < 16 {
		t.Fatalf("frames over the direct connections: n1 %d, n2 %d, want 16 or more each", d1-direct1, d2-direct2)
	}
	t.Logf("frames over the direct connections: n1 read %d, n2 read %d", d1-direct1, d2-direct2)
}

// TestDirectConnectionCut: a direct connection cut between requests
// leaves the bus working: the link goes back to NATS (a request in flight
// may end with peer_gone when the link resets, as for a message NATS
// lost), the nodes connect again, and requests go on.
func TestDirectConnectionCut(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0"}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, w := range []struct {
		n    *testNode
		peer string
	}{{n1, "n2"}, {n2, "n1"}} {
		if err := w.n.c.WaitDirect(ctx, w.peer); err != nil {
			t.Fatal(err)
		}
	}
	responder := dial(t, n2, "cut")
	serve(t, responder, echo)
	requester := dial(t, n1, "cut")
	call := func(what string) {
		t.Helper()
		for attempt := 0; ; attempt++ {
			got, err := requester.Call(ctx, []byte(what))
			if err == nil && string(got) == "echo:"+what {
				return
			}
			if !errors.Is(err, socketbus.ErrPeerGone) || attempt == 10 {
				t.Fatalf("%s: %q, %v (attempt %d)", what, got, err, attempt)
			}
		}
	}
	call("before the cut")
	if !n1.c.CutDirect("n2") {
		t.Fatal("no direct connection to cut")
	}
	call("after the cut")
	for _, w := range []struct {
		n    *testNode
		peer string
	}{{n1, "n2"}, {n2, "n1"}} {
		if err := w.n.c.WaitDirect(ctx, w.peer); err != nil {
			t.Fatalf("direct again: %v", err)
		}
	}
	call("connected again")
}
