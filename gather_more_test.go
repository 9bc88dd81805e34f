package socketbus_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// TestGatherMixedVersions: members on protocol versions 1, 2 and 3 each
// answer a gather as an ordinary request; only the v3 member's headers
// come back.
func TestGatherMixedVersions(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-versions")
	sender := dial(t, addr, ch)
	byVersion := map[socketbus.ID]uint8{}
	for _, v := range []uint8{1, 2, 3} {
		m := dial(t, addr, ch, socketbus.WithProtocolVersion(v))
		byVersion[m.ID()] = v
		serveAs(t, m, func(r *socketbus.Request) {
			body, _ := io.ReadAll(r.Body)
			r.ResponseHeader().Set("Version", fmt.Sprint(v))
			_ = r.Respond(stringsReader(fmt.Sprintf("v%d:%s", v, body)))
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	replies, err := sender.Gather(ctx, []byte("hi"), socketbus.WithHeader(socketbus.Header{"A": {"b"}}))
	if err != nil || len(replies) != 3 {
		t.Fatalf("Gather: %d replies, %v", len(replies), err)
	}
	for _, r := range replies {
		v := byVersion[r.From]
		if r.Err != nil || string(r.Body) != fmt.Sprintf("v%d:hi", v) {
			t.Errorf("v%d member: %q, %v", v, r.Body, r.Err)
		}
		if got, want := r.Header.Get("Version"), map[bool]string{true: "3", false: ""}[v == 3]; got != want {
			t.Errorf("v%d member: reply header Version %q, want %q", v, got, want)
		}
	}
}

// TestGatherConcurrentExactlyOnce: four senders gather at once, 25 times
// each, from 8 members serving with a small concurrency: every member
// runs every gather once, and every reply reaches its own gather.
func TestGatherConcurrentExactlyOnce(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-concurrent")
	const senders, rounds, members = 4, 25, 8
	var rc runCounter
	for i := 0; i < members; i++ {
		m := dial(t, addr, ch)
		serveAs(t, m, func(r *socketbus.Request) {
			rc.add(m.ID(), r.ID)
			body, _ := io.ReadAll(r.Body)
			_ = r.Respond(stringsReader(string(body)))
		})
	}
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	var all []*socketbus.Client
	for s := 0; s < senders; s++ {
		sender := dial(t, addr, ch)
		// A sender is a member of the others' gathers: it answers them.
		serveAs(t, sender, func(r *socketbus.Request) {
			body, _ := io.ReadAll(r.Body)
			_ = r.Respond(stringsReader(string(body)))
		})
		all = append(all, sender)
	}
	for _, sender := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rounds; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				body := fmt.Sprintf("%s/%d", sender.ID(), i)
				replies, err := sender.Gather(ctx, []byte(body))
				cancel()
				if err != nil {
					errs <- err
					return
				}
				// The other senders are members too: members + senders-1.
				if len(replies) != members+senders-1 {
					errs <- fmt.Errorf("%d replies, want %d", len(replies), members+senders-1)
					return
				}
				for _, r := range replies {
					if r.Err == nil && string(r.Body) != body {
						errs <- fmt.Errorf("a reply %q to gather %q", r.Body, body)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if runs, twice := rc.total(); runs != senders*rounds*members || twice != 0 {
		t.Fatalf("members ran %d parts (%d twice), want %d once each", runs, twice, senders*rounds*members)
	}
}

// TestGatherFuncStopsEarly: a GatherFunc that has what it wants after the
// first reply ends the gather there; the members still working see their
// request cancelled.
func TestGatherFuncStopsEarly(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-early")
	sender := dial(t, addr, ch)
	slowHas := make(chan struct{})
	fast := dial(t, addr, ch)
	serveAs(t, fast, func(r *socketbus.Request) {
		<-slowHas // so that the slow member holds its part when the gather ends
		_ = r.Respond(stringsReader("first"))
	})
	cancelled := make(chan error, 1)
	slow := dial(t, addr, ch)
	serveAs(t, slow, func(r *socketbus.Request) {
		close(slowHas)
		<-r.Context().Done()
		cancelled <- context.Cause(r.Context())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var got []socketbus.Reply
	err := sender.GatherFunc(ctx, []byte("x"), func(r socketbus.Reply) bool {
		got = append(got, r)
		return false
	})
	if err != nil || len(got) != 1 || got[0].From != fast.ID() {
		t.Fatalf("GatherFunc: %+v, %v; want the fast member's reply alone", got, err)
	}
	select {
	case cause := <-cancelled:
		if !errors.Is(cause, socketbus.ErrCancelled) {
			t.Fatalf("the slow member's request ended with %v, want ErrCancelled", cause)
		}
	case <-ctx.Done():
		t.Fatal("the slow member's request was never cancelled")
	}
}

// TestGatherToReceivers: members that use Receive (polls) rather than
// Serve take part the same way, and a member that polls only after the
// gather started still gets its part.
func TestGatherToReceivers(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-receive")
	sender := dial(t, addr, ch)
	a, b := dial(t, addr, ch), dial(t, addr, ch)
	var answered atomic.Int32
	answer := func(c *socketbus.Client) {
		r, err := c.Receive(context.Background())
		if err != nil {
			return
		}
		answered.Add(1)
		_ = r.Respond(stringsReader(c.ID().String()))
	}
	go answer(a)
	type result struct {
		replies []socketbus.Reply
		err     error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		replies, err := sender.Gather(ctx, []byte("x"))
		res <- result{replies, err}
	}()
	go answer(b) // may poll before or after the gather is accepted
	r := <-res
	if r.err != nil || len(r.replies) != 2 {
		t.Fatalf("Gather: %+v, %v", r.replies, r.err)
	}
	for _, rep := range r.replies {
		if rep.Err != nil || string(rep.Body) != rep.From.String() {
			t.Errorf("reply from %s: %q, %v", rep.From, rep.Body, rep.Err)
		}
	}
	if n := answered.Load(); n != 2 {
		t.Fatalf("%d members answered, want 2", n)
	}
}

// TestGatherThroughAShutdown: a server shut down gracefully mid-gather
// lets the member holding its part answer, and the gather ends with that
// reply; a member that had not been given its part yet gets
// ErrServerClosed, never a run after the drain.
func TestGatherThroughAShutdown(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-shutdown")
	sender := dial(t, addr, ch)
	holding := make(chan struct{})
	release := make(chan struct{})
	holder := dial(t, addr, ch)
	serveAs(t, holder, func(r *socketbus.Request) {
		close(holding)
		<-release
		_ = r.Respond(stringsReader("answered"))
	})
	idle := dial(t, addr, ch) // joined, never receives: its part waits queued
	type result struct {
		replies []socketbus.Reply
		err     error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		replies, err := sender.Gather(ctx, []byte("x"))
		res <- result{replies, err}
	}()
	<-holding
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	close(release)
	r := <-res
	if r.err != nil || len(r.replies) != 2 {
		t.Fatalf("Gather through a shutdown: %+v, %v", r.replies, r.err)
	}
	for _, rep := range r.replies {
		switch rep.From {
		case holder.ID():
			if rep.Err != nil || string(rep.Body) != "answered" {
				t.Errorf("the holding member: %q, %v", rep.Body, rep.Err)
			}
		case idle.ID():
			if !errors.Is(rep.Err, socketbus.ErrServerClosed) {
				t.Errorf("the member never given its part: %v, want ErrServerClosed", rep.Err)
			}
		}
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
