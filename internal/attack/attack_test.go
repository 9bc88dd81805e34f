//go:build linux

package attack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/internal/wire"
)

// attackTime bounds each attack: it stops by itself once its work is done
// or this much time has passed, whichever comes first.
const attackTime = 6 * time.Second

// The memory ceiling the server runs with when it has --max-memory, and
// how far above it the process's peak resident set may go (the runtime,
// buffers outside the budget, fragmentation).
const (
	maxMemory     = 256 << 20
	maxMemoryFlag = "256MiB"
	memorySlack   = 128 << 20
)

// An attack runs against the server at addr until ctx ends (every
// connection it dials fails its reads and writes at deadline) and returns
// a line saying what it did. An error means the attack could not be set
// up; what the server does to the attacker (closing its connections,
// refusing its requests) is part of the summary, not an error.
type attack struct {
	name string
	what string
	run  func(ctx context.Context, addr string, deadline time.Time) (string, error)
}

var attacks = []attack{
	{"a_tiny_chunks_queued", "300+ queued requests spend their 16 KiB initial credit in 1-byte chunks", attackTinyQueued},
	{"b_tiny_chunks_delivered", "1-byte chunks on delivered requests whose receivers never grant credit", attackTinyDelivered},
	{"c_pings_never_read", "40 connections flood pings and never read", attackPings},
	{"d_refused_starts_never_read", "40 connections flood refused request starts and never read", attackRefused},
	{"e_cancels_64k", "cancels with 64 KiB messages relayed to receivers that do not read", attackCancels},
	{"f_honest_16k_many_streams", "16 KiB chunks on many streams and channels to receivers that never grant", attackHonestMany},
	{"g_two_frame_crash", "start|request, then response|credit for the same request", attackTwoFrames},
	{"h_whole_responses_burst", "receivers hold 900 requests each and answer them all at once with 64 KiB whole responses (v2)", attackWholeBurst},
	{"j_gathers_to_stalled_members", "4 senders flood 16 KiB gathers to 64 members that never read", attackGathers},
}

// TestAttacks runs each attack against a fresh `socketbus serve` process
// while a bystander pair on another channel keeps making round trips. The
// server must stay up, the bystander must complete requests in every
// second of the attack, and, when the server has --max-memory, its peak
// resident set must stay within the ceiling plus slack. Peaks are always
// logged: "attack X: VmHWM N MiB".
func TestAttacks(t *testing.T) { runAttacks(t, false) }

// TestAttacksWebSocket runs the same attacks over WebSocket (serve
// --websocket): the attackers' frames travel in binary messages, the
// bystander stays on TCP.
func TestAttacksWebSocket(t *testing.T) { runAttacks(t, true) }

// runAttacks runs every attack, over WebSocket when ws is set.
func runAttacks(t *testing.T, ws bool) {
	if testing.Short() {
		t.Skip("the attack suite takes about a minute")
	}
	if raceEnabled {
		// The server process is never race-built, but the bystanders'
		// windows need the machine to themselves: .ci/run runs the suite
		// on its own, without -race, after the race pass.
		t.Skip("the attack suite runs without -race, on its own (.ci/run)")
	}
	bin := buildServe(t)
	limited := supportsMaxMemory(t, bin)
	var args []string
	if limited {
		args = []string{"--max-memory", maxMemoryFlag}
	} else {
		t.Logf("serve has no --max-memory flag: peak memory is reported, not asserted")
	}
	if ws {
		args = append(args, "--websocket", "127.0.0.1:0")
	}
	var mu sync.Mutex
	rows := []string{"| attack | VmHWM MiB | bystander requests | server alive | what the attack did |", "|---|---|---|---|---|"}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			hwm, completed, alive, summary := runAttack(t, bin, args, limited, ws, a)
			mu.Lock()
			rows = append(rows, fmt.Sprintf("| %s | %s | %d | %v | %s |", a.name, hwm, completed, alive, summary))
			mu.Unlock()
		})
	}
	t.Logf("attack figures (max-memory %v, websocket %v):\n%s", limited, ws, strings.Join(rows, "\n"))
}

