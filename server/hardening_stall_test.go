package server_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/testpeer"
	"github.com/socketbus/socketbus/internal/wire"
	"github.com/socketbus/socketbus/server"

	"github.com/socketbus/socketbus/internal/heapsample"
)

// hardClosings collects how long each stalled connection lasted and how
// the server closed it.
type hardClosings struct {
	mu      sync.Mutex
	elapsed []time.Duration
	counts  hardCounts
}

func (c *hardClosings) add(d time.Duration, kind string, err error) {
	c.mu.Lock()
	c.elapsed = append(c.elapsed, d)
	c.mu.Unlock()
	c.counts.Add(kind, err)
}

// check fails t unless every connection was closed within [least, most]
// and reports min, median and max.
func (c *hardClosings) check(t *testing.T, least, most time.Duration) string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.Sort(c.elapsed)
	if len(c.elapsed) == 0 {
		t.Fatalf("no connection was timed")
	}
	lo, mid, hi := c.elapsed[0], c.elapsed[len(c.elapsed)/2], c.elapsed[len(c.elapsed)-1]
	if lo < least || hi > most {
		t.Errorf("closed after between %v and %v, want every one within [%v, %v]", lo, hi, least, most)
	}
	return fmt.Sprintf("closed after min %v, median %v, max %v", lo.Round(time.Millisecond), mid.Round(time.Millisecond), hi.Round(time.Millisecond))
}

// TestHardeningStalledFrames: 1,000 joined connections stop inside a
// frame, half after 40 of the 68 header bytes and half after half of a
// 64 KiB payload. Every one gets an idle error frame and a close at the
// frame read deadline, not before; the peak live heap of the process
// (server and test clients) is reported.
func TestHardeningStalledFrames(t *testing.T) {
	const (
		conns       = 1000
		readTimeout = time.Second
	)
	srv, addr := startServer(t, server.Config{FrameReadTimeout: readTimeout})
	channel := socketbus.ChannelFromName("hard-stalled-frames")
	baseConns, baseline := srv.Stats().Connections, runtime.NumGoroutine()
	heapBefore := hardLiveHeap()
	sampler := heapsample.Start(5 * time.Millisecond)

	// Join them all first, 32 at a time.
	joined := make([]*testpeer.Conn, conns)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	errs := make(chan error, conns)
	for i := range joined {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := hardJoin(addr, channel, "")
			if err != nil {
				errs <- err
				return
			}
			joined[i] = c
		}()
	}
	wg.Wait()
	close(errs)
	for _, c := range joined {
		if c != nil {
			defer c.Close()
		}
	}
	if err := <-errs; err != nil {
		t.Fatalf("join: %v", err)
	}

	var closings hardClosings
	for i, c := range joined {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := c.Header(wire.TypeChunk, wire.FlagRequest, uuid.New())
			h.Sequence = 1
			kind := "40 header bytes"
			partial := wire.AppendHeader(nil, &h)[:40]
			if i%2 == 1 {
				kind = "half a payload"
				h.Length = wire.MaxFramePayload
				partial = append(wire.AppendHeader(nil, &h), make([]byte, wire.MaxFramePayload/2)...)
			}
			start := time.Now()
			if _, err := c.NC.Write(partial); err != nil {
				closings.counts.Add("write failed", err)
				return
			}
			_, code, err := c.Refusal()
			switch {
			case err != nil:
				kind = "not refused"
			case code != wire.CodeIdle:
				kind, err = "wrong code", fmt.Errorf("error frame code: got %v, want idle", code)
			}
			closings.add(time.Since(start), kind, err)
		}()
	}
	wg.Wait()
	peak := sampler.Stop()
	open, goroutines := hardSettle(t, srv, baseConns, baseline, 30*time.Second)

	got := closings.counts.Get("40 header bytes") + closings.counts.Get("half a payload")
	timing := closings.check(t, readTimeout, readTimeout+5*time.Second)
	t.Logf("%d connections joined, then stalled inside a frame (read deadline %v): %d got an idle error frame and a close (%v); %s; peak live heap %.1f MiB, %.1f MiB over the %.1f MiB before they connected (%.0f KiB per connection, test clients included); leaks %d",
		conns, readTimeout, got, &closings.counts, timing, float64(peak)/(1<<20), float64(peak-min(peak, heapBefore))/(1<<20), float64(heapBefore)/(1<<20),
		float64(peak-min(peak, heapBefore))/1024/conns, max(open-baseConns, 0)+max(goroutines-baseline, 0))
	if got != conns {
		t.Errorf("connections closed with an idle error frame: got %d, want %d (%v)", got, conns, &closings.counts)
	}
	if open > baseConns || goroutines > baseline {
		t.Errorf("after the stalls: %d connections open (baseline %d), %d goroutines (baseline %d)", open, baseConns, goroutines, baseline)
	}
}

