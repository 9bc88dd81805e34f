package socketbus_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// downAddr returns a loopback address where nothing listens: a port that
// was just free.
func downAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDialSkipsADownServer: Dial's list is used from the first Dial: with
// its addr down, it joins the next server of WithServers, and the client
// works there.
func TestDialSkipsADownServer(t *testing.T) {
	_, up := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("dial-list")
	down := downAddr(t)
	c := dial(t, down, ch, socketbus.WithServers(downAddr(t), up))
	peer := dial(t, up, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go serveN(ctx, peer, 1, upper)
	if got, err := roundTrip(ctx, c, []byte("listed")); err != nil || string(got) != "LISTED" {
		t.Fatalf("round trip through the second listed server: %q, %v; want LISTED", got, err)
	}
}

// TestDialAllServersDown: with every listed server down, Dial fails with
// an error that names each.
func TestDialAllServersDown(t *testing.T) {
	a, b := downAddr(t), downAddr(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := socketbus.Dial(ctx, a, socketbus.ChannelFromName("nobody"), socketbus.WithServers(b))
	if err == nil {
		t.Fatal("Dial with every server down succeeded")
	}
	var op *net.OpError
	if !errors.As(err, &op) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("Dial error: got %v, want a dial error naming %s and %s", err, a, b)
	}
}

// TestDialStopsAtARefusal: a server that refuses the token ends the
// search: the next server would refuse the same client.
func TestDialStopsAtARefusal(t *testing.T) {
	refusing := server.Config{Authenticate: func(_, _ socketbus.ID, token string) error {
		return errors.New("no")
	}}
	_, first := startServer(t, refusing)
	_, second := startServer(t, server.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := socketbus.Dial(ctx, first, socketbus.ChannelFromName("refused"), socketbus.WithServers(second))
	if !errors.Is(err, socketbus.ErrUnauthorized) {
		t.Fatalf("Dial: got %v, want ErrUnauthorized from the first server", err)
	}
}
