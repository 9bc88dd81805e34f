//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/socketbus/socketbus"
)

// rollNode is one serve process of a rolling-restart bus, restartable on
// the same addresses.
type rollNode struct {
	name, addr, listen string
	args               []string
	*serveProc
}

// rollBus is three serve processes forming one bus, the second and third
// routed to the first.
type rollBus struct {
	t     *testing.T
	bin   string
	nodes []*rollNode
}

func startRollBus(t *testing.T, bin string) *rollBus {
	b := &rollBus{t: t, bin: bin}
	var route string
	for i, name := range []string{"n1", "n2", "n3"} {
		n := &rollNode{name: name, addr: freeLoopbackAddr(t), listen: freeLoopbackAddr(t)}
		n.args = []string{"serve", "--addr", n.addr, "--cluster-name", "roll", "--node", name, "--cluster-listen", n.listen}
		if i == 0 {
			route = "nats://" + n.listen
		} else {
			n.args = append(n.args, "--routes", route)
		}
		b.nodes = append(b.nodes, n)
	}
	// Routes from the first node to the others too, so that a restarted
	// first node finds the bus again.
	for _, n := range b.nodes[1:] {
		b.nodes[0].args = append(b.nodes[0].args, "--routes", "nats://"+n.listen)
	}
	for _, n := range b.nodes {
		b.start(n)
	}
	// A failure names one node's log; the others' tell the other side.
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range b.nodes {
				t.Logf("%s's stderr:\n%s", n.name, n.stderr)
			}
		}
	})
	for _, n := range b.nodes {
		b.waitJoined(n, 1)
	}
	return b
}

// start runs n's serve process and waits until it listens.
func (b *rollBus) start(n *rollNode) {
	p := startProc(b.t, b.bin, nil, n.args...)
	p.waitLine(p.stdout, "socketbus listening on")
	n.serveProc = &serveProc{proc: p, addr: n.addr}
}

// waitJoined waits until every other node has logged n joining the bus
// times times, since their start, and n has logged every other joining.
func (b *rollBus) waitJoined(n *rollNode, times int) {
	for _, o := range b.nodes {
		if o == n {
			continue
		}
		o.waitLineCount(o.stderr, "node "+n.name+" joined the bus", times)
		n.waitLineCount(n.stderr, "node "+o.name+" joined the bus", 1)
	}
}

// addrs lists the bus's client addresses, n's first.
func (b *rollBus) addrs(first int) []string {
	var out []string
	for i := range b.nodes {
		out = append(out, b.nodes[(first+i)%len(b.nodes)].addr)
	}
	return out
}

// rollStats counts what the clients of a rolling restart saw.
type rollStats struct {
	mu        sync.Mutex
	runs      map[[32]byte]int // handler runs by body hash
	ok        map[[32]byte]bool
	failed    map[string]int // failed calls by error
	latencies map[string][]time.Duration
}

func (s *rollStats) ran(sum [32]byte) {
	s.mu.Lock()
	s.runs[sum]++
	s.mu.Unlock()
}

func (s *rollStats) ended(phase string, sum [32]byte, took time.Duration, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failed[errorKind(err)]++
		return
	}
	s.ok[sum] = true
	s.latencies[phase] = append(s.latencies[phase], took)
}

func errorKind(err error) string {
	for _, k := range []error{socketbus.ErrDisconnected, socketbus.ErrNotDelivered, socketbus.ErrPeerGone,
		socketbus.ErrNoPeers, socketbus.ErrTimeout, socketbus.ErrServerClosed} {
		if errors.Is(err, k) {
			return k.Error()
		}
	}
	return err.Error()
}

