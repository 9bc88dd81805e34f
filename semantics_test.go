package socketbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// receiveOne starts a Receive on c and returns a channel that yields the
// request (nil on error, which is reported on t).
func receiveOne(t *testing.T, ctx context.Context, c *socketbus.Client) <-chan *socketbus.Request {
	out := make(chan *socketbus.Request, 1)
	go func() {
		req, err := c.Receive(ctx)
		if err != nil {
			t.Errorf("Receive: %v", err)
		}
		out <- req
	}()
	return out
}

// sendAsync starts a Send from c and returns a channel that yields its
// error and the response.
type sendResult struct {
	resp []byte
	err  error
}

func sendAsync(ctx context.Context, c *socketbus.Client, body string) <-chan sendResult {
	out := make(chan sendResult, 1)
	go func() {
		var resp bytes.Buffer
		err := c.Send(ctx, strings.NewReader(body), &resp)
		out <- sendResult{resp.Bytes(), err}
	}()
	return out
}

// await returns what ch yields, failing the test after 10 s.
func await[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: nothing within 10s", what)
		panic("unreachable")
	}
}

// awaitDone waits for ctx to end, failing the test after 10 s.
func awaitDone(t *testing.T, what string, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: context not cancelled within 10s", what)
	}
}

func TestSendNoPeers(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	a := dial(t, addr, socketbus.ChannelFromName("alone"))
	dial(t, addr, socketbus.ChannelFromName("elsewhere")) // no peer of a's
	start := time.Now()
	err := a.Send(context.Background(), strings.NewReader("anyone?"), nil)
	if !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Send alone on a channel: got %v, want ErrNoPeers", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Send alone took %v, want it to fail at once", d)
	}
}

