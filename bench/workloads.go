package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// workload is one benchmark scenario, run the same way on every system.
// Requesters run closed loops: each sends a request, waits for the whole
// response, and sends the next.
type workload struct {
	name         string
	requesters   int
	responders   int
	requestSize  int
	responseSize int
	// warmup is the number of untimed round trips each requester makes
	// before the measurement starts.
	warmup int
	// count is the number of timed round trips per requester; when it is
	// zero, requesters run for duration instead.
	count    int
	duration time.Duration
	// sampleHeap records the peak heap during the timed part.
	sampleHeap bool
	// headers is the number of small headers on every request
	// (benchHeaders).
	headers int
	// fanout makes each round trip reach every responder once and end
	// with all their responses (shape.Fanout); the systems that cannot
	// do that skip the workload.
	fanout  bool
	metrics []metric
}

// metric is one figure a workload reports, with the target for it.
type metric struct {
	name string
	// lowerBetter says smaller values win (latencies, heap).
	lowerBetter bool
	value       func(r result) float64
	// vsNATS and vsRelay bound the ratio socketbus/NATS and
	// socketbus/relay: at most the bound when lowerBetter, at least it
	// otherwise. Zero means no target.
	vsNATS, vsRelay float64
	// clusterVsSingle bounds the ratio socketbus-cluster/socketbus (the
	// cross-node figure to the single node's) the same way, and
	// clusterVsNATS the ratio socketbus-cluster/NATS-cluster.
	clusterVsSingle, clusterVsNATS float64
}

// result is what one run of a workload on one system measured.
type result struct {
	requests  int
	elapsed   time.Duration
	latencies []time.Duration // sorted
	bytes     int64           // request and response bytes of the timed round trips
	peakHeap  uint64          // bytes, when the workload samples the heap
	// frames is the number of frames the server read and wrote during the
	// timed round trips, when the system counts them, else -1.
	frames int64
	// syscalls is the number of read and write system calls the whole
	// process (requesters, responders and server) made during the timed
	// round trips, from /proc/self/io, or -1 where it cannot be read.
	syscalls int64
	// cpu is the CPU time, user and system, the whole process used during
	// the timed round trips (getrusage), or -1 where it cannot be read.
	cpu time.Duration
	// switches is the number of times the process's threads were switched
	// off a CPU during the timed round trips, voluntarily (a thread that
	// sleeps: the Go runtime parks an idle thread, and wakes one for a
	// goroutine another readied) or not (getrusage), or -1 where it
	// cannot be read.
	switches int64
}

// processCPU returns the CPU time the process has used, user and system
// together, or -1 where it cannot be read (processUsage).
func processCPU() time.Duration {
	cpu, _ := processUsage()
	return cpu
}

// syscallsPerRoundTrip is syscalls ÷ round trips, or 0 when unknown.
func (r result) syscallsPerRoundTrip() float64 {
	if r.syscalls < 0 || r.requests == 0 {
		return 0
	}
	return float64(r.syscalls) / float64(r.requests)
}

// switchesPerRoundTrip is switches ÷ round trips, or 0 when unknown.
func (r result) switchesPerRoundTrip() float64 {
	if r.switches < 0 || r.requests == 0 {
		return 0
	}
	return float64(r.switches) / float64(r.requests)
}

// cpuPerRoundTrip is the process's CPU time per round trip in µs, or 0
// when unknown.
func (r result) cpuPerRoundTrip() float64 {
	if r.cpu < 0 || r.requests == 0 {
		return 0
	}
	return micros(r.cpu) / float64(r.requests)
}

func (r result) perSecond() float64 { return float64(r.requests) / r.elapsed.Seconds() }

func (r result) megabytesPerSecond() float64 { return float64(r.bytes) / 1e6 / r.elapsed.Seconds() }

