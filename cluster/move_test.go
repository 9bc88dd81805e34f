package cluster_test

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestMoveAcrossNodes: a client listing two nodes of a bus moves from the
// first to the second on the first's drain notice, while a request it
// sent is held on the first. For a while it is a member of the channel
// on both nodes, with one client ID and one key: each node checks IDs
// and keys among its own members only (another node's members stand
// under derived IDs), and a draining node refuses joins, so the two
// never meet. 50 new calls go through the second node, the held one
// ends on the first, and nothing runs twice.
func TestMoveAcrossNodes(t *testing.T) {
	t.Run("random ID", func(t *testing.T) { testMoveAcrossNodes(t) })
	// A chosen ID registers no key, so nothing proves the join on n2 is
	// the draining member's own client: n1 frees the ID because it is
	// draining.
	t.Run("chosen ID", func(t *testing.T) { testMoveAcrossNodes(t, socketbus.WithClientID(uuid.New())) })
}

func testMoveAcrossNodes(t *testing.T, opts ...socketbus.DialOption) {
	b := newTestBus(t, 2, server.Config{})
	n1, n2 := b.node(0), b.node(1)
	policy := socketbus.WithReconnect(socketbus.ReconnectPolicy{MinDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond})
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	holding := make(chan struct{})
	var mu sync.Mutex
	runs := map[string]int{}
	serve(t, dial(t, n1, "move", policy, socketbus.WithServers(n2.addr)), func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		runs[string(body)]++
		mu.Unlock()
		if string(body) == "hold" {
			close(holding)
			<-release
		}
		_ = req.Respond(nil)
	})
	t.Cleanup(free) // before serve's cleanup waits for the handler
	draining, moved := make(chan struct{}), make(chan struct{})
	requester := dial(t, n1, "move", append(opts, policy, socketbus.WithServers(n2.addr), socketbus.WithConnectionHook(func(e socketbus.ConnectionEvent) {
		switch e.State {
		case socketbus.ConnectionDraining:
			close(draining)
		case socketbus.ConnectionRestored:
			close(moved)
		}
	}))...)
	held := make(chan error, 1)
	go func() {
		_, err := requester.Call(context.Background(), []byte("hold"))
		held <- err
	}()
	<-holding
	shut := make(chan error, 1)
	go func() { shut <- n1.srv.Shutdown(context.Background()) }()
	<-draining
	select {
	case <-moved:
	case <-time.After(60 * time.Second):
		t.Fatalf("the requester did not move to n2 within 60 s")
	}
	for i := range 50 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, err := requester.Call(ctx, []byte(fmt.Sprint(i)))
		cancel()
		if err != nil {
			t.Fatalf("call %d during n1's drain: %v", i, err)
		}
	}
	select {
	case err := <-held:
		t.Fatalf("the held call ended (%v) before its handler was released", err)
	default:
	}
	free()
	if err := <-held; err != nil {
		t.Fatalf("the call held on the draining node: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("n1's Shutdown: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for body, n := range runs {
		if n != 1 {
			t.Fatalf("%q ran %d times, want 1", body, n)
		}
	}
	if len(runs) != 51 {
		t.Fatalf("%d bodies ran, want 51", len(runs))
	}
}