// runAttack runs one attack against a server of its own and checks the
// server came through. It returns the figures for the table.
func runAttack(t *testing.T, bin string, args []string, limited, ws bool, a attack) (hwmMiB string, completed int, alive bool, summary string) {
	srv := startServe(t, bin, args...)
	target := srv.addr
	if ws {
		target = srv.ws
	}
	by, err := startBystander(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), attackTime)
	deadline, _ := ctx.Deadline()
	summary, err = a.run(ctx, target, deadline)
	cancel()
	res := by.stop()
	if err != nil {
		t.Errorf("attack %s: %v", a.name, err)
	}
	t.Logf("attack %s (%s): %s", a.name, a.what, summary)

	alive, exit := srv.alive()
	hwmMiB = "n/a (process gone)"
	if alive {
		hwm, err := srv.vmHWM()
		if err != nil {
			t.Fatalf("reading the server's peak memory: %v", err)
		}
		hwmMiB = fmt.Sprint(hwm >> 20)
		t.Logf("attack %s: VmHWM %d MiB", a.name, hwm>>20)
		if limited && hwm > maxMemory+memorySlack {
			t.Errorf("attack %s: server peak resident set %d MiB, want at most %d MiB (--max-memory %s + %d MiB)",
				a.name, hwm>>20, (maxMemory+memorySlack)>>20, maxMemoryFlag, memorySlack>>20)
		}
	} else {
		t.Errorf("attack %s: the server process died (%v); want it still serving. stderr:\n%s", a.name, exit, tail(srv.stderr.String(), 3000))
	}

	t.Logf("attack %s: bystander completed %d requests, per %v: %v", a.name, res.completed, bystanderWindow, res.windows)
	if len(res.errs) > 0 {
		t.Errorf("attack %s: bystander had %d failures, want 0; first: %v", a.name, len(res.errs), res.errs[0])
	}
	if res.completed == 0 {
		t.Errorf("attack %s: bystander completed 0 requests, want some", a.name)
	} else if empty := res.emptyWindows(); len(empty) > 0 {
		t.Errorf("attack %s: bystander completed no request in windows %v of %v (of %d), want at least one in each",
			a.name, empty, bystanderWindow, len(res.windows))
	}
	return hwmMiB, res.completed, alive, summary
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// channelFor names the channel an attack works on.
func channelFor(name string) wire.ID { return wire.ID(socketbus.ChannelFromName("attack-" + name)) }

// writeErr describes how an attacker's writes ended: at its deadline, or
// because the server closed or reset the connection.
func writeErr(err error) string {
	switch {
	case err == nil:
		return "all written"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "writes blocked until the deadline"
	}
	return "writes failed: " + err.Error()
}

