package cluster_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// heartbeat is the test nodes' heartbeat: short, so that a lost message
// shows quickly (a gap at the next heartbeat).
const heartbeat = 200 * time.Millisecond

// testDeadAfter is how long a test node goes unheard before the others drop
// it, unless a test says otherwise: a margin no scheduler pause of a loaded
// machine under the race detector reaches (three heartbeats of 200 ms did:
// nodes dropped each other in CI, issue 17 finding 18). Tests of a silent
// death set their own.
const testDeadAfter = 10 * time.Second

func newNode(t *testing.T, cfg cluster.Config) *cluster.Cluster {
	t.Helper()
	return newNodeDeadAfter(t, cfg, testDeadAfter)
}

// newNodeDeadAfter is newNode for a node that drops another after dead of
// silence.
func newNodeDeadAfter(t *testing.T, cfg cluster.Config, dead time.Duration) *cluster.Cluster {
	t.Helper()
	cfg = cluster.WithDeadAfter(cfg, dead)
	cfg.Heartbeat = heartbeat
	c, err := cluster.New(cfg)
	if err != nil {
		t.Fatalf("cluster.New(%s): %v", cfg.Node, err)
	}
	return c
}

func waitNodes(t *testing.T, c *cluster.Cluster, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.WaitNodes(ctx, n); err != nil {
		t.Fatalf("node %s: %v", c.Node(), err)
	}
}

// TestEmbeddedNodesFormOneBus: three nodes, each with its embedded
// nats-server routed to the first's, see each other; a socketbus Server
// given a node reports them in Stats.Nodes; a node that leaves is no
// longer counted, within three heartbeats.
func TestEmbeddedNodesFormOneBus(t *testing.T) {
	// Nodes without a Server say no bye (they have no links): the others
	// find them gone by their silence, 1 s here (five heartbeats).
	const dead = time.Second
	n1 := newNodeDeadAfter(t, cluster.Config{Name: "bus", Node: "n1", Listen: "127.0.0.1:0"}, dead)
	routes := []string{n1.RouteURL()}
	n2 := newNodeDeadAfter(t, cluster.Config{Name: "bus", Node: "n2", Listen: "127.0.0.1:0", Routes: routes}, dead)
	n3 := newNodeDeadAfter(t, cluster.Config{Name: "bus", Node: "n3", Listen: "127.0.0.1:0", Routes: routes}, dead)
	other := newNodeDeadAfter(t, cluster.Config{Name: "another-bus", Node: "x", Listen: "127.0.0.1:0", Routes: routes}, dead)
	defer other.Close()
	for _, n := range []*cluster.Cluster{n1, n2, n3} {
		waitNodes(t, n, 3)
	}
	if got := other.Nodes(); got != 1 {
		t.Fatalf("a node of another bus on the same NATS routes sees %d nodes, want 1", got)
	}
	srv := server.New(server.Config{Cluster: n1})
	if got := srv.Stats().Nodes; got != 3 {
		t.Fatalf("Stats.Nodes on a node of three: got %d, want 3", got)
	}
	n3.Close()
	waitNodes(t, n1, 2)
	waitNodes(t, n2, 2)
	srv.Close() // closes n1, its node
	waitNodes(t, n2, 1)
	n2.Close()
	if got := server.New(server.Config{}).Stats().Nodes; got != 1 {
		t.Fatalf("Stats.Nodes of a server with no cluster: got %d, want 1", got)
	}
}

// TestExternalNATSCluster: three nats-servers clustered on their own (no
// socketbus embedding), and three socketbus nodes each connected to a
// different one with NATSURL, form one bus.
func TestExternalNATSCluster(t *testing.T) {
	var servers []*natsserver.Server
	var routes string
	for i := range 3 {
		opts := &natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
			Cluster: natsserver.ClusterOpts{Name: "nats", Host: "127.0.0.1", Port: natsserver.RANDOM_PORT}}
		if i > 0 {
			opts.Routes = natsserver.RoutesFromStr(routes)
		}
		ns, err := natsserver.NewServer(opts)
		if err != nil {
			t.Fatalf("nats-server %d: %v", i, err)
		}
		ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			t.Fatalf("nats-server %d not ready", i)
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		if i == 0 {
			routes = "nats://" + ns.ClusterAddr().String()
		}
		servers = append(servers, ns)
	}
	var nodes []*cluster.Cluster
	for i, ns := range servers {
		n := newNode(t, cluster.Config{Name: "bus", Node: "n" + string(rune('1'+i)), NATSURL: ns.ClientURL()})
		defer n.Close()
		if n.RouteURL() != "" {
			t.Fatalf("RouteURL in external mode: got %q, want none", n.RouteURL())
		}
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		waitNodes(t, n, 3)
	}
	// A request crosses from the first node to the third.
	b := &testBus{t: t}
	t.Cleanup(b.close)
	var live []*testNode
	for _, n := range nodes {
		live = append(live, b.serveNode(n))
	}
	responder := dial(t, live[2], "external")
	serve(t, responder, echo)
	requester := dial(t, live[0], "external")
	got, err := requester.Call(context.Background(), []byte("over NATS"))
	if err != nil || string(got) != "echo:over NATS" {
		t.Fatalf("a request across an external NATS cluster: %q, %v", got, err)
	}
}

// TestClientDoesNotLinkNATS: the root package, all a program that only uses
// the Client imports, does not depend on NATS.
func TestClientDoesNotLinkNATS(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/socketbus/socketbus").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.Contains(dep, "nats-io") || strings.HasSuffix(dep, "socketbus/cluster") {
			t.Fatalf("the root package depends on %s", dep)
		}
	}
}