// TestHardeningNeverJoin: 1,000 connections that never finish a join (a
// third send nothing, a third part of a join header, a third a join header
// and half its token) are all closed at JoinTimeout, each with an idle
// error frame or at least an EOF.
func TestHardeningNeverJoin(t *testing.T) {
	const (
		conns       = 1000
		joinTimeout = time.Second
	)
	srv, addr := startServer(t, server.Config{JoinTimeout: joinTimeout})
	channel := socketbus.ChannelFromName("hard-never-join")
	baseConns, baseline := srv.Stats().Connections, runtime.NumGoroutine()

	var closings hardClosings
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			c, err := hardDial(addr)
			if err != nil {
				closings.counts.Add("dial failed", err)
				return
			}
			defer c.Close()
			c.Channel = channel
			join := c.Header(wire.TypeStart, wire.FlagJoin, uuid.New())
			join.Final, join.Length = true, 100
			var partial []byte
			switch i % 3 {
			case 1:
				partial = wire.AppendHeader(nil, &join)[:30]
			case 2:
				partial = append(wire.AppendHeader(nil, &join), make([]byte, 50)...)
			}
			if len(partial) > 0 {
				if _, err := c.NC.Write(partial); err != nil {
					closings.counts.Add("write failed", err)
					return
				}
			}
			_, code, err := c.Refusal()
			kind := "idle error frame and EOF"
			switch {
			case errors.Is(err, testpeer.ErrNoErrorFrame):
				kind, err = "EOF alone", nil
			case err != nil:
				kind = "not closed cleanly"
			case code != wire.CodeIdle:
				kind, err = "wrong code", fmt.Errorf("error frame code: got %v, want idle", code)
			}
			closings.add(time.Since(start), kind, err)
		}()
	}
	wg.Wait()
	open, goroutines := hardSettle(t, srv, baseConns, baseline, 30*time.Second)

	got := closings.counts.Get("idle error frame and EOF") + closings.counts.Get("EOF alone")
	timing := closings.check(t, joinTimeout, joinTimeout+5*time.Second)
	t.Logf("%d connections that never joined (JoinTimeout %v): %d closed (%v); %s; leaks %d",
		conns, joinTimeout, got, &closings.counts, timing, max(open-baseConns, 0)+max(goroutines-baseline, 0))
	if got != conns {
		t.Errorf("connections closed at the join timeout: got %d, want %d (%v)", got, conns, &closings.counts)
	}
	if open > baseConns || goroutines > baseline {
		t.Errorf("after the join timeouts: %d connections open (baseline %d), %d goroutines (baseline %d)", open, baseConns, goroutines, baseline)
	}
}

// TestHardeningStatsWhileJoining: Server.Stats counts a connection that has
// not joined yet, and survives it: it once read the traffic counters of the
// connection's frame layer, which exists only after the join, and so
// panicked with the server's lock held whenever it ran during a join. The
// test holds a join in Authenticate, which the server calls before it
// makes the frame layer, and reads Stats there.
func TestHardeningStatsWhileJoining(t *testing.T) {
	joining, release := make(chan struct{}), make(chan struct{})
	srv, addr := startServer(t, server.Config{Authenticate: func(_, _ uuid.UUID, _ string) error {
		close(joining)
		<-release
		return nil
	}})
	c, err := hardDial(addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	joined := make(chan error, 1)
	go func() { joined <- c.JoinChannel(socketbus.ChannelFromName("hard-stats-joining"), nil) }()
	select {
	case <-joining:
	case <-time.After(10 * time.Second):
		t.Fatalf("Authenticate not called within 10s of the join")
	}
	got := srv.Stats().Connections
	close(release)
	if got != 1 {
		t.Fatalf("open connections: got %d, want 1 (a connection still joining)", got)
	}
	if err := <-joined; err != nil {
		t.Fatalf("join after Authenticate: %v", err)
	}
}
