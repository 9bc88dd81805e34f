package cluster_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestCrossNodeGather: a gather on a bus of three nodes reaches every
// member on every node once, each reply names its member's true client
// ID, and a publish counts the members of every node.
func TestCrossNodeGather(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	const ch = "gather-bus"
	var mu sync.Mutex
	runs := map[string]int{}
	want := map[socketbus.ID]bool{}
	for i := 0; i < 3; i++ {
		for j := 0; j < 2; j++ {
			m := dial(t, b.node(i), ch)
			want[m.ID()] = true
			serve(t, m, func(r *socketbus.Request) {
				mu.Lock()
				runs[m.ID().String()+"/"+r.ID.String()]++
				mu.Unlock()
				body, _ := io.ReadAll(r.Body)
				if r.Published() {
					return
				}
				if strings.HasPrefix(string(body), "fail") {
					r.Fail(&socketbus.RemoteError{Code: "nope", Message: "no"})
					return
				}
				r.Respond(strings.NewReader(m.ID().String()))
			})
		}
	}
	sender := dial(t, b.node(0), ch)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A body larger than the initial credit streams across the links.
	big := strings.Repeat("x", 200<<10)
	for round, body := range []string{"ping", big, "fail"} {
		replies, err := sender.Gather(ctx, []byte(body))
		if err != nil {
			t.Fatalf("round %d: Gather: %v", round, err)
		}
		if len(replies) != len(want) {
			t.Fatalf("round %d: %d replies, want %d: %+v", round, len(replies), len(want), replies)
		}
		seen := map[socketbus.ID]bool{}
		for _, r := range replies {
			if !want[r.From] || seen[r.From] {
				t.Fatalf("round %d: a reply from %s: not a member, or twice", round, r.From)
			}
			seen[r.From] = true
			var re *socketbus.RemoteError
			switch {
			case body == "fail" && (!errors.As(r.Err, &re) || re.Code != "nope"):
				t.Fatalf("round %d: reply from %s: %v, want its Fail", round, r.From, r.Err)
			case body != "fail" && (r.Err != nil || string(r.Body) != r.From.String()):
				t.Fatalf("round %d: reply from %s: %q, %v", round, r.From, r.Body, r.Err)
			}
		}
	}
	n, err := sender.Publish(ctx, []byte("news"))
	if err != nil || n != len(want) {
		t.Fatalf("Publish across the bus: %d, %v; want %d", n, err, len(want))
	}
	mu.Lock()
	defer mu.Unlock()
	total := 0
	for k, c := range runs {
		if c != 1 {
			t.Errorf("%s ran %d times", k, c)
		}
		total += c
	}
	if total != 4*len(want) {
		t.Errorf("%d handler runs, want %d", total, 4*len(want))
	}
}

// TestCrossNodeGatherNodeDies: the members of a node that dies mid-gather
// get ErrPeerGone within the bound the bus keeps, and the gather ends.
func TestCrossNodeGatherNodeDies(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	const ch = "gather-death"
	local := dial(t, b.node(0), ch)
	serve(t, local, func(r *socketbus.Request) { r.Respond(strings.NewReader("ok")) })
	far := dial(t, b.node(1), ch, socketbus.WithReconnect(socketbus.ReconnectPolicy{MaxAttempts: -1}))
	holding := make(chan struct{})
	var once sync.Once
	serve(t, far, func(r *socketbus.Request) {
		once.Do(func() { close(holding) })
		<-r.Context().Done()
	})
	sender := dial(t, b.node(0), ch)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		replies []socketbus.Reply
		err     error
	}
	res := make(chan result, 1)
	go func() {
		replies, err := sender.Gather(ctx, []byte("x"))
		res <- result{replies, err}
	}()
	<-holding
	start := time.Now()
	b.kill(1)
	r := <-res
	if r.err != nil || len(r.replies) != 2 {
		t.Fatalf("Gather: %+v, %v; want two replies", r.replies, r.err)
	}
	for _, rep := range r.replies {
		switch rep.From {
		case local.ID():
			if rep.Err != nil || string(rep.Body) != "ok" {
				t.Errorf("the local member: %q, %v", rep.Body, rep.Err)
			}
		case far.ID():
			if !errors.Is(rep.Err, socketbus.ErrPeerGone) {
				t.Errorf("the member on the dead node: %v, want ErrPeerGone", rep.Err)
			}
		default:
			t.Errorf("a reply from %s, not a member", rep.From)
		}
	}
	t.Logf("the gather ended %v after the node died", time.Since(start))
}

// TestCrossNodeGatherNodeCrashes: a node that dies silently mid-gather (no
// bye: its NATS goes, its heartbeats stop) ends its members' parts with
// ErrPeerGone within the bound the bus keeps for any request.
func TestCrossNodeGatherNodeCrashes(t *testing.T) {
	const dead = time.Second
	b := startTestBus(&testBus{t: t, dead: dead}, 2)
	const ch = "gather-crash"
	local := dial(t, b.node(0), ch)
	serve(t, local, func(r *socketbus.Request) { r.Respond(strings.NewReader("ok")) })
	far := dial(t, b.node(1), ch)
	holding := make(chan struct{})
	var once sync.Once
	serve(t, far, func(r *socketbus.Request) {
		once.Do(func() { close(holding) })
		<-r.Context().Done()
	})
	sender := dial(t, b.node(0), ch)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res := make(chan []socketbus.Reply, 1)
	go func() {
		replies, err := sender.Gather(ctx, []byte("x"))
		if err != nil {
			t.Errorf("Gather: %v", err)
		}
		res <- replies
	}()
	<-holding
	begun := time.Now()
	b.node(1).c.Crash()
	replies := <-res
	took := time.Since(begun)
	var gone bool
	for _, r := range replies {
		if r.From == far.ID() {
			gone = errors.Is(r.Err, socketbus.ErrPeerGone)
		}
	}
	if len(replies) != 2 || !gone {
		t.Fatalf("replies %+v; want two, the far member's ErrPeerGone", replies)
	}
	t.Logf("the gather ended %v after the node crashed (heartbeat %v, dropped after %v)", took, heartbeat, dead)
	if bound := dead + 2*heartbeat; took > bound+time.Second {
		t.Fatalf("the gather ended %v after the crash, bound %v", took, bound)
	}
}
