package socketbus_test

import (
	"context"
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// transfer sends a size-byte request and gets a size-byte response through
// a live server, checking both by hash.
func transfer(t testing.TB, size int64) {
	t.Helper()
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("transfer")
	a := dial(t, addr, ch)
	b := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	reqSum := patternSum(1, size)
	respSum := patternSum(2, size)
	served := make(chan error, 1)
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			served <- err
			return
		}
		h := sha256.New()
		if _, err := io.Copy(h, req.Body); err != nil {
			served <- err
			return
		}
		if got := sum(h); got != reqSum {
			t.Errorf("request body hash mismatch")
		}
		served <- req.Respond(testpeer.NewPattern(2, size))
	}()
	w := newHashWriter()
	if err := a.Send(ctx, testpeer.NewPattern(1, size), w); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if w.n != size || sum(w.h) != respSum {
		t.Fatalf("response: got %d bytes (hash ok=%v), want %d", w.n, sum(w.h) == respSum, size)
	}
	if err := <-served; err != nil {
		t.Fatalf("receiver: %v", err)
	}
}

func TestTransfer64MiB(t *testing.T) {
	transfer(t, 64<<20)
}