// runRoll runs receivers and requesters against b while restart restarts
// each node in turn, and returns what they saw.
func runRoll(t *testing.T, b *rollBus, restart func(n *rollNode)) *rollStats {
	st := &rollStats{runs: map[[32]byte]int{}, ok: map[[32]byte]bool{}, failed: map[string]int{}, latencies: map[string][]time.Duration{}}
	ch := socketbus.ChannelFromName("roll")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dial := func(i int) *socketbus.Client {
		addrs := b.addrs(i)
		dctx, dcancel := context.WithTimeout(ctx, waitLimit)
		defer dcancel()
		c, err := socketbus.Dial(dctx, addrs[0], ch, socketbus.WithServers(addrs[1:]...))
		if err != nil {
			t.Fatalf("dial %s: %v", addrs[0], err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	handler := socketbus.HandlerFunc(func(req *socketbus.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, req.Body); err != nil {
			req.Fail(err)
			return
		}
		sum := [32]byte(h.Sum(nil))
		st.ran(sum)
		req.Respond(bytes.NewReader(sum[:]))
	})
	var serving sync.WaitGroup
	for i := range 6 {
		c := dial(i % 3)
		serving.Add(1)
		go func() {
			defer serving.Done()
			c.Serve(ctx, handler, socketbus.WithConcurrency(8))
		}()
	}
	var phase atomic.Value
	phase.Store("warmup") // not reported: connections and pools warming up
	var calls sync.WaitGroup
	stop := make(chan struct{})
	call := func(c *socketbus.Client, body []byte) {
		sum := sha256.Sum256(body)
		cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
		defer ccancel()
		start := time.Now()
		var out bytes.Buffer
		err := c.Send(cctx, bytes.NewReader(body), &out)
		if err == nil && !bytes.Equal(out.Bytes(), sum[:]) {
			err = fmt.Errorf("response %x, want %x", out.Bytes(), sum[:])
		}
		st.ended(phase.Load().(string), sum, time.Since(start), err)
	}
	for g := range 12 {
		c := dial(g % 3)
		calls.Add(1)
		go func() {
			defer calls.Done()
			for n := 0; n < 1_000_000; n++ {
				select {
				case <-stop:
					return
				default:
				}
				call(c, fmt.Appendf(nil, "roll %d %d", g, n))
			}
		}()
	}
	for g := range 2 { // streamed 16 MiB bodies, one every half second or so, in every phase
		c := dial(g)
		calls.Add(1)
		go func() {
			defer calls.Done()
			pace := time.NewTicker(500 * time.Millisecond)
			defer pace.Stop()
			for n := 0; n < 40; n++ {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				body := make([]byte, 16<<20)
				rand.NewChaCha8([32]byte{byte(g), byte(n)}).Read(body)
				call(c, body)
			}
		}()
	}
	warm := time.NewTimer(500 * time.Millisecond)
	<-warm.C
	phase.Store("steady")
	steady := time.NewTimer(2 * time.Second)
	<-steady.C
	phase.Store("roll")
	for _, n := range b.nodes {
		restart(n)
	}
	phase.Store("after")
	after := time.NewTimer(time.Second)
	<-after.C
	close(stop)
	calls.Wait()
	cancel()
	serving.Wait()
	return st
}

// check asserts what every rolling restart must keep: no request ran
// twice, and every call that succeeded ran exactly once. It returns the
// failed calls.
func (st *rollStats) check(t *testing.T) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	twice := 0
	for _, n := range st.runs {
		if n > 1 {
			twice++
		}
	}
	missing := 0
	for sum := range st.ok {
		if st.runs[sum] != 1 {
			missing++
		}
	}
	failed := 0
	for _, n := range st.failed {
		failed += n
	}
	t.Logf("%d calls succeeded, %d failed %v; %d ran twice", len(st.ok), failed, st.failed, twice)
	for _, ph := range []string{"steady", "roll", "after"} {
		d := st.latencies[ph]
		slices.Sort(d)
		t.Logf("%-6s %6d calls: p50 %v p99 %v max %v", ph, len(d), percentile(d, 0.5), percentile(d, 0.99), percentile(d, 1))
	}
	if twice > 0 {
		t.Errorf("%d requests ran twice", twice)
	}
	if missing > 0 {
		t.Errorf("%d calls succeeded without their handler running exactly once", missing)
	}
	return failed
}

// TestRollingRestart: three serve processes form one bus; receivers Serve
// and requesters Call in a closed loop, with a few 16 MiB bodies, every
// client listing all three nodes. Each node is restarted in turn with
// SIGTERM, and the next only once it has rejoined. Nothing is lost,
// nothing runs twice, and every call succeeds.
func TestRollingRestart(t *testing.T) {
	bin := buildBinary(t)
	b := startRollBus(t, bin)
	st := runRoll(t, b, func(n *rollNode) {
		n.signal(syscall.SIGTERM)
		if code := n.wait(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM", n.name, code)
		}
		b.start(n)
		b.waitJoined(n, 2) // each node is restarted once
	})
	if failed := st.check(t); failed > 0 {
		t.Errorf("%d calls failed during a rolling restart: %v", failed, st.failed)
	}
}

// TestRollingKill: the same roll with one node SIGKILLed and started
// again. Requests a receiver may have seen fail with ErrDisconnected or
// ErrPeerGone; nothing runs twice.
func TestRollingKill(t *testing.T) {
	bin := buildBinary(t)
	b := startRollBus(t, bin)
	st := runRoll(t, b, func(n *rollNode) {
		if n.name != "n2" {
			return
		}
		n.signal(syscall.SIGKILL)
		n.wait()
		b.start(n)
		b.waitJoined(n, 2)
	})
	st.check(t)
	for kind, n := range st.failed {
		if kind != socketbus.ErrDisconnected.Error() && kind != socketbus.ErrPeerGone.Error() {
			t.Errorf("%d calls failed with %q; a kill may only cost ErrDisconnected or ErrPeerGone", n, kind)
		}
	}
}