// The figures workloads report.
var (
	p50     = metric{name: "p50 µs", lowerBetter: true, value: func(r result) float64 { return micros(percentile(r.latencies, 0.50)) }}
	p99     = metric{name: "p99 µs", lowerBetter: true, value: func(r result) float64 { return micros(percentile(r.latencies, 0.99)) }}
	reqRate = metric{name: "req/s", value: result.perSecond}
	mbRate  = metric{name: "MB/s", value: result.megabytesPerSecond}
	heap    = metric{name: "peak heap MiB", lowerBetter: true, value: func(r result) float64 { return float64(r.peakHeap) / (1 << 20) }}
	sysRT   = metric{name: "syscalls/rt", lowerBetter: true, value: result.syscallsPerRoundTrip}
	cpuRT   = metric{name: "CPU µs/req", lowerBetter: true, value: result.cpuPerRoundTrip}
	// switchRT shows the cost of hand-offs between goroutines: each time
	// a thread sleeps for want of work (the Go runtime parks a thread it
	// woke for a goroutine another one readied, once it finds nothing to
	// run) counts one switch, as does a thread preempted by one just woken.
	switchRT = metric{name: "switches/rt", lowerBetter: true, value: result.switchesPerRoundTrip}
)

// withTargets returns m with targets set.
func (m metric) withTargets(vsNATS, vsRelay float64) metric {
	m.vsNATS, m.vsRelay = vsNATS, vsRelay
	return m
}

// withClusterTargets returns m with the cluster's targets set.
func (m metric) withClusterTargets(vsSingle, vsNATS float64) metric {
	m.clusterVsSingle, m.clusterVsNATS = vsSingle, vsNATS
	return m
}

// workloads returns the four workloads, each request with headers
// small headers, and the fan-out ones of gather.go; smoke shrinks their
// counts and durations so that all of them run in a few seconds.
func workloads(duration time.Duration, smoke bool, headers int) []workload {
	ws := []workload{
		{name: "lat", requesters: 1, responders: 1, requestSize: 128, responseSize: 128,
			warmup: 1000, count: 20000,
			metrics: []metric{p50.withTargets(0.7, 0).withClusterTargets(1.6, 0.9), p99, sysRT, switchRT, cpuRT}},
		{name: "tput", requesters: 32, responders: 4, requestSize: 128, responseSize: 128,
			warmup: 10, duration: duration,
			metrics: []metric{reqRate.withTargets(1.5, 0).withClusterTargets(0, 1.2), p50, p99, sysRT, switchRT, cpuRT}},
		{name: "large", requesters: 1, responders: 1, requestSize: 16 << 20, responseSize: 16 << 20,
			warmup: 1, count: 20, sampleHeap: true,
			metrics: []metric{mbRate.withTargets(1.5, 0.7).withClusterTargets(0.7, 1.5), heap.withTargets(0.5, 0)}},
		{name: "fanin", requesters: 256, responders: 1, requestSize: 1024, responseSize: 1024,
			warmup: 10, duration: duration,
			metrics: []metric{reqRate.withTargets(1.5, 0).withClusterTargets(0, 1.2), p99, sysRT, switchRT, cpuRT}},
	}
	for i := range ws {
		ws[i].headers = headers
	}
	ws = append(ws, gatherWorkloads(smoke)...)
	if smoke {
		for i := range ws {
			w := &ws[i]
			w.warmup = min(w.warmup, 10)
			if w.count > 0 {
				w.count = max(w.count/20, 2)
			}
		}
	}
	return ws
}

