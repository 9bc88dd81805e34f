package cluster_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// TestClusterServesOneServer: a Cluster given to a second Server is an
// error that Server's Serve returns (server.ErrClusterInUse), not only a
// log line; closing that Server leaves the Cluster to the Server it serves,
// which goes on routing across the nodes.
func TestClusterServesOneServer(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	logs := testpeer.NewLogs(slog.LevelError)
	second := server.New(server.Config{Cluster: b.node(0).c, Logger: slog.New(logs)})
	if got := logs.Find("cluster: cannot route across nodes", nil); len(got) != 1 {
		t.Fatalf("error lines about the Cluster: %v, want one", got)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- second.Serve(ln) }()
	select {
	case err := <-served:
		if !errors.Is(err, server.ErrClusterInUse) {
			t.Fatalf("Serve of a second Server given the Cluster: %v, want an error matching server.ErrClusterInUse", err)
		}
	case <-time.After(10 * time.Second):
		second.Close()
		<-served
		t.Fatal("Serve of a second Server given the Cluster: still serving after 10 s, want server.ErrClusterInUse at once")
	}
	second.Close()

	// The Cluster still routes for the first Server.
	responder := dial(t, b.node(1), "attach")
	serve(t, responder, echo)
	requester := dial(t, b.node(0), "attach")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if got, err := requester.Call(ctx, []byte("hi")); err != nil || string(got) != "echo:hi" {
		t.Fatalf("n1 -> n2 after the second Server closed: Call = %q, %v; want \"echo:hi\", nil", got, err)
	}
	if got := b.node(0).srv.Stats().Nodes; got != 2 {
		t.Fatalf("Stats.Nodes of the first Server: got %d, want 2", got)
	}
}

// TestClosedClusterDoesNotAttach: a Server given a node that is closed
// already says so from Serve, and closes without waiting on it.
func TestClosedClusterDoesNotAttach(t *testing.T) {
	c := newNode(t, cluster.Config{Name: "bus", Node: "closed", Listen: "127.0.0.1:0"})
	c.Close()
	srv := server.New(server.Config{Cluster: c, Logger: slog.New(testpeer.NewLogs(slog.LevelError))})
	err := srv.ListenAndServe("127.0.0.1:0")
	if err == nil || errors.Is(err, server.ErrClusterInUse) || errors.Is(err, socketbus.ErrServerClosed) {
		t.Fatalf("ListenAndServe with a closed node: %v, want the node's error", err)
	}
	closed := make(chan struct{})
	go func() {
		srv.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Server.Close with a closed node: still closing after 10 s")
	}
}
