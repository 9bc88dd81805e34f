package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
)

func echo(req *socketbus.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	_ = req.Respond(bytes.NewReader(append([]byte("echo:"), body...)))
}

// TestCrossNodeVisibility: once Dial returns on one node, a request sent
// on another at once (no retry) finds the client as its peer and reaches
// it, on every pair of nodes.
func TestCrossNodeVisibility(t *testing.T) {
	b := newTestBus(t, 3, socketbus.ServerConfig{})
	for i := range 3 {
		for j := range 3 {
			if i == j {
				continue
			}
			ch := "vis-" + b.node(i).name + "-" + b.node(j).name
			responder := dial(t, b.node(j), ch)
			serve(t, responder, echo)
			requester := dial(t, b.node(i), ch)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			got, err := requester.Call(ctx, []byte("hi"))
			cancel()
			if err != nil || string(got) != "echo:hi" {
				t.Fatalf("%s -> %s: Call = %q, %v", b.node(i).name, b.node(j).name, got, err)
			}
		}
	}
}

// TestCrossNodeNoPeers: ErrNoPeers when no node has another member, and
// not once another node has one.
func TestCrossNodeNoPeers(t *testing.T) {
	b := newTestBus(t, 3, socketbus.ServerConfig{})
	requester := dial(t, b.node(0), "nopeers")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := requester.Call(ctx, []byte("x")); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Call with no member anywhere: %v, want ErrNoPeers", err)
	}
	responder := dial(t, b.node(2), "nopeers")
	serve(t, responder, echo)
	if got, err := requester.Call(ctx, []byte("x")); err != nil || string(got) != "echo:x" {
		t.Fatalf("Call with a member on n3: %q, %v", got, err)
	}
}
