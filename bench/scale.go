package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// The scaling workloads measure what each connection, channel and body
// size costs, socketbus against NATS, each server in a child process of
// its own (scale_child.go) and the clients in this one. Every point runs
// on both systems in turn, round after round, the first system changing
// every round; the table (scale_table.go) gives each round's figures, the
// medians and the median of the per-round ratios.

// scaleWorkload is one of them: points measured alike, each giving the
// same figures.
type scaleWorkload struct {
	name    string
	points  []scalePoint
	figures []figure
}

// figure is one number a scaling point reports.
type figure struct {
	name        string
	lowerBetter bool
}

// scalePoint is one measurement of a scaling workload on one system, with
// its label in the table ("100 conns").
type scalePoint struct {
	label string
	run   func(ctx context.Context, sys scaleSystem) (map[string]float64, error)
}

// scaleSizes are the counts the scaling workloads use.
type scaleSizes struct {
	idle     []int // idle clients, measured at each count
	conns    []int // requesters on one channel
	channels []int // channels, one responder and one requester each
	join     int
	large    []largeSize
	duration time.Duration // of each throughput point
}

// largeSize is one point of large-sizes: count round trips with bodies of
// size bytes each way.
type largeSize struct {
	label       string
	size, count int
}

// scaleResponders is how many responders answer the requesters of
// scale-conns, on their one channel: as many as tput has.
const scaleResponders = 4

// defaultScaleSizes returns the counts; smoke ones take a few
// seconds in all. The largest channel count is what the open-files limit
// allows: each channel takes two connections, so two descriptors in the
// server's process and two in this one.
func defaultScaleSizes(smoke bool, duration time.Duration, fileLimit uint64) scaleSizes {
	if smoke {
		return scaleSizes{idle: []int{10, 100}, conns: []int{1, 16}, channels: []int{1, 16}, join: 100,
			large: []largeSize{{"1 MiB", 1 << 20, 2}}, duration: duration}
	}
	maxChannels := 10000
	if fileLimit > 0 {
		maxChannels = min(maxChannels, int(fileLimit-500)/2/100*100)
	}
	return scaleSizes{
		idle: []int{1000, 10000}, conns: []int{1, 100, 10000}, channels: []int{1, 100, maxChannels},
		join: 10000,
		large: []largeSize{
			{"1 MiB", 1 << 20, 200},
			{"16 MiB", 16 << 20, 12},
			{"256 MiB", 256 << 20, 2},
		},
		duration: duration,
	}
}

// scaleWorkloads returns the scaling workloads for sz.
func scaleWorkloads(sz scaleSizes) []scaleWorkload {
	tputFigures := []figure{{"req/s", false}, {"p50 µs", true}, {"p99 µs", true},
		{"server CPU µs/req", true}, {"all CPU µs/req", true}}
	var conns, channels, large []scalePoint
	for _, n := range sz.conns {
		l := layout{channels: 1, responders: scaleResponders, requesters: n}
		conns = append(conns, scalePoint{label: plural(n, "conn"), run: func(ctx context.Context, sys scaleSystem) (map[string]float64, error) {
			return runScaleTput(ctx, sys, l, sz.duration)
		}})
	}
	for _, n := range sz.channels {
		l := layout{channels: n, responders: 1, requesters: n}
		channels = append(channels, scalePoint{label: plural(n, "channel"), run: func(ctx context.Context, sys scaleSystem) (map[string]float64, error) {
			return runScaleTput(ctx, sys, l, sz.duration)
		}})
	}
	for _, ls := range sz.large {
		large = append(large, scalePoint{label: ls.label, run: func(ctx context.Context, sys scaleSystem) (map[string]float64, error) {
			return runLarge(ctx, sys, ls)
		}})
	}
	var idleFigures []figure
	for _, n := range sz.idle {
		idleFigures = append(idleFigures,
			figure{fmt.Sprintf("heap+stacks KiB/conn at %s", count(n)), true},
			figure{fmt.Sprintf("heap KiB/conn at %s", count(n)), true},
			figure{fmt.Sprintf("stacks KiB/conn at %s", count(n)), true},
			figure{fmt.Sprintf("RSS KiB/conn at %s", count(n)), true})
	}
	for _, n := range sz.idle {
		idleFigures = append(idleFigures, figure{fmt.Sprintf("heap KiB/channel at %s", count(n)), true})
	}
	return []scaleWorkload{
		{name: "idle-mem", figures: idleFigures, points: []scalePoint{{label: "idle clients", run: func(ctx context.Context, sys scaleSystem) (map[string]float64, error) {
			return runIdle(ctx, sys, sz.idle)
		}}}},
		{name: "join", figures: []figure{{"s", true}, {"joins/s", false}, {"server CPU µs/join", true}},
			points: []scalePoint{{label: fmt.Sprintf("%s clients", count(sz.join)), run: func(ctx context.Context, sys scaleSystem) (map[string]float64, error) {
				return runJoin(ctx, sys, sz.join)
			}}}},
		{name: "scale-conns", figures: tputFigures, points: conns},
		{name: "scale-channels", figures: tputFigures, points: channels},
		{name: "large-sizes", figures: []figure{{"MB/s", false}, {"server CPU µs/MB", true}}, points: large},
	}
}

