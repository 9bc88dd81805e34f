package cluster_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/socketbus/socketbus/cluster"
)

// TestSubscribeDenyKeepsBodiesFromOtherUsers (issue 17, finding 12): on an
// external NATS, a user allowed only to subscribe, to everything, reads the
// body of a request that crosses nodes; the same user with a subscribe
// deny on socketbus.> — SECURITY.md's permissions — reads nothing of the
// bus, though it subscribes to ">".
func TestSubscribeDenyKeepsBodiesFromOtherUsers(t *testing.T) {
	opts := &natsserver.Options{Host: "127.0.0.1", Port: natsserver.RANDOM_PORT, NoLog: true, NoSigs: true,
		Users: []*natsserver.User{
			{Username: "bus-node", Password: "n"},
			{Username: "spy", Password: "s", Permissions: &natsserver.Permissions{
				Publish:   &natsserver.SubjectPermission{Deny: []string{">"}},
				Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}}}},
			{Username: "app", Password: "a", Permissions: &natsserver.Permissions{
				Publish:   &natsserver.SubjectPermission{Deny: []string{"socketbus.>"}},
				Subscribe: &natsserver.SubjectPermission{Allow: []string{">"}, Deny: []string{"socketbus.>"}}}},
		}}
	ns, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}

	// The listeners, each on ">".
	type tap struct {
		mu    sync.Mutex
		bus   int  // messages on socketbus.> seen
		body  bool // the secret body seen
		seen  chan struct{}
		tenth chan struct{} // closed at the tenth message on socketbus.>
	}
	const secret = "secret-body-4711"
	listen := func(user, password string) *tap {
		nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo(user, password))
		if err != nil {
			t.Fatalf("connect as %s: %v", user, err)
		}
		t.Cleanup(nc.Close)
		tp := &tap{seen: make(chan struct{}, 1), tenth: make(chan struct{})}
		if _, err := nc.Subscribe(">", func(m *nats.Msg) {
			tp.mu.Lock()
			defer tp.mu.Unlock()
			if strings.HasPrefix(m.Subject, "socketbus.") {
				tp.bus++
				if tp.bus == 10 {
					close(tp.tenth)
				}
			}
			if bytes.Contains(m.Data, []byte(secret)) && !tp.body {
				tp.body = true
				close(tp.seen)
			}
		}); err != nil {
			t.Fatalf("subscribe as %s: %v", user, err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		return tp
	}
	spy, app := listen("spy", "s"), listen("app", "a")

	b := &testBus{t: t}
	t.Cleanup(b.close)
	var nodes []*testNode
	for _, name := range []string{"n1", "n2"} {
		c := newNode(t, cluster.Config{Name: "perm", Node: name, NATSURL: ns.ClientURL(),
			NATSOptions: []nats.Option{nats.UserInfo("bus-node", "n")}})
		nodes = append(nodes, b.serveNode(c))
	}
	waitNodes(t, nodes[0].c, 2)
	waitNodes(t, nodes[1].c, 2)
	serve(t, dial(t, nodes[1], "perm"), echo)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := dial(t, nodes[0], "perm").Call(ctx, []byte(secret)); err != nil || string(got) != "echo:"+secret {
		t.Fatalf("a request across the nodes: %q, %v", got, err)
	}
	select {
	case <-spy.seen:
	case <-ctx.Done():
		t.Fatalf("the subscribe-only user did not see the body crossing the nodes: the test shows nothing")
	}
	// Both listeners see the same traffic from the same server; by the
	// time the spy has seen ten more messages of the bus (heartbeats,
	// every 200 ms), the app would have seen the body, were it delivered.
	select {
	case <-spy.tenth:
	case <-ctx.Done():
		spy.mu.Lock()
		defer spy.mu.Unlock()
		t.Fatalf("the spy saw %d messages of the bus, want 10", spy.bus)
	}
	app.mu.Lock()
	defer app.mu.Unlock()
	if app.bus != 0 || app.body {
		t.Fatalf("the user denied socketbus.> saw %d messages of the bus (body: %v), want none", app.bus, app.body)
	}
	t.Logf("a subscribe-only user allowed '>' read the body; with the deny it saw 0 messages of the bus")
}
