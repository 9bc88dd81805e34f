package cluster_test

import (
	"context"
	"crypto/sha256"
	"hash"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// pattern is an endless deterministic body: byte i is i*7 mod 251.
type pattern struct{ off, n int64 }

func (p *pattern) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := int(min(int64(len(b)), p.n-p.off))
	for i := range k {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.off += int64(k)
	return k, nil
}

func patternSum(n int64) []byte {
	h := sha256.New()
	_, _ = io.Copy(h, &pattern{n: n})
	return h.Sum(nil)
}

// slowWriter hashes what it is given, 32 KiB at a time, pausing between
// pieces: a consumer slower than the network.
type slowWriter struct {
	h     hash.Hash
	n     int64
	pause time.Duration
}

func (w *slowWriter) Write(b []byte) (int, error) {
	total := len(b)
	for len(b) > 0 {
		k := min(len(b), 32<<10)
		w.h.Write(b[:k])
		w.n += int64(k)
		b = b[k:]
		time.Sleep(w.pause) // the consumer's own slowness, not a wait for an event
	}
	return total, nil
}

// crossNodeTransfer sends size bytes from a requester on n1 to a
// responder on n3, which reads it slowly and answers with size bytes,
// which the requester reads slowly too; both bodies are checked.
func crossNodeTransfer(t *testing.T, b *testBus, size int64, pause time.Duration) {
	t.Helper()
	want := patternSum(size)
	responder := dial(t, b.node(2), "large")
	got := make(chan []byte, 1)
	serve(t, responder, func(req *socketbus.Request) {
		w := &slowWriter{h: sha256.New(), pause: pause}
		if _, err := io.Copy(w, req.Body); err != nil {
			_ = req.Fail(err)
			return
		}
		got <- w.h.Sum(nil)
		_ = req.Respond(&pattern{n: size})
	})
	requester := dial(t, b.node(0), "large")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	w := &slowWriter{h: sha256.New(), pause: pause}
	if err := requester.Send(ctx, &pattern{n: size}, w); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if sum := <-got; string(sum) != string(want) {
		t.Fatalf("the request body arrived changed")
	}
	if w.n != size || string(w.h.Sum(nil)) != string(want) {
		t.Fatalf("the response body arrived changed: %d of %d bytes", w.n, size)
	}
}

// TestCrossNodeLargeBodies: 64 MiB each way between nodes through slow
// readers arrive whole.
func TestCrossNodeLargeBodies(t *testing.T) {
	b := newTestBus(t, 3, server.Config{})
	crossNodeTransfer(t, b, 64<<20, 20*time.Microsecond)
}
