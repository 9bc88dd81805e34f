package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/cluster"
	"github.com/socketbus/socketbus/server"
)

// TestDuplicateNodeNameRefused (issue 17, finding 4): a node that starts
// with the name of a live node of the bus is refused — cluster.New returns
// ErrNodeNameTaken — and the live node keeps serving: 300 requests from
// another node to its receiver each run once.
func TestDuplicateNodeNameRefused(t *testing.T) {
	b := newTestBus(t, 2, server.Config{})
	n1, n2 := b.node(0), b.node(1)
	var mu sync.Mutex
	runs := map[string]int{}
	count := func(req *socketbus.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		runs[string(body)]++
		mu.Unlock()
		_ = req.Respond(strings.NewReader(string(body)))
	}
	serve(t, dial(t, n2, "names"), count, socketbus.WithConcurrency(4))

	dup, err := cluster.New(cluster.WithDeadAfter(cluster.Config{Name: "bus", Node: "n2", Listen: "127.0.0.1:0",
		Routes: b.routes, Heartbeat: heartbeat, Logger: slog.New(slog.NewTextHandler(testWriter{t: t}, nil))}, testDeadAfter))
	if err == nil {
		t.Errorf("cluster.New with a live node's name: got no error, want ErrNodeNameTaken")
		// Let it serve, as it would: its receivers take that name's traffic too.
		serve(t, dial(t, b.serveNode(dup), "names"), count, socketbus.WithConcurrency(4))
	} else if !errors.Is(err, cluster.ErrNodeNameTaken) {
		t.Fatalf("cluster.New with a live node's name: %v, want ErrNodeNameTaken", err)
	}

	requester := dial(t, n1, "names")
	const requests = 300
	var wg sync.WaitGroup
	failed := make(chan error, requests)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < requests; i += 6 {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				body := fmt.Sprint(i)
				got, err := requester.Call(ctx, []byte(body))
				cancel()
				if err != nil || string(got) != body {
					failed <- fmt.Errorf("request %s: %q, %v", body, got, err)
				}
			}
		}()
	}
	wg.Wait()
	close(failed)
	for err := range failed {
		t.Error(err)
	}
	mu.Lock()
	defer mu.Unlock()
	twice := 0
	for _, n := range runs {
		if n > 1 {
			twice++
		}
	}
	t.Logf("%d requests, %d distinct ran, %d ran more than once", requests, len(runs), twice)
	if twice != 0 {
		t.Fatalf("%d of %d requests ran more than once", twice, requests)
	}
}
