package cluster_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// testNode is one node of a test bus: its cluster node and a socketbus
// server on loopback.
type testNode struct {
	name string
	c    *cluster.Cluster
	srv  *server.Server
	addr string
	done chan struct{}
}

// testBus is a bus of nodes in this process, each with its embedded
// nats-server, all routed to the first's.
type testBus struct {
	t      *testing.T
	mu     sync.Mutex
	nodes  []*testNode
	routes []string
	cfg    server.Config
	hb     time.Duration // the nodes' heartbeat; 0 means heartbeat
	dead   time.Duration // silence after which a node is dropped; 0 means testDeadAfter
	direct string        // the nodes' DirectListen; "" for none
	// knobs, when set, gives a node's direct connections' test settings.
	knobs func(name string) cluster.DirectKnobs
	// tls, when set, gives a node's RouteTLS.
	tls func(name string) *tls.Config
	// logged, when set, is given every line a node's cluster logs.
	logged func(node, line string)
}

// The route credentials of a test bus with direct connections.
const testRouteUser, testRoutePassword = "bus", "route-s3cret"

func newTestBus(t *testing.T, n int, cfg server.Config) *testBus {
	t.Helper()
	return startTestBus(&testBus{t: t, cfg: cfg}, n)
}

// startTestBus starts n nodes on b, as it is configured, and waits until
// they see each other.
func startTestBus(b *testBus, n int) *testBus {
	t := b.t
	t.Helper()
	for i := range n {
		b.start("n" + string(rune('1'+i)))
	}
	b.settle()
	t.Cleanup(b.close)
	return b
}

// start starts a node (a new one, or one that was stopped, on a new port).
func (b *testBus) start(name string) *testNode {
	b.t.Helper()
	return b.startRouted(name, b.routes)
}

// startRouted starts a node whose embedded NATS routes to routes.
func (b *testBus) startRouted(name string, routes []string) *testNode {
	b.t.Helper()
	hb := b.hb
	if hb == 0 {
		hb = heartbeat
	}
	dead := b.dead
	if dead == 0 {
		dead = testDeadAfter
	}
	cfg := cluster.WithDeadAfter(cluster.Config{Name: "bus", Node: name, Listen: "127.0.0.1:0", Routes: routes,
		DirectListen: b.direct, Heartbeat: hb, Logger: slog.New(slog.NewTextHandler(testWriter{t: b.t, tap: b.tap(name)}, nil))}, dead)
	if b.direct != "" {
		// The direct connections' hello is keyed with the route
		// credentials, which the routes then need too.
		cfg.RouteUser, cfg.RoutePassword = testRouteUser, testRoutePassword
	}
	if b.tls != nil {
		cfg.RouteTLS = b.tls(name)
	}
	if b.knobs != nil {
		cfg = cluster.WithDirectKnobs(cfg, b.knobs(name))
	}
	c, err := cluster.New(cfg)
	if err != nil {
		b.t.Fatalf("cluster.New(%s): %v", name, err)
	}
	if len(b.routes) == 0 {
		url := c.RouteURL()
		if cfg.RoutePassword != "" {
			url = strings.Replace(url, "nats://", "nats://"+testRouteUser+":"+testRoutePassword+"@", 1)
		}
		b.routes = []string{url}
	}
	return b.serveNode(c)
}

// serveNode starts a socketbus server on loopback for node c.
func (b *testBus) serveNode(c *cluster.Cluster) *testNode {
	b.t.Helper()
	name := c.Node()
	cfg := b.cfg
	cfg.Cluster = c
	if cfg.Logger == nil {
		// The server's warnings (a connection it cut, and why) explain a
		// failure the cluster's logs do not.
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t: b.t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	srv := server.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Fatal(err)
	}
	n := &testNode{name: name, c: c, srv: srv, addr: ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		_ = srv.Serve(ln)
	}()
	b.mu.Lock()
	b.nodes = append(b.nodes, n)
	b.mu.Unlock()
	return n
}

// settle waits until every live node sees all the others.
func (b *testBus) settle() {
	b.t.Helper()
	b.mu.Lock()
	nodes := append([]*testNode(nil), b.nodes...)
	b.mu.Unlock()
	for _, n := range nodes {
		waitNodes(b.t, n.c, len(nodes))
	}
}

func (b *testBus) node(i int) *testNode {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.nodes[i]
}

// kill closes node i at once (its server, then its NATS) and forgets it.
func (b *testBus) kill(i int) {
	b.mu.Lock()
	n := b.nodes[i]
	b.nodes = append(b.nodes[:i:i], b.nodes[i+1:]...)
	b.mu.Unlock()
	n.srv.Close()
	<-n.done
}

func (b *testBus) close() {
	b.mu.Lock()
	nodes := b.nodes
	b.nodes = nil
	b.mu.Unlock()
	for _, n := range nodes {
		n.srv.Close()
		<-n.done
	}
}

// testWriter sends a node's log lines to the test's log, and to tap if
// set.
type testWriter struct {
	t   *testing.T
	tap func(line string)
}

func (w testWriter) Write(p []byte) (int, error) {
	line := strings.TrimSpace(string(p))
	w.t.Log(line)
	if w.tap != nil {
		w.tap(line)
	}
	return len(p), nil
}

// tap returns what node's log lines go to besides the test's log.
func (b *testBus) tap(node string) func(line string) {
	if b.logged == nil {
		return nil
	}
	return func(line string) { b.logged(node, line) }
}

// dial connects a client to node n; it does not reconnect unless opts say.
func dial(t *testing.T, n *testNode, channel string, opts ...socketbus.DialOption) *socketbus.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]socketbus.DialOption{socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1})}, opts...)
	c, err := socketbus.Dial(ctx, n.addr, socketbus.ChannelFromName(channel), opts...)
	if err != nil {
		t.Fatalf("Dial %s: %v", n.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// serve runs h on c until the test ends.
func serve(t *testing.T, c *socketbus.Client, h socketbus.HandlerFunc, opts ...socketbus.ServeOption) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Serve(ctx, h, opts...)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// logState logs what every node's server holds: its memory and requests,
// and each connection's streams, traffic and queue. A test logs it before
// failing on a request that stalled.
func (b *testBus) logState() {
	b.mu.Lock()
	nodes := append([]*testNode(nil), b.nodes...)
	b.mu.Unlock()
	for _, n := range nodes {
		st := n.srv.Stats()
		b.t.Logf("%s: memory %d of %d bytes (peak %d, cuts %d), %d requests in flight",
			n.name, st.MemoryBytes, st.MemoryLimit, st.MemoryPeakBytes, st.MemoryCuts, st.InFlight)
		for _, c := range n.srv.Conns() {
			b.t.Logf("%s:   conn %s: sending %d receiving %d polls %d, in %d B / out %d B, queued %d B, memory %d B, idle %v",
				n.name, c.RemoteAddr, c.Sending, c.Receiving, c.Polls, c.BytesIn, c.BytesOut, c.QueuedBytes, c.MemoryBytes, c.Idle)
		}
	}
}
