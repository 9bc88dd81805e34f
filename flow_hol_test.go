package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// blockingWriter blocks every Write until release is closed.
type blockingWriter struct{ release chan struct{} }

func (w blockingWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

// TestHeadOfLine: on one connection, a stream whose reader has stopped does
// not hold up another stream. The receiver holds two requests and never
// reads the first (8 MiB) body; the second completes. Likewise the sender
// stops consuming one response; its other Send completes.
func TestHeadOfLine(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("hol")
	sender := dial(t, addr, ch)
	receiver := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// Stream X: 8 MiB that the receiver never reads.
	xErr := make(chan error, 1)
	go func() { xErr <- sender.Send(ctx, testpeer.NewPattern(7, 8<<20), io.Discard) }()
	x, err := receiver.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive X: %v", err)
	}
	// Stream Y, on the same two connections, completes.
	yResp := make(chan []byte, 1)
	go func() {
		got, err := roundTrip(ctx, sender, []byte("stream y"))
		if err != nil {
			t.Errorf("Send Y: %v", err)
		}
		yResp <- got
	}()
	if err := serveN(ctx, receiver, 1, upper); err != nil {
		t.Fatalf("serving Y: %v", err)
	}
	if got := <-yResp; string(got) != "STREAM Y" {
		t.Fatalf("Y response = %q, want %q", got, "STREAM Y")
	}

	// Now the other direction: X's response is 8 MiB that the sender's
	// writer refuses to take; a third request still completes.
	go func() { io.Copy(io.Discard, x.Body) }()
	release := make(chan struct{})
	zErr := make(chan error, 1)
	go func() { zErr <- sender.Send(ctx, bytes.NewReader([]byte("z")), blockingWriter{release}) }()
	z, err := receiver.Receive(ctx)
	if err != nil {
		t.Fatalf("Receive Z: %v", err)
	}
	respondX := make(chan error, 1)
	go func() { respondX <- x.Respond(testpeer.NewPattern(8, 8<<20)) }()
	respondZ := make(chan error, 1)
	go func() { respondZ <- z.Respond(testpeer.NewPattern(9, 8<<20)) }() // stalls in the sender's writer
	w := make(chan error, 1)
	go func() {
		_, err := roundTrip(ctx, sender, []byte("w"))
		w <- err
	}()
	if err := serveN(ctx, receiver, 1, upper); err != nil {
		t.Fatalf("serving W: %v", err)
	}
	if err := <-w; err != nil {
		t.Fatalf("Send W while Z's response is stalled: %v", err)
	}
	close(release)
	if err := <-zErr; err != nil {
		t.Fatalf("Send Z after release: %v", err)
	}
	if err := <-respondZ; err != nil {
		t.Fatalf("Respond Z: %v", err)
	}
	if err := <-respondX; err != nil {
		t.Fatalf("Respond X: %v", err)
	}
	if err := <-xErr; err != nil {
		t.Fatalf("Send X: %v", err)
	}
}

// slowReader reads its source a little at a time, yielding between reads.
type slowReader struct{ r io.Reader }

func (s slowReader) Read(p []byte) (int, error) {
	runtime.Gosched()
	return s.r.Read(p[:min(len(p), 4<<10)])
}

// TestCrossedTransfersNoDeadlock: A sends 256 MiB to B while B sends
// 256 MiB to A, each reading the body it receives slowly.
func TestCrossedTransfersNoDeadlock(t *testing.T) {
	size := int64(256 << 20)
	if testing.Short() {
		size = 32 << 20
	}
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("crossed")
	a := dial(t, addr, ch)
	b := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for i, pair := range [][2]*socketbus.Client{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		seed := uint64(100 + i)
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- from.Send(ctx, testpeer.NewPattern(seed, size), io.Discard)
		}()
		go func() {
			defer wg.Done()
			req, err := to.Receive(ctx)
			if err != nil {
				errs <- err
				return
			}
			h := newHashWriter()
			if _, err := io.Copy(h, slowReader{req.Body}); err != nil {
				errs <- err
				return
			}
			if h.n != size || sum(h.h) != patternSum(seed, size) {
				errs <- errors.New("body arrived corrupted")
				return
			}
			errs <- req.Respond(bytes.NewReader([]byte("ok")))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
