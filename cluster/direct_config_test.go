package cluster_test

import (
	"context"
	"errors"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/socketbus/socketbus/cluster"
)

// TestDirectNeedsCredentials: a node with DirectListen and no
// RoutePassword, embedded or external, is refused with
// ErrDirectNeedsCredentials before it starts anything: its hello would be
// keyed with an empty secret, which anyone reaching the port could pass.
func TestDirectNeedsCredentials(t *testing.T) {
	for _, cfg := range []cluster.Config{
		{Name: "bus", Node: "n1", Listen: "127.0.0.1:0", DirectListen: "127.0.0.1:0"},
		{Name: "bus", Node: "n1", Listen: "127.0.0.1:0", DirectListen: "127.0.0.1:0", RouteUser: "bus"},
		{Name: "bus", Node: "n1", NATSURL: "nats://127.0.0.1:1", DirectListen: "127.0.0.1:0"},
	} {
		c, err := cluster.New(cfg)
		if err == nil {
			c.Close()
		}
		if !errors.Is(err, cluster.ErrDirectNeedsCredentials) {
			t.Fatalf("New(%+v): %v, want ErrDirectNeedsCredentials", cfg, err)
		}
	}
}

// TestDirectExternalMode: in external mode (NATSURL), RouteUser and
// RoutePassword key the direct connections' hello: two nodes on one
// nats-server connect directly, and a request crosses on the connection.
func TestDirectExternalMode(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	b := &testBus{t: t}
	t.Cleanup(b.close)
	var nodes []*testNode
	for _, name := range []string{"n1", "n2"} {
		nodes = append(nodes, b.serveNode(newNode(t, cluster.Config{Name: "ext", Node: name, NATSURL: ns.ClientURL(),
			DirectListen: "127.0.0.1:0", RouteUser: testRouteUser, RoutePassword: testRoutePassword, Heartbeat: heartbeat})))
	}
	n1, n2 := nodes[0], nodes[1]
	waitNodes(t, n1.c, 2)
	waitNodes(t, n2.c, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waitAllDirect(ctx, t, n1, n2)
	serve(t, dial(t, n2, "ext"), echo)
	direct1, _ := n1.c.DirectFrames()
	got, err := dial(t, n1, "ext").Call(ctx, []byte("external"))
	if err != nil || string(got) != "echo:external" {
		t.Fatalf("a request across direct nodes in external mode: %q, %v", got, err)
	}
	if d1, _ := n1.c.DirectFrames(); d1 == direct1 {
		t.Fatal("the response did not come on the direct connection")
	}
}