// plural is n things: "1 conn", "10,000 conns".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return count(n) + " " + thing + "s"
}

// count formats n with thousands separators: 10,000.
func count(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// withChild runs f with a fresh child server of sys's and closes it.
func withChild(sys scaleSystem, f func(c *childServer) error) error {
	c, err := startChild(sys.Name())
	if err != nil {
		return err
	}
	err = f(c)
	return errors.Join(err, c.Close())
}

// runIdle joins idle clients, all on one channel, up to each count of ns
// in turn, measuring the server's memory at each; then, with a new
// server, as many clients each on a channel of its own. The memory is the
// server process's live heap and goroutine stacks after two collections
// ("heap+stacks KiB", and each apart), and its resident set ("RSS
// KiB"), over those of the server with no client, divided by the
// clients; the cost of a channel is the heap a client on its own channel
// costs over one on the shared channel.
func runIdle(ctx context.Context, sys scaleSystem, ns []int) (map[string]float64, error) {
	shared := map[int]memory{}
	own := map[int]memory{}
	var base, ownBase memory
	grow := func(c *childServer, into map[int]memory, channel func(int) int) (memory, error) {
		m0, err := c.Memory()
		if err != nil {
			return m0, err
		}
		var groups []io.Closer
		defer func() {
			for _, g := range groups {
				g.Close()
			}
		}()
		joined := 0
		for _, n := range ns {
			g, err := sys.Idle(ctx, c.addr, n-joined, func(i int) int { return channel(joined + i) })
			if err != nil {
				return m0, err
			}
			groups = append(groups, g)
			joined = n
			if into[n], err = c.Memory(); err != nil {
				return m0, err
			}
		}
		return m0, nil
	}
	err := withChild(sys, func(c *childServer) (err error) {
		base, err = grow(c, shared, func(int) int { return 0 })
		return err
	})
	if err != nil {
		return nil, err
	}
	err = withChild(sys, func(c *childServer) (err error) {
		ownBase, err = grow(c, own, func(i int) int { return i })
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := checkStray(); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, n := range ns {
		perConn := kibPer(shared[n].heap+shared[n].stacks, base.heap+base.stacks, n)
		out[fmt.Sprintf("heap+stacks KiB/conn at %s", count(n))] = perConn
		out[fmt.Sprintf("heap KiB/conn at %s", count(n))] = kibPer(shared[n].heap, base.heap, n)
		out[fmt.Sprintf("stacks KiB/conn at %s", count(n))] = kibPer(shared[n].stacks, base.stacks, n)
		out[fmt.Sprintf("RSS KiB/conn at %s", count(n))] = kibPer(shared[n].rss, base.rss, n)
		// Heap only: a channel starts no goroutine in either server, and
		// the stacks' share per connection varies by a few KiB from run
		// to run (NATS's read loops grow theirs unevenly), which would
		// drown a figure under 1 KiB.
		out[fmt.Sprintf("heap KiB/channel at %s", count(n))] = kibPer(own[n].heap, ownBase.heap, n) - kibPer(shared[n].heap, base.heap, n)
	}
	return out, nil
}

// kibPer is (after − before) / n in KiB.
func kibPer(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / 1024 / float64(n)
}

// runJoin times n clients joining one channel, scaleDialers at a time,
// from the first dial until the last has joined, with the server's CPU
// time.
func runJoin(ctx context.Context, sys scaleSystem, n int) (map[string]float64, error) {
	out := map[string]float64{}
	err := withChild(sys, func(c *childServer) error {
		cpu0, err := c.CPU()
		if err != nil {
			return err
		}
		start := time.Now()
		g, err := sys.Idle(ctx, c.addr, n, func(int) int { return 0 })
		elapsed := time.Since(start)
		if err != nil {
			return err
		}
		cpu1, err := c.CPU()
		g.Close()
		if err != nil {
			return err
		}
		out["s"] = elapsed.Seconds()
		out["joins/s"] = float64(n) / elapsed.Seconds()
		out["server CPU µs/join"] = micros(cpu1-cpu0) / float64(n)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, checkStray()
}

// runScaleTput runs l's requesters in closed loops for duration, 128 B
// each way, after one untimed round trip each.
func runScaleTput(ctx context.Context, sys scaleSystem, l layout, duration time.Duration) (map[string]float64, error) {
	const size = 128
	body, response := make([]byte, size), make([]byte, size)
	out := map[string]float64{}
	err := withChild(sys, func(c *childServer) (err error) {
		dep, err := sys.Start(ctx, c.addr, l, shape{Requesters: l.requesters, Responders: l.responders, RequestSize: size, Response: response})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, dep.Close()) }()
		if _, err := drive(ctx, dep.Requesters(), body, size, 1, time.Time{}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		server0, err := c.CPU()
		if err != nil {
			return err
		}
		own0 := processCPU()
		start := time.Now()
		lats, err := drive(ctx, dep.Requesters(), body, size, 0, start.Add(duration))
		elapsed := time.Since(start)
		own1 := processCPU()
		if err != nil {
			return err
		}
		server1, err := c.CPU()
		if err != nil {
			return err
		}
		slices.Sort(lats)
		r := result{requests: len(lats), elapsed: elapsed, latencies: lats}
		n := float64(r.requests)
		out["req/s"] = r.perSecond()
		out["p50 µs"] = micros(percentile(r.latencies, 0.50))
		out["p99 µs"] = micros(percentile(r.latencies, 0.99))
		out["server CPU µs/req"] = micros(server1-server0) / n
		out["all CPU µs/req"] = micros(server1-server0+own1-own0) / n
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, checkStray()
}

// runLarge makes ls.count round trips, one at a time, with bodies of
// ls.size bytes each way, after one untimed round trip; MB/s counts both
// directions, as the large workload does.
func runLarge(ctx context.Context, sys scaleSystem, ls largeSize) (map[string]float64, error) {
	body, response := make([]byte, ls.size), make([]byte, ls.size)
	out := map[string]float64{}
	err := withChild(sys, func(c *childServer) (err error) {
		dep, err := sys.Start(ctx, c.addr, layout{channels: 1, responders: 1, requesters: 1}, shape{Requesters: 1, Responders: 1, RequestSize: ls.size, Response: response})
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, dep.Close()) }()
		if _, err := drive(ctx, dep.Requesters(), body, ls.size, 1, time.Time{}); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		server0, err := c.CPU()
		if err != nil {
			return err
		}
		start := time.Now()
		if _, err := drive(ctx, dep.Requesters(), body, ls.size, ls.count, time.Time{}); err != nil {
			return err
		}
		elapsed := time.Since(start)
		server1, err := c.CPU()
		if err != nil {
			return err
		}
		mb := float64(2*ls.size*ls.count) / 1e6
		out["MB/s"] = mb / elapsed.Seconds()
		out["server CPU µs/MB"] = micros(server1-server0) / mb
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, checkStray()
}

// scaleNames are the scaling workloads' names, for -workloads.
var scaleNames = []string{"idle-mem", "join", "scale-conns", "scale-channels", "large-sizes"}

// splitScale splits a -workloads list into the other workloads and the
// scaling ones.
func splitScale(list string) (others, scale string) {
	var o, s []string
	for n := range strings.SplitSeq(list, ",") {
		if slices.Contains(scaleNames, strings.ToLower(strings.TrimSpace(n))) {
			s = append(s, n)
		} else if strings.TrimSpace(n) != "" {
			o = append(o, n)
		}
	}
	return strings.Join(o, ","), strings.Join(s, ",")
}

// scaleSystemsIn returns the scaling systems, socketbus and NATS, that a
// -systems list names, socketbus first.
func scaleSystemsIn(list string) []scaleSystem {
	var out []scaleSystem
	for _, s := range []scaleSystem{socketbusScale{}, natsScale{}} {
		for n := range strings.SplitSeq(list, ",") {
			if strings.EqualFold(strings.TrimSpace(n), s.Name()) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}
