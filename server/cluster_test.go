package server_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// fakeCluster is a server.Cluster that records what its Server asks of it.
type fakeCluster struct {
	attachErr error // what Attach returns
	admitErr  error // what Admit returns

	mu      sync.Mutex
	attach  []*server.Attachment
	admit   [][2]uuid.UUID // client ID, channel
	closed  int
	members map[string]int
}

func (f *fakeCluster) Attach(a *server.Attachment) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attach = append(f.attach, a)
	return f.attachErr
}

func (f *fakeCluster) Admit(j *server.Join) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admit = append(f.admit, [2]uuid.UUID{j.ClientID(), j.Channel()})
	return f.admitErr
}

func (f *fakeCluster) Nodes() int          { return 3 }
func (f *fakeCluster) NodeNames() []string { return []string{"a", "b", "c"} }
func (f *fakeCluster) ChannelMembers(uuid.UUID) map[string]int {
	return f.members
}

func (f *fakeCluster) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed++
	return nil
}

// TestClusterAttachedAndAsked: New attaches the Cluster once; each join
// is admitted by it, with the client's ID and channel; Stats asks it the
// nodes and the channel's remote members; Close closes it, once.
func TestClusterAttachedAndAsked(t *testing.T) {
	f := &fakeCluster{members: map[string]int{"b": 2}}
	srv, addr := startServer(t, server.Config{Cluster: f})
	channel := socketbus.ChannelFromName(t.Name())
	id := uuid.New()
	dial(t, addr, channel, socketbus.WithClientID(id))

	f.mu.Lock()
	attached, admitted := len(f.attach), append([][2]uuid.UUID(nil), f.admit...)
	f.mu.Unlock()
	if attached != 1 {
		t.Fatalf("Attach calls: got %d, want 1", attached)
	}
	if want := [2]uuid.UUID{id, channel}; len(admitted) != 1 || admitted[0] != want {
		t.Fatalf("Admit calls: got %v, want [%v]", admitted, want)
	}
	st := srv.Stats()
	if st.Nodes != 3 || len(st.NodeNames) != 3 {
		t.Fatalf("Stats: Nodes %d, NodeNames %v; want 3, [a b c]", st.Nodes, st.NodeNames)
	}
	if cs := st.Channel(channel); cs.Remote["b"] != 2 {
		t.Fatalf("Stats of the channel: Remote %v, want b:2", cs.Remote)
	}
	srv.Close()
	srv.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed != 1 {
		t.Fatalf("Cluster.Close calls after two Server.Close: got %d, want 1", f.closed)
	}
}

// TestClusterAdmitRefusesJoin: a join the Cluster does not admit fails.
func TestClusterAdmitRefusesJoin(t *testing.T) {
	f := &fakeCluster{admitErr: errors.New("not on this bus")}
	_, addr := startServer(t, server.Config{Cluster: f})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := socketbus.Dial(ctx, addr, socketbus.ChannelFromName(t.Name()),
		socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1}))
	if err == nil {
		c.Close()
		t.Fatal("Dial with a join the Cluster refuses: nil error, want one")
	}
}

// TestClusterInUse: a Cluster that serves another Server does not attach;
// the Server that was given it logs it, says so from Serve,
// ServeWebSocket and ListenAndServe, at once, counts none of its nodes, and leaves it open
// when it closes.
func TestClusterInUse(t *testing.T) {
	f := &fakeCluster{attachErr: fmt.Errorf("fake: %w", server.ErrClusterInUse)}
	logs := testpeer.NewLogs(slog.LevelError)
	srv := server.New(server.Config{Cluster: f, Logger: slog.New(logs)})
	defer srv.Close()
	if got := logs.Find("cluster: cannot route across nodes", nil); len(got) != 1 {
		t.Fatalf("error lines about the Cluster: %v, want one", got)
	}
	serves := map[string]func(net.Listener) error{"Serve": srv.Serve, "ServeWebSocket": srv.ServeWebSocket}
	for name, serve := range serves {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := serve(ln); !errors.Is(err, server.ErrClusterInUse) {
			t.Fatalf("%s: %v, want an error matching ErrClusterInUse", name, err)
		}
		if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("Accept on the listener %s returned with: %v, want net.ErrClosed", name, err)
		}
	}
	if err := srv.ListenAndServe("127.0.0.1:0"); !errors.Is(err, server.ErrClusterInUse) {
		t.Fatalf("ListenAndServe: %v, want an error matching ErrClusterInUse", err)
	}
	if got := srv.Stats().Nodes; got != 1 {
		t.Fatalf("Stats.Nodes: got %d, want 1 (the Cluster is another Server's)", got)
	}
	srv.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed != 0 {
		t.Fatalf("Cluster.Close calls: got %d, want 0 (the Cluster is another Server's)", f.closed)
	}
}
