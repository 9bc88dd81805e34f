package cluster_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
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
	b := newTestBus(t, 3, server.Config{})
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
	b := newTestBus(t, 3, server.Config{})
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

// TestCrossNodeExactlyOnce: requesters on every node, responders on two;
// every request is answered, by exactly one handler, and its answer goes
// back to its own requester.
func TestCrossNodeExactlyOnce(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	const channel = "once"
	var mu sync.Mutex
	runs := map[string]int{}
	handler := func(req *socketbus.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		mu.Lock()
		runs[string(body)]++
		mu.Unlock()
		_ = req.Respond(bytes.NewReader(body))
	}
	for _, i := range []int{1, 2} {
		serve(t, dial(t, b.node(i), channel), handler, socketbus.WithConcurrency(4))
	}
	const perRequester = 300
	var wg sync.WaitGroup
	errs := make(chan error, 3*4)
	for i := range 3 {
		for k := range 4 {
			c := dial(t, b.node(i), channel)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perRequester {
					id := fmt.Sprintf("%d/%d/%d", i, k, j)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					got, err := c.Call(ctx, []byte(id))
					cancel()
					if err != nil || string(got) != id {
						errs <- fmt.Errorf("request %s: %q, %v", id, got, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(runs) != 3*4*perRequester {
		t.Fatalf("%d distinct requests ran, want %d", len(runs), 3*4*perRequester)
	}
	for id, n := range runs {
		if n != 1 {
			t.Fatalf("request %s ran %d times", id, n)
		}
	}
	// Requests from n1, which has no responder, all crossed.
	var crossed int64
	for _, ch := range b.node(0).srv.Stats().Channels {
		crossed += ch.Requests["completed"]
	}
	if crossed == 0 {
		t.Fatalf("n1 counted no completed request")
	}
}

// TestCrossNodeErrors: a timeout, a cancel and a Fail cross nodes with
// the codes they have on one server, and reach the other side.
func TestCrossNodeErrors(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	ended := make(chan error, 4)
	started := make(chan struct{}, 4)
	responder := dial(t, b.node(1), "errors")
	serve(t, responder, func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		switch string(body) {
		case "fail":
			_ = req.Fail(errors.New("no thanks"))
		case "hang":
			started <- struct{}{}
			<-req.Context().Done()
			ended <- context.Cause(req.Context())
		}
	})
	requester := dial(t, b.node(0), "errors")
	ctx := context.Background()

	_, err := requester.Call(ctx, []byte("fail"))
	var re *socketbus.RemoteError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "no thanks") {
		t.Fatalf("Fail across nodes: got %v, want a *RemoteError with the message", err)
	}

	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = requester.Call(tctx, []byte("hang"))
	cancel()
	if !errors.Is(err, socketbus.ErrTimeout) {
		t.Fatalf("timeout across nodes: got %v, want ErrTimeout", err)
	}
	<-started
	if cause := <-ended; !errors.Is(cause, socketbus.ErrTimeout) {
		t.Fatalf("the handler's request ended with %v, want ErrTimeout", cause)
	}

	cctx, cancel := context.WithCancel(ctx)
	got := make(chan error, 1)
	go func() {
		_, err := requester.Call(cctx, []byte("hang"))
		got <- err
	}()
	<-started
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancel across nodes: got %v, want context.Canceled", err)
	}
	if cause := <-ended; !errors.Is(cause, socketbus.ErrCancelled) {
		t.Fatalf("the handler's request ended with %v, want ErrCancelled", cause)
	}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// TestStatsMembersPerNode: a node's Stats name the bus's nodes and count
// each channel's clients on the others, as soon as their Dials return.
func TestStatsMembersPerNode(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	dial(t, b.node(1), "stats")
	dial(t, b.node(1), "stats")
	dial(t, b.node(2), "stats")
	dial(t, b.node(0), "stats")
	st := b.node(0).srv.Stats()
	if got := strings.Join(st.NodeNames, ","); got != "n1,n2,n3" {
		t.Fatalf("NodeNames: %q, want n1,n2,n3", got)
	}
	if len(st.Channels) != 1 {
		t.Fatalf("%d channels, want 1", len(st.Channels))
	}
	ch := st.Channels[0]
	if ch.Clients != 1 || ch.Remote["n2"] != 2 || ch.Remote["n3"] != 1 || len(ch.Remote) != 2 {
		t.Fatalf("channel stats on n1: %d clients here, %v elsewhere; want 1 here, n2 2, n3 1", ch.Clients, ch.Remote)
	}
}

// TestCrossNodeTooLargeAndPeerGone: a response over the responder node's
// body limit fails with ErrTooLarge at the requester on another node, and
// a responder that disconnects mid-request makes it fail with ErrPeerGone.
func TestCrossNodeTooLargeAndPeerGone(t *testing.T) {
	b := &testBus{t: t, cfg: server.Config{}}
	t.Cleanup(b.close)
	b.start("n1")
	b.cfg = server.Config{MaxMessageBytes: 64 << 10}
	b.start("n2")
	b.settle()
	responder := dial(t, b.node(1), "limits")
	gone := make(chan struct{})
	serve(t, responder, func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		switch string(body) {
		case "big":
			_ = req.Respond(bytes.NewReader(make([]byte, 1<<20)))
		case "leave":
			close(gone)
			<-req.Context().Done()
		}
	})
	requester := dial(t, b.node(0), "limits")
	if _, err := requester.Call(context.Background(), []byte("big")); !errors.Is(err, socketbus.ErrTooLarge) {
		t.Fatalf("a response over the responder's node limit: %v, want ErrTooLarge", err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := requester.Call(context.Background(), []byte("leave"))
		got <- err
	}()
	<-gone
	responder.Close()
	if err := <-got; !errors.Is(err, socketbus.ErrPeerGone) {
		t.Fatalf("a responder on another node disconnected: %v, want ErrPeerGone", err)
	}
}

// TestCrossNodeMemoryBudget: 16 requesters on n1 each stream 2 MiB to
// slow responders on n2 and back, on nodes whose MaxMemory is 32 MiB. All
// of n1's requests reach n2 through one remote sender, whose share is a
// sixteenth of the budget (2 MiB, five streams' windows): the streams take
// turns there. Every transfer completes, and neither node's budget ever
// held more than its limit.
func TestCrossNodeMemoryBudget(t *testing.T) {
	const limit = 32 << 20
	b := newTestBus(t, 2, server.Config{MaxMemory: limit})
	const size = 2 << 20
	want := patternSum(size)
	serve(t, dial(t, b.node(1), "budget"), func(req *socketbus.Request) {
		w := &slowWriter{h: sha256.New(), pause: 50 * time.Microsecond}
		if _, err := io.Copy(w, req.Body); err != nil {
			_ = req.Fail(err)
			return
		}
		if !bytes.Equal(w.h.Sum(nil), want) {
			_ = req.Fail(errors.New("body changed"))
			return
		}
		_ = req.Respond(&pattern{n: size})
	}, socketbus.WithConcurrency(16))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		c := dial(t, b.node(0), "budget")
		wg.Go(func() {
			w := &slowWriter{h: sha256.New(), pause: 50 * time.Microsecond}
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			if err := c.Send(ctx, &pattern{n: size}, w); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(w.h.Sum(nil), want) {
				errs <- errors.New("response changed")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.logState() // what a stalled transfer left behind
		t.Fatalf("a transfer: %v", err)
	}
	for i := range 2 {
		st := b.node(i).srv.Stats()
		t.Logf("%s: memory peak %d KiB of %d KiB", b.node(i).name, st.MemoryPeakBytes>>10, st.MemoryLimit>>10)
		if st.MemoryPeakBytes > st.MemoryLimit {
			t.Fatalf("%s held %d bytes, over its budget of %d", b.node(i).name, st.MemoryPeakBytes, st.MemoryLimit)
		}
	}
}
