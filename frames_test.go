package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/frame"
	"github.com/socketbus/socketbus/server"
)

// The client's incoming bodies hold pooled buffers (package frame's rule):
// these tests end paths where nobody reads a body to its end, then close
// everything and check that every buffer went back to the pool.

// framesBus starts a server and two clients on one channel for a test
// that checks the pool, and returns the pool's count before them.
func framesBus(t *testing.T, name string) (srv *server.Server, a, b *socketbus.Client, before int) {
	t.Helper()
	before = frame.Outstanding()
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName(name)
	return srv, dial(t, addr, ch), dial(t, addr, ch), before
}

// checkReleased closes the clients and then the server, which wait for
// their goroutines, and checks that no pooled buffer taken since before
// is still out.
func checkReleased(t *testing.T, before int, srv *server.Server, clients ...*socketbus.Client) {
	t.Helper()
	for _, c := range clients {
		c.Close()
	}
	srv.Close()
	if n := frame.Outstanding() - before; n != 0 {
		t.Fatalf("%d pooled buffers still out after the test, want 0; taken at:\n%s", n, frame.OutstandingStacks())
	}
}

// serveOne answers the next request b receives with answer, and returns
// what answer returned.
func serveOne(ctx context.Context, b *socketbus.Client, answer func(*socketbus.Request) error) <-chan error {
	done := make(chan error, 1)
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			done <- err
			return
		}
		done <- answer(req)
	}()
	return done
}

func TestFramesRespondBeforeReadingBody(t *testing.T) {
	for _, size := range []int{100, 200 << 10} { // a whole body, and a streamed one
		srv, a, b, before := framesBus(t, "frames-respond-first")
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		served := serveOne(ctx, b, func(req *socketbus.Request) error {
			return req.Respond(bytes.NewReader([]byte("early")))
		})
		var out bytes.Buffer
		err := a.Send(ctx, bytes.NewReader(make([]byte, size)), &out)
		if err != nil || out.String() != "early" {
			t.Fatalf("size %d: Send = %q, %v; want %q, nil", size, out.String(), err, "early")
		}
		if err := <-served; err != nil {
			t.Fatalf("size %d: Respond: %v", size, err)
		}
		cancel()
		checkReleased(t, before, srv, a, b)
	}
}

// blockedWriter fails its first Write once release is closed, after
// saying it was entered.
type blockedWriter struct {
	entered, release chan struct{}
	got              []byte
}

func (w *blockedWriter) Write(p []byte) (int, error) {
	close(w.entered)
	<-w.release
	w.got = append(w.got, p...)
	return 0, errors.New("test: writer gave up")
}

func TestFramesRespondWhileBodyIsRead(t *testing.T) {
	srv, a, b, before := framesBus(t, "frames-respond-while-read")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	body := bytes.Repeat([]byte("abcdefgh"), 64)
	w := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	copied := make(chan error, 1)
	served := serveOne(ctx, b, func(req *socketbus.Request) error {
		go func() {
			_, err := io.Copy(w, req.Body)
			copied <- err
		}()
		<-w.entered // the copy holds a piece of the body's buffer
		err := req.Respond(bytes.NewReader([]byte("done")))
		close(w.release)
		return err
	})
	got, err := roundTrip(ctx, a, body)
	if err != nil || string(got) != "done" {
		t.Fatalf("Send = %q, %v; want %q, nil", got, err, "done")
	}
	if err := <-served; err != nil {
		t.Fatalf("Respond: %v", err)
	}
	if err := <-copied; err == nil {
		t.Fatalf("copying the body: got nil, want the writer's error")
	}
	if !bytes.Equal(w.got, body) {
		t.Fatalf("the piece read while Respond ran = %q, want %q", w.got, body)
	}
	checkReleased(t, before, srv, a, b)
}

func TestFramesSendStopsReadingResponse(t *testing.T) {
	srv, a, b, before := framesBus(t, "frames-send-stops")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	served := serveOne(ctx, b, func(req *socketbus.Request) error {
		return req.Respond(bytes.NewReader(make([]byte, 200<<10)))
	})
	w := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	sent := make(chan error, 1)
	go func() { sent <- a.Send(ctx, bytes.NewReader([]byte("hi")), w) }()
	<-w.entered
	// The whole response is queued for the sender before its writer fails.
	if err := <-served; err != nil {
		t.Fatalf("Respond: %v", err)
	}
	close(w.release)
	if err := <-sent; err == nil {
		t.Fatalf("Send = nil, want the writer's error")
	}
	checkReleased(t, before, srv, a, b)
}