func TestRequestNeverGoesToItsSender(t *testing.T) {
	a, b := twoClients(t, "not-to-self")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// a waits for a request while it sends its own; only b may take it.
	aCtx, aCancel := context.WithCancel(ctx)
	aGot := make(chan error, 1)
	go func() {
		req, err := a.Receive(aCtx)
		if req != nil {
			err = fmt.Errorf("a received request %v from %v", req.ID, req.From)
		}
		aGot <- err
	}()
	const n = 20
	served := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			req, err := b.Receive(ctx)
			if err != nil {
				served <- err
				return
			}
			if req.From != a.ID() {
				served <- fmt.Errorf("b got a request from %v, want a (%v)", req.From, a.ID())
				return
			}
			body, _ := io.ReadAll(req.Body)
			if err := req.Respond(bytes.NewReader(append([]byte("b:"), body...))); err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()
	for i := 0; i < n; i++ {
		got, err := roundTrip(ctx, a, []byte(fmt.Sprint(i)))
		if want := fmt.Sprintf("b:%d", i); err != nil || string(got) != want {
			t.Fatalf("round trip %d: got %q, %v; want %q, nil", i, got, err, want)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("b: %v", err)
	}
	aCancel()
	if err := <-aGot; !errors.Is(err, context.Canceled) {
		t.Fatalf("a's own Receive: got %v, want context.Canceled and no request", err)
	}
}

func TestReceiversServedInArrivalOrder(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("fifo")
	a := dial(t, addr, ch)
	// Raw receivers, so that the order their Receives reach the server is
	// known: each waits for its poll to be handled before the next polls.
	rs := make([]*testpeer.Conn, 4)
	for i := range rs {
		rs[i] = testpeer.Join(t, addr, ch)
		rs[i].Poll(uuid.New())
		if early := rs[i].Sync(); len(early) != 0 {
			t.Fatalf("receiver %d: frames before any request: got %v, want none", i, early)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var results []<-chan sendResult
	for i, r := range rs {
		body := fmt.Sprintf("request %d", i)
		results = append(results, sendAsync(ctx, a, body))
		req := r.Receive() // request i goes to the i-th receiver to poll
		if string(req.Body) != body || req.From != a.ID() {
			t.Fatalf("receiver %d got %q from %v, want %q from %v", i, req.Body, req.From, body, a.ID())
		}
		r.Respond(req.ID, []byte(fmt.Sprintf("answer %d", i)))
	}
	for i, res := range results {
		r := await(t, "Send", res)
		if want := fmt.Sprintf("answer %d", i); r.err != nil || string(r.resp) != want {
			t.Fatalf("Send %d: got %q, %v; want %q, nil", i, r.resp, r.err, want)
		}
	}
}

func TestSendDeadlineCancelsReceiver(t *testing.T) {
	a, b := twoClients(t, "deadline")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	taken := receiveOne(t, ctx, b)

	const timeout = 300 * time.Millisecond
	sctx, scancel := context.WithTimeout(ctx, timeout)
	defer scancel()
	res := sendAsync(sctx, a, "slow")
	req := await(t, "Receive", taken)
	if req == nil {
		t.FailNow()
	}
	if dl, ok := req.Context().Deadline(); !ok || time.Until(dl) > timeout {
		t.Errorf("receiver's deadline: got %v from now (set %v), want at most %v", time.Until(dl), ok, timeout)
	}
	awaitDone(t, "receiver", req.Context())
	r := await(t, "Send", res)
	if !errors.Is(r.err, socketbus.ErrTimeout) || !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Send past its deadline: got %v, want ErrTimeout and context.DeadlineExceeded", r.err)
	}
	if err := req.Respond(strings.NewReader("too late")); err == nil {
		t.Fatalf("Respond after the deadline: got nil, want an error")
	}
}

func TestSendCancelReachesReceiver(t *testing.T) {
	a, b := twoClients(t, "cancel")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	taken := receiveOne(t, ctx, b)
	sctx, scancel := context.WithCancel(ctx)
	res := sendAsync(sctx, a, "never mind")
	req := await(t, "Receive", taken)
	if req == nil {
		t.FailNow()
	}
	scancel()
	r := await(t, "Send", res)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("Send with its ctx cancelled: got %v, want context.Canceled", r.err)
	}
	awaitDone(t, "receiver", req.Context())
	if cause := context.Cause(req.Context()); !errors.Is(cause, socketbus.ErrCancelled) {
		t.Errorf("receiver's context cause: got %v, want ErrCancelled", cause)
	}
	if err := req.Respond(strings.NewReader("too late")); err == nil {
		t.Fatalf("Respond to a cancelled request: got nil, want an error")
	}
	// Both still work.
	checkRoundTrip(t, a, b, []byte("after the cancel"))
}

func TestReceiverGoneFailsSenderAtOnce(t *testing.T) {
	a, b := twoClients(t, "receiver-gone")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	taken := receiveOne(t, ctx, b)
	start := time.Now()
	res := sendAsync(ctx, a, "hello?")
	req := await(t, "Receive", taken)
	if req == nil {
		t.FailNow()
	}
	b.Close()
	r := await(t, "Send", res)
	if !errors.Is(r.err, socketbus.ErrPeerGone) {
		t.Fatalf("Send whose receiver closed: got %v, want ErrPeerGone", r.err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Send took %v to see the receiver go, want well under its 1-minute timeout", d)
	}
	awaitDone(t, "the closed receiver's request", req.Context())
}

func TestSenderGoneCancelsReceiver(t *testing.T) {
	a, b := twoClients(t, "sender-gone")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	taken := receiveOne(t, ctx, b)
	res := sendAsync(context.Background(), a, "bye")
	req := await(t, "Receive", taken)
	if req == nil {
		t.FailNow()
	}
	a.Close()
	if r := await(t, "Send", res); !errors.Is(r.err, socketbus.ErrClosed) {
		t.Fatalf("Send on a client closed under it: got %v, want ErrClosed", r.err)
	}
	awaitDone(t, "receiver", req.Context())
	err := req.Respond(strings.NewReader("anyone?"))
	if !errors.Is(err, socketbus.ErrPeerGone) {
		t.Fatalf("Respond after the sender left: got %v, want ErrPeerGone", err)
	}
}

func TestFailGivesRemoteError(t *testing.T) {
	a, b := twoClients(t, "fail")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	failed := make(chan error, 1)
	go func() {
		req, err := b.Receive(ctx)
		if err != nil {
			failed <- err
			return
		}
		failed <- req.Fail(errors.New("no such widget"))
	}()
	err := a.Send(ctx, strings.NewReader("widget 7"), nil)
	var re *socketbus.RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("Send answered with Fail: got %v, want a *RemoteError", err)
	}
	if re.Message != "no such widget" {
		t.Fatalf("RemoteError.Message: got %q, want %q", re.Message, "no such widget")
	}
	if err := <-failed; err != nil {
		t.Fatalf("Fail: got %v, want nil", err)
	}
}

func TestDuplicateClientIDRefused(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	id := uuid.New()
	first := dial(t, addr, socketbus.ChannelFromName("dup"), socketbus.WithClientID(id))
	if first.ID() != id {
		t.Fatalf("ID: got %v, want %v", first.ID(), id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := socketbus.Dial(ctx, addr, socketbus.ChannelFromName("dup"), socketbus.WithClientID(id))
	if err == nil {
		c.Close()
		t.Fatalf("second Dial with client ID %v on the same channel: got a client, want ErrConflict", id)
	}
	if !errors.Is(err, socketbus.ErrConflict) {
		t.Fatalf("second Dial with client ID %v on the same channel: got %v, want ErrConflict", id, err)
	}
	// Client IDs are unique per channel (TestTrustClientIDSquatting).
	other := dial(t, addr, socketbus.ChannelFromName("another channel"), socketbus.WithClientID(id))
	if other.ID() != id {
		t.Fatalf("ID on another channel: got %v, want %v", other.ID(), id)
	}
}

// TestDialSilentServerTimesOut: without a deadline of its own, Dial gives
// a server that accepts and never answers the join two ping intervals.
func TestDialSilentServerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
		close(accepted)
	}()
	const ping = 100 * time.Millisecond
	start := time.Now()
	_, err = socketbus.Dial(context.Background(), ln.Addr().String(), socketbus.ChannelFromName("silent"),
		socketbus.WithPingInterval(ping))
	elapsed := time.Since(start)
	if c := <-accepted; c != nil {
		c.Close()
	}
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent server: got %v, want an error matching context.DeadlineExceeded", err)
	}
	if elapsed < 2*ping {
		t.Fatalf("Dial gave up after %v, want at least two ping intervals (%v)", elapsed, 2*ping)
	}
}
