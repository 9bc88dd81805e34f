package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
)

// onceLedger counts how many times the handler ran for each request.
type onceLedger struct {
	mu   sync.Mutex
	runs map[string]int
}

func (l *onceLedger) ran(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.runs[key]++
	return l.runs[key]
}

// TestDirectAtMostOnceAcrossSwitch: requests in flight when the direct
// connection between their nodes is cut — some with their handler
// running, cut from either side, some with their body still streaming —
// each end exactly once, with their response or peer_gone, and no
// handler runs twice for one request, though the link goes back to NATS
// and then to a new connection in between.
func TestDirectAtMostOnceAcrossSwitch(t *testing.T) {
	b := startTestBus(&testBus{t: t, direct: "127.0.0.1:0"}, 2)
	n1, n2 := b.node(0), b.node(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ledger := &onceLedger{runs: map[string]int{}}
	entered := make(chan string, 64)
	release := make(chan struct{})
	var twice []string
	var twiceMu sync.Mutex
	serve(t, dial(t, n2, "once"), func(req *socketbus.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		key, _, _ := strings.Cut(string(body), "|")
		if ledger.ran(key) > 1 {
			twiceMu.Lock()
			twice = append(twice, key)
			twiceMu.Unlock()
		}
		if strings.HasPrefix(key, "held") {
			entered <- key
			select {
			case <-release:
			case <-req.Context().Done():
			}
		}
		_ = req.Respond(bytes.NewReader(append([]byte("echo:"), body...)))
	})
	requester := dial(t, n1, "once")

	type result struct {
		key string
		err error
	}
	call := func(key string, body []byte) <-chan result {
		out := make(chan result, 1)
		go func() {
			got, err := requester.Call(ctx, body)
			switch {
			case errors.Is(err, socketbus.ErrPeerGone):
			case err != nil:
			case !bytes.Equal(got, append([]byte("echo:"), body...)):
				err = fmt.Errorf("a wrong response of %d bytes", len(got))
			}
			out <- result{key, err}
		}()
		return out
	}
	ended := func(r result) {
		t.Helper()
		if r.err != nil && !errors.Is(r.err, socketbus.ErrPeerGone) {
			t.Fatalf("%s: %v", r.key, r.err)
		}
	}
	cut := func(i int) {
		t.Helper()
		from, peer := n1, "n2"
		if i%2 == 1 {
			from, peer = n2, "n1"
		}
		from.c.CutDirect(peer) // false if a reset got there first: the link is on NATS anyway
	}
	peerGone := 0
	for i := range 8 {
		waitAllDirect(ctx, t, n1, n2)
		// The handler runs when the connection is cut.
		key := fmt.Sprintf("held%d", i)
		res := call(key, []byte(key+"|"))
		select {
		case <-entered:
			cut(i)
			release <- struct{}{}
			r := <-res
			ended(r)
			if r.err != nil {
				peerGone++
			}
		case r := <-res:
			// The reset that the last cut caused can reach the far node
			// after this request has left: it ends the request there
			// before delivery, and here with peer_gone, once (CI saw it
			// once in the fourth session's runs). Anything else fails.
			if !errors.Is(r.err, socketbus.ErrPeerGone) {
				t.Fatalf("%s ended before its handler ran: %v", key, r.err)
			}
			peerGone++
		case <-ctx.Done():
			t.Fatal("the handler did not run")
		}

		// The body streams when the connection is cut.
		waitAllDirect(ctx, t, n1, n2)
		key = fmt.Sprintf("streaming%d", i)
		res = call(key, append([]byte(key+"|"), bytes.Repeat([]byte("s"), 4<<20)...))
		cut(i + 1)
		r := <-res
		ended(r)
		if r.err != nil {
			peerGone++
		}
	}
	twiceMu.Lock()
	defer twiceMu.Unlock()
	if len(twice) > 0 {
		t.Fatalf("handlers ran twice for %v", twice)
	}
	t.Logf("16 requests across a cut: %d ended with peer_gone, the others with their response", peerGone)
}