func TestFramesRespondAfterSenderCancelled(t *testing.T) {
	srv, a, b, before := framesBus(t, "frames-cancelled")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sendCtx, cancelSend := context.WithCancel(ctx)
	served := serveOne(ctx, b, func(req *socketbus.Request) error {
		cancelSend()
		<-req.Context().Done()
		return req.Respond(bytes.NewReader([]byte("late")))
	})
	if _, err := roundTrip(sendCtx, a, []byte("unread body")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if err := <-served; err == nil {
		t.Fatalf("Respond after the sender cancelled = nil, want an error")
	}
	checkReleased(t, before, srv, a, b)
}

func TestFramesPushedRequestLostWithConnection(t *testing.T) {
	before := frame.Outstanding()
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("frames-pushed-lost")
	a := dial(t, addr, ch)
	lost := make(chan struct{}, 1)
	b := dial(t, addr, ch, socketbus.WithReconnect(socketbus.ReconnectPolicy{}),
		socketbus.WithConnectionHook(func(ev socketbus.ConnectionEvent) {
			if ev.State == socketbus.ConnectionLost {
				lost <- struct{}{}
			}
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	gate, pushed := make(chan struct{}), make(chan socketbus.ID, 1)
	socketbus.SetPushHooks(b, gate, pushed) // no handler takes what is pushed
	served := make(chan error, 1)
	go func() {
		served <- b.Serve(ctx, socketbus.HandlerFunc(func(req *socketbus.Request) {
			t.Errorf("a handler took request %x, want none taken", req.ID)
		}))
	}()
	sent := make(chan error, 1)
	go func() { _, err := roundTrip(ctx, a, []byte("queued, never taken")); sent <- err }()
	<-pushed // queued for b's handlers, with its whole body
	srv.Close()
	<-lost // b has sorted out what its connection carried, and reconnects
	if err := <-sent; err == nil {
		t.Fatalf("Send to a server that closed = nil, want an error")
	}
	b.Close()
	if err := <-served; err == nil {
		t.Fatalf("Serve of a closed client = nil, want an error")
	}
	checkReleased(t, before, srv, a, b)
}

func TestFramesEndedRequestNeverAnswered(t *testing.T) {
	srv, a, b, before := framesBus(t, "frames-never-answered")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sendCtx, cancelSend := context.WithCancel(ctx)
	body := []byte("read after the sender left")
	var req *socketbus.Request
	served := serveOne(ctx, b, func(r *socketbus.Request) error {
		req = r
		cancelSend()
		<-r.Context().Done() // the handler stops here, and answers nothing
		return nil
	})
	if _, err := roundTrip(sendCtx, a, body); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("receiving: %v", err)
	}
	checkReleased(t, before, srv, a, b)
	// What arrived stays readable, off the pool's buffers.
	if got, err := io.ReadAll(req.Body); !bytes.Equal(got, body) {
		t.Fatalf("the ended request's body = %q, %v; want %q", got, err, body)
	}
}

func TestFramesRequestEndsWhileBodyIsRead(t *testing.T) {
	srv, a, b, before := framesBus(t, "frames-ends-while-read")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sendCtx, cancelSend := context.WithCancel(ctx)
	body := bytes.Repeat([]byte("abcdefgh"), 64)
	w := &blockedWriter{entered: make(chan struct{}), release: make(chan struct{})}
	copied := make(chan error, 1)
	served := serveOne(ctx, b, func(req *socketbus.Request) error {
		go func() {
			_, err := io.Copy(w, req.Body)
			copied <- err
		}()
		<-w.entered // the copy holds a piece of the body's buffer
		cancelSend()
		<-req.Context().Done() // the request ends, its body moves off the pool
		close(w.release)
		return nil
	})
	if _, err := roundTrip(sendCtx, a, body); !errors.Is(err, context.Canceled) {
		t.Fatalf("Send = %v, want context.Canceled", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("receiving: %v", err)
	}
	if err := <-copied; err == nil {
		t.Fatalf("copying the body: got nil, want the writer's error")
	}
	if !bytes.Equal(w.got, body) {
		t.Fatalf("the piece read as the request ended = %q, want %q", w.got, body)
	}
	checkReleased(t, before, srv, a, b)
}
