package socketbus_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/server"
)

// serveAs runs a Serve on c until the test ends, answering every request
// with fn.
func serveAs(t *testing.T, c *socketbus.Client, fn func(*socketbus.Request)) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Serve(ctx, socketbus.HandlerFunc(fn))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// runCounter counts the requests each member's handler ran, by request ID.
type runCounter struct {
	mu   sync.Mutex
	runs map[string]int // member/request
}

func (rc *runCounter) add(member socketbus.ID, req socketbus.ID) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.runs == nil {
		rc.runs = make(map[string]int)
	}
	rc.runs[member.String()+"/"+req.String()]++
}

func (rc *runCounter) total() (runs, twice int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	for _, n := range rc.runs {
		runs += n
		if n > 1 {
			twice++
		}
	}
	return runs, twice
}

func TestGatherEveryMemberOnce(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-every")
	sender := dial(t, addr, ch)
	var rc runCounter
	want := map[socketbus.ID]bool{}
	for i := 0; i < 5; i++ {
		m := dial(t, addr, ch)
		want[m.ID()] = true
		serveAs(t, m, func(r *socketbus.Request) {
			rc.add(m.ID(), r.ID)
			body, _ := io.ReadAll(r.Body)
			r.ResponseHeader().Set("Member", m.ID().String())
			_ = r.Respond(stringsReader(m.ID().String() + ":" + string(body)))
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for round := 0; round < 20; round++ {
		replies, err := sender.Gather(ctx, []byte("ping"), socketbus.WithHeader(socketbus.Header{"Round": {"x"}}))
		if err != nil {
			t.Fatalf("round %d: Gather: %v", round, err)
		}
		if len(replies) != len(want) {
			t.Fatalf("round %d: %d replies, want %d", round, len(replies), len(want))
		}
		seen := map[socketbus.ID]bool{}
		for _, r := range replies {
			if r.Err != nil {
				t.Fatalf("round %d: reply from %s: %v", round, r.From, r.Err)
			}
			if !want[r.From] || seen[r.From] {
				t.Fatalf("round %d: reply from %s: not a member, or twice", round, r.From)
			}
			seen[r.From] = true
			if got := string(r.Body); got != r.From.String()+":ping" {
				t.Fatalf("round %d: reply body %q from %s", round, got, r.From)
			}
			if got := r.Header.Get("Member"); got != r.From.String() {
				t.Fatalf("round %d: reply header Member %q from %s", round, got, r.From)
			}
		}
	}
	if runs, twice := rc.total(); runs != 100 || twice != 0 {
		t.Fatalf("handlers ran %d times (%d twice), want 100 once each", runs, twice)
	}
}

func TestGatherEndsWhenTheLastMemberAnswers(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-exact")
	sender := dial(t, addr, ch)
	delays := []time.Duration{0, 50 * time.Millisecond, 150 * time.Millisecond}
	answered := make(chan time.Time, len(delays))
	for _, d := range delays {
		m := dial(t, addr, ch)
		serveAs(t, m, func(r *socketbus.Request) {
			// The member works for d: a timer, not a wait for an event.
			<-time.After(d)
			answered <- time.Now()
			_ = r.Respond(nil)
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	replies, err := sender.Gather(ctx, []byte("x"))
	back := time.Now()
	if err != nil || len(replies) != len(delays) {
		t.Fatalf("Gather: %d replies, %v", len(replies), err)
	}
	var last time.Time
	for range delays {
		if at := <-answered; at.After(last) {
			last = at
		}
	}
	if back.Before(last) {
		t.Fatalf("Gather returned before the last member answered")
	}
	if took := back.Sub(start); took < 150*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Gather took %v, want 150 ms plus scheduling, far from the 10 s deadline", took)
	}
	t.Logf("gather took %v; %v after the last answer", back.Sub(start), back.Sub(last))
}

func TestGatherOutcomes(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-outcomes")
	sender := dial(t, addr, ch)
	answers, leaves, fails, silent := dial(t, addr, ch), dial(t, addr, ch), dial(t, addr, ch), dial(t, addr, ch)
	serveAs(t, answers, func(r *socketbus.Request) { _ = r.Respond(stringsReader("ok")) })
	left := make(chan error, 1)
	go func() {
		_, err := leaves.Receive(context.Background())
		leaves.Close() // leaves with the request in hand
		left <- err
	}()
	serveAs(t, fails, func(r *socketbus.Request) {
		_ = r.Fail(&socketbus.RemoteError{Code: "not_found", Message: "no such thing"})
	})
	serveAs(t, silent, func(r *socketbus.Request) { <-r.Context().Done() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	replies, err := sender.Gather(ctx, []byte("x"))
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	if err := <-left; err != nil {
		t.Fatalf("the member that leaves: Receive: %v", err)
	}
	if len(replies) != 4 {
		t.Fatalf("%d replies, want 4", len(replies))
	}
	by := map[socketbus.ID]socketbus.Reply{}
	for _, r := range replies {
		by[r.From] = r
	}
	if r := by[answers.ID()]; r.Err != nil || string(r.Body) != "ok" {
		t.Errorf("answering member: %q, %v", r.Body, r.Err)
	}
	if r := by[leaves.ID()]; !errors.Is(r.Err, socketbus.ErrPeerGone) {
		t.Errorf("member that left: %v, want ErrPeerGone", r.Err)
	}
	var re *socketbus.RemoteError
	if r := by[fails.ID()]; !errors.As(r.Err, &re) || re.Code != "not_found" {
		t.Errorf("failing member: %v, want RemoteError not_found", r.Err)
	}
	if r := by[silent.ID()]; !errors.Is(r.Err, socketbus.ErrTimeout) {
		t.Errorf("silent member: %v, want ErrTimeout", r.Err)
	}
	if took := time.Since(start); took < 1900*time.Millisecond {
		t.Errorf("Gather returned after %v, before the 2 s deadline that the silent member runs to", took)
	}
}

func TestGatherLateJoinerGetsNothing(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-late")
	sender := dial(t, addr, ch)
	early := dial(t, addr, ch)
	got := make(chan struct{})
	release := make(chan struct{})
	serveAs(t, early, func(r *socketbus.Request) {
		close(got)
		<-release
		_ = r.Respond(nil)
	})
	type result struct {
		replies []socketbus.Reply
		err     error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		replies, err := sender.Gather(ctx, []byte("x"))
		res <- result{replies, err}
	}()
	<-got // the server has accepted the gather
	late := dial(t, addr, ch)
	var lateRuns atomic.Int32
	serveAs(t, late, func(r *socketbus.Request) {
		lateRuns.Add(1)
		_ = r.Respond(nil)
	})
	close(release)
	r := <-res
	if r.err != nil || len(r.replies) != 1 || r.replies[0].From != early.ID() {
		t.Fatalf("Gather: %+v, %v; want one reply from the early member", r.replies, r.err)
	}
	// The late member is a member now: a second gather reaches both.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	replies, err := sender.Gather(ctx, []byte("y"))
	if err != nil || len(replies) != 2 {
		t.Fatalf("second Gather: %d replies, %v; want 2", len(replies), err)
	}
	if n := lateRuns.Load(); n != 1 {
		t.Fatalf("the late member ran %d requests, want 1 (the second gather only)", n)
	}
}

func TestGatherNoPeersAndLimit(t *testing.T) {
	_, addr := startServer(t, server.Config{MaxGatherMembers: 2})
	ch := socketbus.ChannelFromName("gather-alone")
	sender := dial(t, addr, ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := sender.Gather(ctx, []byte("x")); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Gather alone: %v, want ErrNoPeers", err)
	}
	if _, err := sender.Publish(ctx, []byte("x")); !errors.Is(err, socketbus.ErrNoPeers) {
		t.Fatalf("Publish alone: %v, want ErrNoPeers", err)
	}
	var runs atomic.Int32
	for i := 0; i < 3; i++ {
		serveAs(t, dial(t, addr, ch), func(r *socketbus.Request) {
			runs.Add(1)
			_ = r.Respond(nil)
		})
	}
	if _, err := sender.Gather(ctx, []byte("x")); !errors.Is(err, socketbus.ErrLimit) {
		t.Fatalf("Gather to 3 members with MaxGatherMembers 2: %v, want ErrLimit", err)
	}
	if n := runs.Load(); n != 0 {
		t.Fatalf("a refused gather ran %d times", n)
	}
}

func TestPublishCounts(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("publish-counts")
	sender := dial(t, addr, ch)
	var published atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		serveAs(t, dial(t, addr, ch), func(r *socketbus.Request) {
			if r.Published() {
				published.Add(1)
			}
			// No answer: a published request wants none.
		})
	}
	// A member using Receive, and one on protocol version 2, which
	// cannot tell a published request from another and answers it.
	recv := dial(t, addr, ch)
	old := dial(t, addr, ch, socketbus.WithProtocolVersion(2))
	wg.Add(2)
	go func() {
		defer wg.Done()
		r, err := recv.Receive(context.Background())
		if err != nil {
			t.Errorf("Receive: %v", err)
			return
		}
		if !r.Published() {
			t.Errorf("Receive: Published() = false")
		}
		_, _ = io.ReadAll(r.Body)
	}()
	go func() {
		defer wg.Done()
		r, err := old.Receive(context.Background())
		if err != nil {
			t.Errorf("v2 Receive: %v", err)
			return
		}
		_ = r.Respond(stringsReader("an answer nobody wants"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := sender.Publish(ctx, []byte("news"))
	wg.Wait()
	if err != nil || n != 5 {
		t.Fatalf("Publish: %d, %v; want 5", n, err)
	}
	if p := published.Load(); p != 3 {
		t.Fatalf("%d Serve handlers saw Published, want 3", p)
	}
}

func TestGatherLargeBodySlowMember(t *testing.T) {
	srv, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-large")
	sender := dial(t, addr, ch)
	const size = 32 << 20
	const seed = 7
	want := patternSum(seed, size)
	for i := 0; i < 4; i++ {
		slow := i == 0
		serveAs(t, dial(t, addr, ch), func(r *socketbus.Request) {
			h := sha256.New()
			var err error
			if slow {
				_, err = io.Copy(h, &pausingReader{r: r.Body, every: 64, pause: time.Millisecond})
			} else {
				_, err = io.Copy(h, r.Body)
			}
			if err != nil {
				_ = r.Fail(err)
				return
			}
			s := sum(h)
			_ = r.Respond(stringsReader(string(s[:])))
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	replies, err := sender.Gather(ctx, patternBytes(seed, size))
	if err != nil || len(replies) != 4 {
		t.Fatalf("Gather: %d replies, %v", len(replies), err)
	}
	for _, r := range replies {
		if r.Err != nil || string(r.Body) != string(want[:]) {
			t.Fatalf("member %s: digest mismatch or %v", r.From, r.Err)
		}
	}
	// At most a window per member and hop, charged at 3/2, and the
	// connections' own buffers: far below the body.
	if peak := srv.Stats().MemoryPeakBytes; peak > 8<<20 {
		t.Fatalf("the server's memory peaked at %d bytes for a 32 MiB body to 4 members", peak)
	}
	t.Logf("server memory peak %d KiB", srv.Stats().MemoryPeakBytes>>10)
}

// pausingReader reads r, pausing after every few reads: a member that
// reads slowly.
type pausingReader struct {
	r     io.Reader
	n     int
	every int
	pause time.Duration
}

func (s *pausingReader) Read(p []byte) (int, error) {
	s.n++
	if s.n%s.every == 0 {
		<-time.After(s.pause)
	}
	return s.r.Read(p)
}

// patternBytes is testpeer.NewPattern(seed, n), in memory.
func patternBytes(seed uint64, n int64) []byte {
	b, err := io.ReadAll(testpeer.NewPattern(seed, n))
	if err != nil {
		panic(err)
	}
	return b
}

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

// TestGatherReplyOverTheLimit: a reply larger than the client takes
// (64 MiB when the server sets no limit) is that member's ErrTooLarge;
// the rest of its stream is ignored, and the other replies arrive.
func TestGatherReplyOverTheLimit(t *testing.T) {
	_, addr := startServer(t, server.Config{})
	ch := socketbus.ChannelFromName("gather-over")
	sender := dial(t, addr, ch)
	big, small := dial(t, addr, ch), dial(t, addr, ch)
	serveAs(t, big, func(r *socketbus.Request) { _ = r.Respond(testpeer.NewPattern(1, 65<<20)) })
	serveAs(t, small, func(r *socketbus.Request) { _ = r.Respond(stringsReader("small")) })
	// The big member's part runs to the deadline (the client grants it
	// no more credit), so the deadline is the test's length; it leaves
	// room for 64 MiB to cross on a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	replies, err := sender.Gather(ctx, []byte("x"))
	if err != nil || len(replies) != 2 {
		t.Fatalf("Gather: %d replies, %v; want 2 and no error", len(replies), err)
	}
	for _, r := range replies {
		switch r.From {
		case big.ID():
			if !errors.Is(r.Err, socketbus.ErrTooLarge) {
				t.Errorf("the 65 MiB reply: %v, want ErrTooLarge", r.Err)
			}
		case small.ID():
			if r.Err != nil || string(r.Body) != "small" {
				t.Errorf("the small reply: %q, %v", r.Body, r.Err)
			}
		}
	}
	if err := sender.Err(); err != nil {
		t.Fatalf("the sender's connection: %v", err)
	}
}
