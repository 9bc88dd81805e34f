package cluster_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"
)

// TestRequestIDCollisionStaysLocal (issue 17, finding 6): a client that
// starts, on one node, a request whose ID is live on another node's channel
// ends only that request — with code protocol — and never the link between
// the nodes: a request crossing them on another channel, held by its
// handler while the collisions happen, completes; 200 requests crossing
// meanwhile and 20 after all complete, each run once. Repeated 20 times,
// so that a reset would be seen whatever its timing.
func TestRequestIDCollisionStaysLocal(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	n1, n2 := b.node(0), b.node(1)

	// The bystanders: a requester on n1, its handler on n2, one request
	// held across the nodes while the attack runs.
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	held := make(chan struct{}, 1)
	var mu sync.Mutex
	runs := map[string]int{}
	serve(t, dial(t, n2, "victim"), func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		runs[string(body)]++
		mu.Unlock()
		if string(body) == "held" {
			held <- struct{}{}
			<-release
		}
		_ = req.Respond(nil)
	}, socketbus.WithConcurrency(4))
	t.Cleanup(free) // before serve's own cleanup, which waits for the handler
	requester := dial(t, n1, "victim")
	heldDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := requester.Call(ctx, []byte("held"))
		heldDone <- err
	}()
	<-held

	// The attacker's channel: on n2 a handler that keeps what it gets, so
	// the attacker's request stays live there, with one more handler idle
	// so that n1 offers n2 requests.
	kept := make(chan string, 16)
	stop := make(chan struct{})
	defer close(stop)
	serve(t, dial(t, n2, "evil"), func(req *socketbus.Request) {
		kept <- string(req.ID[:])
		<-stop
	}, socketbus.WithConcurrency(2))
	onN2 := dialRawClient(t, n2, "evil")
	onN1 := dialRawClient(t, n1, "evil")

	// Traffic across the nodes during the collisions, counted by body.
	const traffic = 200
	trafficErr := make(chan error, 1)
	go func() {
		for i := range traffic {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := requester.Call(ctx, []byte(fmt.Sprint("during ", i)))
			cancel()
			if err != nil {
				trafficErr <- fmt.Errorf("call %d across the nodes during the collisions: %w", i, err)
				return
			}
		}
		trafficErr <- nil
	}()

	const collisions = 20
	for i := range collisions {
		id := newRawID()
		onN2.send(id, "first")
		<-kept // live on n2, held by its handler
		onN1.send(id, "second, same ID")
		e := onN1.waitEnd(id)
		if e == nil || e.Code != wire.CodeProtocol {
			t.Fatalf("collision %d: the second request ended with %v, want code protocol", i, e)
		}
		// The first is still live on n2: only its handler ends it.
		if got := n2.srv.Stats().InFlight; got < 2 {
			t.Fatalf("collision %d: n2 has %d requests in flight, want the held one and the first", i, got)
		}
		// Free the handler for the next round: a third party fails nothing.
		stop <- struct{}{}
		onN2.waitEnd(id)
	}

	if err := <-trafficErr; err != nil {
		t.Fatal(err)
	}
	free()
	if err := <-heldDone; err != nil {
		t.Fatalf("the request held across the nodes during the collisions: %v, want success", err)
	}
	for i := range 20 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := requester.Call(ctx, []byte(fmt.Sprint(i)))
		cancel()
		if err != nil {
			t.Fatalf("call %d across the nodes after the collisions: %v", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, n := range runs {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d collisions; %d requests crossed the nodes meanwhile and after, %d ran more than once", collisions, len(runs), twice)
	if twice != 0 || len(runs) != traffic+1+20 {
		t.Fatalf("%d distinct requests ran, %d of them more than once; want %d, each once", len(runs), twice, traffic+21)
	}
}
