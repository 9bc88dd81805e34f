package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// holdAfterFirstKiB is a handler that reads the first KiB of its one
// request's body, closes reading, and holds the request until it ends: it
// never completes.
func holdAfterFirstKiB(reading chan struct{}) socketbus.HandlerFunc {
	return func(req *socketbus.Request) {
		buf := make([]byte, 1024)
		_, _ = io.ReadFull(req.Body, buf)
		close(reading)
		<-req.Context().Done()
	}
}

// TestCrossNodeNodeDeath: a node dies (its server and its NATS stop at
// once, no drain) while one of its clients reads a request body from
// another node and while one of its clients waits for a response from
// another node. Both requests end with ErrPeerGone at the surviving nodes,
// within the bound: three heartbeats for a silent death, at once for a
// node that can still say bye.
func TestCrossNodeNodeDeath(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	reading := make(chan struct{})
	serve(t, dial(t, b.node(1), "death"), holdAfterFirstKiB(reading))
	survivor := dial(t, b.node(2), "death2")
	arrived := make(chan struct{})
	serve(t, survivor, func(req *socketbus.Request) {
		close(arrived)
		<-req.Context().Done()
	})
	requester := dial(t, b.node(0), "death")
	waiter := dial(t, b.node(1), "death2")

	sendErr := make(chan error, 1)
	go func() {
		sendErr <- requester.Send(context.Background(), &pattern{n: 1 << 30}, io.Discard)
	}()
	<-reading
	waitErr := make(chan error, 1)
	go func() {
		_, err := waiter.Call(context.Background(), []byte("x"))
		waitErr <- err
	}()
	// Only cut the node once the second request has crossed to n3.
	<-arrived
	begun := time.Now()
	b.kill(1)
	if err := <-sendErr; !errors.Is(err, socketbus.ErrPeerGone) {
		t.Fatalf("the request held on the dead node: %v, want ErrPeerGone", err)
	}
	t.Logf("the requester heard in %v", time.Since(begun))
	// The survivor's handler sees its request end once its sender's node
	// is gone: the call from the dead node is over.
	select {
	case err := <-waitErr:
		if err == nil {
			t.Fatalf("a request sent on the dead node completed")
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the client of the dead node did not hear of its end")
	}
}

// TestCrossNodeSilentDeath: a node's NATS stops at once, as when its
// process is killed: no bye, no route. The requests it held end with
// ErrPeerGone at the other node once it has been silent for the drop
// threshold (three heartbeats by default; 1 s here, five heartbeats, so
// that a loaded machine's pauses do not drop a live node first), plus a
// heartbeat's jitter, measured here.
func TestCrossNodeSilentDeath(t *testing.T) {
	const dead = time.Second
	b := startTestBus(&testBus{t: t, dead: dead}, 2)
	reading := make(chan struct{})
	serve(t, dial(t, b.node(1), "silent"), holdAfterFirstKiB(reading))
	requester := dial(t, b.node(0), "silent")
	sendErr := make(chan error, 1)
	go func() { sendErr <- requester.Send(context.Background(), &pattern{n: 1 << 30}, io.Discard) }()
	<-reading
	begun := time.Now()
	b.node(1).c.Crash()
	err := <-sendErr
	took := time.Since(begun)
	if !errors.Is(err, socketbus.ErrPeerGone) {
		t.Fatalf("the request held on the dead node: %v, want ErrPeerGone", err)
	}
	t.Logf("peer_gone %v after the node died (heartbeat %v, dropped after %v)", took, heartbeat, dead)
	if bound := dead + 2*heartbeat; took > bound+time.Second {
		t.Fatalf("peer_gone took %v, bound %v", took, bound)
	}
}

// TestCrossNodeRouteCut: the NATS route between two nodes is cut twice
// while a large body streams across it and small requests cross it. No
// request runs twice, every request ends (a response or an error), and the
// bus heals: once the route is back, requests cross again.
func TestCrossNodeRouteCut(t *testing.T) {
	// Heartbeats longer than NATS takes to bring a route back (1 s): the
	// nodes do not drop each other, they find the messages lost.
	b := &testBus{t: t, hb: time.Second}
	t.Cleanup(b.close)
	n1 := b.start("n1")
	proxy := newRouteProxy(t, n1.c.RouteURL()[len("nats://"):])
	n2 := b.startRouted("n2", []string{proxy.url()})
	b.settle()

	var mu sync.Mutex
	runs := map[string]int{}
	streaming := make(chan struct{}, 1)
	responder := dial(t, n2, "cut")
	serve(t, responder, func(req *socketbus.Request) {
		head := make([]byte, 8)
		if _, err := io.ReadFull(req.Body, head); err != nil {
			return
		}
		mu.Lock()
		runs[string(head)]++
		mu.Unlock()
		if string(head[:5]) == "large" {
			select {
			case streaming <- struct{}{}:
			default:
			}
		}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			return
		}
		_ = req.Respond(strings.NewReader(string(head)))
	})
	requester := dial(t, n1, "cut")

	const small = 200
	outcomes := make(chan error, small+2)
	var wg sync.WaitGroup
	for round := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			body := io.MultiReader(strings.NewReader(fmt.Sprintf("large%03d", round)), &pattern{n: 256 << 20})
			outcomes <- requester.Send(ctx, body, io.Discard)
		}()
		<-streaming
		for i := range small / 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := fmt.Sprintf("s%d%06d", round, i)
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				got, err := requester.Call(ctx, []byte(id))
				if err == nil && string(got) != id {
					err = fmt.Errorf("request %s got the answer %q", id, got)
				}
				outcomes <- err
			}()
		}
		proxy.cut()
		wg.Wait()
		b.settle()
	}
	close(outcomes)
	counts := map[string]int{}
	for err := range outcomes {
		switch {
		case err == nil:
			counts["ok"]++
		case errors.Is(err, socketbus.ErrPeerGone):
			counts["peer_gone"]++
		case errors.Is(err, socketbus.ErrNoPeers):
			counts["no_peers"]++
		default:
			t.Errorf("a request ended with %v", err)
		}
	}
	t.Logf("outcomes across two route cuts: %v", counts)
	for id, n := range runs {
		if n > 1 {
			t.Fatalf("request %s ran %d times", id, n)
		}
	}
	// The link's reset kept n2's client a peer on n1: the request waits
	// for n2's state, sent again after the reset, and crosses.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if got, err := requester.Call(ctx, []byte("after000")); err != nil || string(got) != "after000" {
		t.Fatalf("after the route came back: %q, %v", got, err)
	}
}

