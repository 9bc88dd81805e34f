package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// fixedNode is a chaos node's name and the addresses it keeps across
// restarts: its socketbus port and its NATS route port.
type fixedNode struct {
	name, addr, route string
	live              *testNode
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startFixed starts (or restarts) a node on its fixed addresses, routed to
// every node's route port.
func startFixed(t *testing.T, f *fixedNode, routes []string) {
	t.Helper()
	c, err := cluster.New(cluster.Config{Name: "chaos", Node: f.name, Listen: f.route, Routes: routes, Heartbeat: heartbeat})
	if err != nil {
		t.Fatalf("cluster.New(%s): %v", f.name, err)
	}
	srv := server.New(server.Config{Cluster: c})
	var ln net.Listener
	for range 100 { // the old listener's port may linger a moment
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // a retry delay, not a wait for an event
	}
	if err != nil {
		t.Fatalf("listen %s: %v", f.addr, err)
	}
	n := &testNode{name: f.name, c: c, srv: srv, addr: f.addr, done: make(chan struct{})}
	go func() {
		defer close(n.done)
		_ = srv.Serve(ln)
	}()
	f.live = n
}

func stopFixed(f *fixedNode, crash bool) {
	if crash {
		f.live.c.Crash()
	}
	f.live.srv.Close()
	<-f.live.done
	f.live = nil
}

// TestCrossNodeChaos: 10,000 requests from requesters on three nodes to
// responders on three nodes, while nodes are killed (closed, or their NATS
// stopped dead) and restarted one at a time; every client reconnects to
// the next node in its list. Every request ends exactly once: with its own
// response, or an error. No request runs twice: a client sends again only
// what no receiver can have seen. And at the end every node drains: none
// holds a request that does not end.
func TestCrossNodeChaos(t *testing.T) {
	const total = 10_000
	nodes := make([]*fixedNode, 3)
	var routes, addrs []string
	for i := range nodes {
		nodes[i] = &fixedNode{name: fmt.Sprintf("c%d", i+1), addr: freeAddr(t), route: freeAddr(t)}
		routes = append(routes, "nats://"+nodes[i].route)
		addrs = append(addrs, nodes[i].addr)
	}
	for _, f := range nodes {
		startFixed(t, f, routes)
	}
	defer func() {
		for _, f := range nodes {
			if f.live != nil {
				stopFixed(f, false)
			}
		}
	}()
	for _, f := range nodes {
		waitNodes(t, f.live.c, 3)
	}

	var mu sync.Mutex
	runs := map[string]int{}
	policy := socketbus.WithReconnect(socketbus.ReconnectPolicy{MinDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond})
	dialList := func(i int) *socketbus.Client {
		others := append(append([]string{}, addrs[i+1:]...), addrs[:i]...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := socketbus.Dial(ctx, addrs[i], socketbus.ChannelFromName("chaos"), policy, socketbus.WithServers(others...))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		return c
	}
	var clients []*socketbus.Client
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	serveCtx, stopServing := context.WithCancel(context.Background())
	var serving sync.WaitGroup
	for i := range nodes {
		c := dialList(i)
		clients = append(clients, c)
		serving.Add(1)
		go func() {
			defer serving.Done()
			_ = c.Serve(serveCtx, socketbus.HandlerFunc(func(req *socketbus.Request) {
				body := make([]byte, 64)
				n, _ := req.Body.Read(body)
				mu.Lock()
				runs[string(body[:n])]++
				mu.Unlock()
				_ = req.Respond(bytesReader(body[:n]))
			}))
		}()
	}

	var epoch atomic.Int64 // kills so far
	var issued, completed atomic.Int64
	progress := make(chan struct{}, 1)
	type outcome struct {
		id      string
		err     error
		exposed bool
	}
	outcomes := make(chan outcome, total)
	var wg sync.WaitGroup
	for i := range 6 {
		c := dialList(i % 3)
		clients = append(clients, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := issued.Add(1)
				if k > total {
					return
				}
				id := fmt.Sprintf("r%d-%d", i, k)
				before := epoch.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				got, err := c.Call(ctx, []byte(id))
				cancel()
				if err == nil && string(got) != id {
					err = fmt.Errorf("request %s was answered %q", id, got)
				}
				outcomes <- outcome{id: id, err: err, exposed: epoch.Load() != before}
				completed.Add(1)
				select {
				case progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	// The killer: every 1,500 completions, one node dies; 300 later it
	// comes back.
	killerDone := make(chan struct{})
	go func() {
		defer close(killerDone)
		for k := 0; ; k++ {
			if !waitCompleted(&completed, int64(1500*(k+1)), progress, total) {
				return
			}
			f := nodes[k%3]
			// A request is exposed if it was in flight at any moment of
			// the stop: the epoch moves before and after.
			epoch.Add(1)
			stopFixed(f, k%2 == 1)
			epoch.Add(1)
			if !waitCompleted(&completed, int64(1500*(k+1)+300), progress, total) {
				startFixed(t, f, routes)
				return
			}
			startFixed(t, f, routes)
			epoch.Add(1)
		}
	}()
	wg.Wait()
	close(progress)
	<-killerDone
	close(outcomes)

	counts := map[string]int{}
	n := 0
	for o := range outcomes {
		n++
		mu.Lock()
		ran := runs[o.id]
		mu.Unlock()
		switch {
		case o.err == nil:
			counts["ok"]++
		case errors.Is(o.err, socketbus.ErrPeerGone):
			counts["peer_gone"]++
		case errors.Is(o.err, socketbus.ErrDisconnected), errors.Is(o.err, socketbus.ErrNotDelivered):
			counts["disconnected"]++
		case errors.Is(o.err, socketbus.ErrNoPeers):
			counts["no_peers"]++
		case errors.Is(o.err, socketbus.ErrTimeout):
			counts["timeout"]++
		default:
			t.Errorf("request %s: %v", o.id, o.err)
		}
		if o.err == nil && ran == 0 {
			t.Errorf("request %s was answered but no handler ran it", o.id)
		}
		if ran > 1 {
			// The client sends again only what no receiver can have seen.
			t.Errorf("request %s ran %d times (a node died while it was in flight: %v)", o.id, ran, o.exposed)
		}
	}
	if n != total {
		t.Fatalf("%d requests ended, want %d", n, total)
	}
	t.Logf("chaos outcomes over %d kills: %v", epoch.Load()/3, counts)
	stopServing()
	serving.Wait()
	// No node holds a request that never ends: each drains. (A request a
	// dead node was part of ends within three heartbeats, well inside.)
	for _, f := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		err := f.live.srv.Shutdown(ctx)
		cancel()
		if err != nil {
			t.Errorf("node %s did not drain: %v, %d requests in flight", f.name, err, f.live.srv.Stats().InFlight)
		}
	}
}

// waitCompleted waits until completed reaches k, or every request has
// ended (then it reports false).
func waitCompleted(completed *atomic.Int64, k int64, progress <-chan struct{}, total int64) bool {
	for completed.Load() < k {
		if _, ok := <-progress; !ok || completed.Load() >= total {
			return completed.Load() >= k && completed.Load() < total
		}
	}
	return true
}