// run measures w once on sys.
func run(ctx context.Context, sys system, w workload) (res result, err error) {
	request := make([]byte, w.requestSize)
	response := make([]byte, w.responseSize)
	for i := range request {
		request[i] = byte(i)
	}
	for i := range response {
		response[i] = byte(i * 7)
	}
	dep, err := sys.Start(ctx, w.shape(response))
	if err != nil {
		return res, fmt.Errorf("start: %w", err)
	}
	defer func() {
		if cerr := dep.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	reqs := dep.Requesters()

	respSize := w.responseSize * w.replies()
	if w.warmup > 0 {
		if _, err := drive(ctx, reqs, request, respSize, w.warmup, time.Time{}); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	// Twice: the first GC moves what sync.Pools hold (the previous
	// system's buffers among them) to their victim caches, the second
	// frees it.
	runtime.GC()
	runtime.GC()
	var sampler *heapSampler
	if w.sampleHeap {
		sampler = startHeapSampler(500 * time.Microsecond)
	}
	fc, counting := dep.(frameCounter)
	res.frames = -1
	if counting {
		res.frames = -fc.Frames()
	}
	sys0 := processSyscalls()
	cpu0, sw0 := processUsage()
	var deadline time.Time
	start := time.Now()
	if w.count == 0 {
		deadline = start.Add(w.duration)
	}
	lats, err := drive(ctx, reqs, request, respSize, w.count, deadline)
	res.elapsed = time.Since(start)
	cpu1, sw1 := processUsage()
	if sampler != nil {
		res.peakHeap = sampler.Stop()
	}
	if counting {
		res.frames += fc.Frames()
	}
	res.syscalls = -1
	if sys1 := processSyscalls(); sys0 >= 0 && sys1 >= 0 {
		res.syscalls = sys1 - sys0
	}
	res.cpu = -1
	if cpu0 >= 0 && cpu1 >= 0 {
		res.cpu = cpu1 - cpu0
	}
	res.switches = -1
	if sw0 >= 0 && sw1 >= 0 {
		res.switches = sw1 - sw0
	}
	if err != nil {
		return res, err
	}
	slices.Sort(lats)
	res.latencies = lats
	res.requests = len(lats)
	res.bytes = int64(len(lats)) * int64(w.requestSize+respSize)
	return res, nil
}

// shape is what w asks of a system, responding with response.
func (w workload) shape(response []byte) shape {
	return shape{Requesters: w.requesters, Responders: w.responders,
		RequestSize: w.requestSize, Response: response, Headers: benchHeaders(w.headers), Fanout: w.fanout}
}

// replies is the number of responses each round trip of w takes: one from
// every responder for a fan-out, else one.
func (w workload) replies() int {
	if w.fanout {
		return w.responders
	}
	return 1
}

// accepts reports whether sys can run w.
func accepts(sys system, w workload) bool {
	p, ok := sys.(picky)
	return !ok || p.Accepts(w.shape(nil))
}

// drive runs every requester in its own goroutine, each making count round
// trips, or as many as fit before deadline when count is zero, and returns
// the latency of every round trip. The first failure stops them all.
func drive(ctx context.Context, reqs []requester, body []byte, respSize, count int, deadline time.Time) ([]time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	perRequester := make([][]time.Duration, len(reqs))
	var wg sync.WaitGroup
	for i, rq := range reqs {
		wg.Go(func() {
			lats := make([]time.Duration, 0, max(count, 1024))
			defer func() { perRequester[i] = lats }()
			for n := 0; count == 0 || n < count; n++ {
				t0 := time.Now()
				if count == 0 && !t0.Before(deadline) {
					return
				}
				got, err := rq.RoundTrip(ctx, body)
				if err == nil && got != respSize {
					err = fmt.Errorf("response of %d bytes, want %d", got, respSize)
				}
				if err != nil {
					// The first failure wins; the others follow from it.
					cancel(fmt.Errorf("requester %d, round trip %d: %w", i, n, err))
					return
				}
				lats = append(lats, time.Since(t0))
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	var all []time.Duration
	for _, l := range perRequester {
		all = append(all, l...)
	}
	return all, nil
}

// processSyscalls returns the read and write system calls the process has
// made (syscr + syscw in /proc/self/io), or -1 where that file is missing.
func processSyscalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	var total int64
	found := 0
	for _, line := range strings.Split(string(b), "\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok || (name != "syscr" && name != "syscw") {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return -1
		}
		total += n
		found++
	}
	if found != 2 {
		return -1
	}
	return total
}