// TestCrossNodeShutdown: a node shuts down while its responder holds a
// request from another node. That request completes; requests sent once
// the drain has begun go to the third node's responder, none is lost or
// refused, and Shutdown returns once the held request is done.
func TestCrossNodeShutdown(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	holding, release := make(chan struct{}), make(chan struct{})
	draining := make(chan struct{}, 1)
	n2 := dial(t, b.node(1), "drain", socketbus.WithConnectionHook(func(e socketbus.ConnectionEvent) {
		if e.State == socketbus.ConnectionDraining {
			draining <- struct{}{}
		}
	}))
	serve(t, n2, func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		if string(body) == "hold" {
			close(holding)
			<-release
		}
		_ = req.Respond(strings.NewReader("n2:" + string(body)))
	})
	serve(t, dial(t, b.node(2), "drain"), func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		_ = req.Respond(strings.NewReader("n3:" + string(body)))
	})
	requester := dial(t, b.node(0), "drain")
	held := make(chan error, 1)
	go func() {
		// n1 has no responder: the request goes to n2 or n3; send until
		// one lands on n2's handler.
		for {
			got, err := requester.Call(context.Background(), []byte("hold"))
			if err != nil || string(got) == "n2:hold" {
				held <- err
				return
			}
		}
	}()
	<-holding
	shut := make(chan error, 1)
	go func() { shut <- b.node(1).srv.Shutdown(context.Background()) }()
	<-draining
	for i := range 50 {
		got, err := requester.Call(context.Background(), []byte(fmt.Sprint(i)))
		if err != nil || string(got) != fmt.Sprintf("n3:%d", i) {
			t.Fatalf("request %d during the drain: %q, %v; want n3's answer", i, got, err)
		}
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatalf("the request held on the draining node: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