// runStreamers runs the streamers' senders in parallel until ctx ends or
// each has nothing left to send.
func runStreamers(ctx context.Context, ss []*streamer) (chunks, refused int64, ends map[string]int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	ends = map[string]int{}
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.run(ctx)
			mu.Lock()
			ends[writeErr(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	for _, s := range ss {
		chunks += s.chunks.Load()
		refused += s.refused.Load()
	}
	return chunks, refused, ends
}

// attackTinyQueued: a peer is joined to the channel but never polls, so
// every request queues; 4 connections open 80 requests each and spend
// each request's 16 KiB of initial credit in 1-byte chunks.
func attackTinyQueued(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const conns, perConn = 4, 80
	ch := channelFor("a")
	peer, err := dialRaw(addr, ch, deadline, 0)
	if err != nil {
		return "", err
	}
	defer peer.Close()
	senders, err := dialMany(addr, ch, deadline, 0, conns)
	if err != nil {
		return "", err
	}
	defer closeAll(senders)
	var ss []*streamer
	for _, c := range senders {
		s, err := startStreams(c, perConn, 10000, 1, false)
		if err != nil {
			return "", err
		}
		ss = append(ss, s)
	}
	chunks, refused, ends := runStreamers(ctx, ss)
	return fmt.Sprintf("%d requests, %d 1-byte chunks of the %d their credit allows, %d requests ended by the server; %v",
		conns*perConn, chunks, conns*perConn*wire.InitialRequestCredit, refused, ends), nil
}

// pollAndStop sends n polls on each receiver, waits until the server has
// registered them, and from then on never reads again.
func pollAndStop(rs []*rawConn, n int) error {
	for _, r := range rs {
		for range n {
			r.put(wire.TypeStart, wire.FlagReceive, r.newID(), 0, true, 0, nil)
		}
		if _, err := r.sync(); err != nil {
			return fmt.Errorf("registering polls: %w", err)
		}
	}
	return nil
}

// attackTinyDelivered: receivers poll, then never read or grant credit;
// senders stream 1-byte chunks on the requests delivered to them, using
// every grant the server makes.
func attackTinyDelivered(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const receivers, polls, senders, perConn = 4, 8, 4, 8
	ch := channelFor("b")
	rs, err := dialMany(addr, ch, deadline, 4096, receivers)
	if err != nil {
		return "", err
	}
	defer closeAll(rs)
	if err := pollAndStop(rs, polls); err != nil {
		return "", err
	}
	cs, err := dialMany(addr, ch, deadline, 0, senders)
	if err != nil {
		return "", err
	}
	defer closeAll(cs)
	var ss []*streamer
	for _, c := range cs {
		s, err := startStreams(c, perConn, 10000, 1, true)
		if err != nil {
			return "", err
		}
		ss = append(ss, s)
	}
	chunks, refused, ends := runStreamers(ctx, ss)
	return fmt.Sprintf("%d requests delivered to %d non-granting receivers, %d 1-byte chunks sent, %d requests ended by the server; %v",
		senders*perConn, receivers, chunks, refused, ends), nil
}

// flood has each connection write batch, over and over, until its writes
// fail or block past the deadline; it never reads. It returns how many
// batches went out and how the connections' writes ended.
func flood(ctx context.Context, cs []*rawConn, batch func(c *rawConn)) (int64, map[string]int) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var batches atomic.Int64
	ends := map[string]int{}
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for ctx.Err() == nil {
				batch(c)
				if err = c.Flush(); err != nil {
					break
				}
				batches.Add(1)
			}
			mu.Lock()
			ends[writeErr(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return batches.Load(), ends
}

// attackPings: 40 connections with small receive buffers flood pings with
// 8-byte payloads and never read the pongs.
func attackPings(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const conns, perBatch = 40, 1024
	cs, err := dialMany(addr, channelFor("c"), deadline, 4096, conns)
	if err != nil {
		return "", err
	}
	defer closeAll(cs)
	payload := []byte("8 bytes!")
	batches, ends := flood(ctx, cs, func(c *rawConn) {
		for range perBatch {
			c.put(wire.TypeStart, wire.FlagPing, c.newID(), 0, true, 0, payload)
		}
	})
	return fmt.Sprintf("%d pings written; %v", batches*perBatch, ends), nil
}

// attackRefused: 40 connections alone on their channel flood request
// starts, each refused with a no_peers error frame they never read.
func attackRefused(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const conns, perBatch = 40, 1024
	cs, err := dialMany(addr, channelFor("d"), deadline, 4096, conns)
	if err != nil {
		return "", err
	}
	defer closeAll(cs)
	batches, ends := flood(ctx, cs, func(c *rawConn) {
		for range perBatch {
			c.put(wire.TypeStart, wire.FlagRequest, c.newID(), 0, false, 10000, nil)
		}
	})
	return fmt.Sprintf("%d request starts written; %v", batches*perBatch, ends), nil
}

// attackCancels: 8 receivers poll 1024 times each, then never read; 4
// senders start requests, which go to those polls, and cancel each at
// once with a 64 KiB message, which the server relays to the receiver.
func attackCancels(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const receivers, polls, senders = 8, 1024, 4
	ch := channelFor("e")
	rs, err := dialMany(addr, ch, deadline, 4096, receivers)
	if err != nil {
		return "", err
	}
	defer closeAll(rs)
	if err := pollAndStop(rs, polls); err != nil {
		return "", err
	}
	cs, err := dialMany(addr, ch, deadline, 0, senders)
	if err != nil {
		return "", err
	}
	defer closeAll(cs)
	cancel := wire.AppendError(nil, wire.CodeCancelled, strings.Repeat("x", wire.MaxFramePayload))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var cancels atomic.Int64
	ends := map[string]int{}
	for _, c := range cs {
		c.discard() // the echoes of its own cancels
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for i := 0; i < receivers*polls/senders && ctx.Err() == nil; i++ {
				id := c.newID()
				c.put(wire.TypeStart, wire.FlagRequest, id, 0, false, 10000, nil)
				c.put(wire.TypeError, wire.FlagRequest, id, 0, true, 0, cancel)
				if err = c.flushIfFull(); err != nil {
					break
				}
				cancels.Add(1)
			}
			if err == nil {
				err = c.Flush()
			}
			mu.Lock()
			ends[writeErr(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return fmt.Sprintf("%d requests delivered to %d non-reading receivers and cancelled with %d-byte messages; %v",
		cancels.Load(), receivers, len(cancel)-2, ends), nil
}

// attackHonestMany: on each of 8 channels a receiver polls 96 times and
// then never reads or grants; a sender starts 288 requests, 96 delivered
// and 192 queued, and streams 16 KiB chunks on all of them as its credit
// allows. Each stream and each channel's queue stays within its bound;
// together they add up.
func attackHonestMany(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const channels, polls, perConn = 8, 96, 288
	var all []*rawConn
	defer func() { closeAll(all) }()
	var ss []*streamer
	for i := range channels {
		ch := channelFor(fmt.Sprintf("f%d", i))
		r, err := dialRaw(addr, ch, deadline, 4096)
		if err != nil {
			return "", err
		}
		all = append(all, r)
		if err := pollAndStop([]*rawConn{r}, polls); err != nil {
			return "", err
		}
		c, err := dialRaw(addr, ch, deadline, 0)
		if err != nil {
			return "", err
		}
		all = append(all, c)
		s, err := startStreams(c, perConn, 10000, 16<<10, true)
		if err != nil {
			return "", err
		}
		ss = append(ss, s)
	}
	chunks, refused, ends := runStreamers(ctx, ss)
	return fmt.Sprintf("%d channels × %d requests (%d delivered each), %d MiB sent in 16 KiB chunks, %d requests ended by the server; %v",
		channels, perConn, polls, chunks*16>>10, refused, ends), nil
}

// attackTwoFrames: a request queued on a channel whose other member never
// polls, then a response credit grant for it from its own sender: a
// response stream that has no receiver.
func attackTwoFrames(ctx context.Context, addr string, deadline time.Time) (string, error) {
	ch := channelFor("g")
	peer, err := dialRaw(addr, ch, deadline, 0)
	if err != nil {
		return "", err
	}
	defer peer.Close()
	c, err := dialRaw(addr, ch, deadline, 0)
	if err != nil {
		return "", err
	}
	defer c.Close()
	id := c.newID()
	c.put(wire.TypeStart, wire.FlagRequest, id, 0, false, 5000, nil)
	c.put(wire.TypeChunk, wire.FlagResponse|wire.FlagCredit, id, 0, false, 0, wire.AppendCredit(nil, 1))
	n, err := c.sync()
	outcome := fmt.Sprintf("the server answered a ping after the two frames (%d frames before the pong)", n)
	if err != nil {
		outcome = fmt.Sprintf("no pong after the two frames: %v", err)
	}
	// Watch the bystander for a while after the two frames: a server that
	// survived them must go on serving it.
	watch := time.NewTimer(3 * time.Second)
	defer watch.Stop()
	select {
	case <-watch.C:
	case <-ctx.Done():
	}
	return outcome, nil
}

// attackWholeBurst: on each of 4 channels a v2 receiver polls 900 times, a
// v2 requester sends 900 whole requests and reads everything the server
// sends, and once the receiver holds all 900 it answers them at once with
// 64 KiB whole responses; then again, until the attack's time is up. The
// responses are charged to the receiver, not counted toward the
// requester's slow-consumer cap: no requester may be cut.
func attackWholeBurst(ctx context.Context, addr string, deadline time.Time) (string, error) {
	const pairs, held = 4, 900
	body := make([]byte, wire.MaxFramePayload)
	var wg sync.WaitGroup
	var rounds, responses, cut atomic.Int64
	var mu sync.Mutex
	ends := map[string]int{}
	var all []*rawConn
	defer func() { closeAll(all) }()
	for i := range pairs {
		ch := channelFor(fmt.Sprintf("h%d", i))
		r, err := dialRawVersion(addr, ch, deadline, 0, wire.Version2)
		if err != nil {
			return "", err
		}
		all = append(all, r)
		v, err := dialRawVersion(addr, ch, deadline, 0, wire.Version2)
		if err != nil {
			return "", err
		}
		all = append(all, v)
		answered := make(chan struct{}, 1)
		v.readers.Add(1)
		go func() {
			// Read as fast as possible. An end other than the deadline
			// or our own Close is the server cutting the requester.
			defer v.readers.Done()
			got := 0
			for {
				h, _, err := v.ReadFrame()
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
						cut.Add(1)
					}
					return
				}
				if h.Type == wire.TypeStart && h.Flags == wire.FlagResponse && h.Final {
					responses.Add(1)
					if got++; got%held == 0 {
						answered <- struct{}{}
					}
				}
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			for ctx.Err() == nil && err == nil {
				for range held {
					r.put(wire.TypeStart, wire.FlagReceive, r.newID(), 0, true, 0, nil)
				}
				if err = r.Flush(); err != nil {
					break
				}
				for range held {
					v.put(wire.TypeStart, wire.FlagRequest, v.newID(), 0, true, 10000, []byte("q"))
				}
				if err = v.Flush(); err != nil {
					break
				}
				var ids []wire.ID
				for len(ids) < held && err == nil {
					var h wire.Header
					h, _, err = r.ReadFrame()
					if err == nil && h.Type == wire.TypeStart && h.Flags == wire.FlagReceive {
						ids = append(ids, h.RequestID)
					}
				}
				for _, id := range ids {
					r.put(wire.TypeStart, wire.FlagResponse, id, 0, true, 0, body)
					if err = r.flushIfFull(); err != nil {
						break
					}
				}
				if err == nil {
					err = r.Flush()
				}
				if err != nil {
					break
				}
				select {
				case <-answered:
					rounds.Add(1)
				case <-ctx.Done():
				}
			}
			mu.Lock()
			ends[writeErr(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if n := cut.Load(); n > 0 {
		return "", fmt.Errorf("%d of %d requesters were cut while reading as fast as they could", n, pairs)
	}
	return fmt.Sprintf("%d rounds of %d requests answered at once with 64 KiB, %d responses read, requesters cut: %d; %v",
		rounds.Load(), held, responses.Load(), cut.Load(), ends), nil
}
