package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/socketbus/socketbus"
	"github.com/socketbus/socketbus/server"
)

// The scaling workloads (scale.go) run the server in a process of its
// own, this program started again with -serve-child: so that the memory
// and CPU figures are the server's alone, without the clients', and so
// that each process needs a descriptor per connection, not two.
//
// The child prints "addr HOST:PORT" once it listens, then answers each
// line it reads on stdin:
//
//	cpu   "cpu NANOSECONDS": its CPU time so far, user and system
//	mem   "mem HEAP STACKS RSS GOROUTINES": after two garbage collections,
//	      the bytes of live heap objects, of goroutine stacks, its resident
//	      set, and its goroutines
//
// and closes its server and exits when stdin ends.

// childQueuedRequests is the socketbus child's MaxQueuedRequestsPerChannel:
// the default, 4,096, refuses the requests of 10,000 requesters on one
// channel with ErrLimit once 4,096 wait for a responder, as it should; a
// user expecting that many waiting requests raises it the same way.
const childQueuedRequests = 1 << 15

// childMaxPayload lets the largest body of large-sizes (256 MiB) through
// NATS, with room for its protocol line; childMaxPending holds several.
const (
	childMaxPayload = 256<<20 + 64<<10
	childMaxPending = 1 << 30
)

// runServerChild serves system's server until stdin ends.
func runServerChild(system string) error {
	raiseFileLimit()
	var addr string
	var stop func() error
	switch strings.ToLower(system) {
	case "socketbus":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("child: listen: %w", err)
		}
		srv := server.New(server.Config{MaxQueuedRequestsPerChannel: childQueuedRequests})
		served := make(chan error, 1)
		go func() { served <- srv.Serve(ln) }()
		addr = ln.Addr().String()
		stop = func() error {
			srv.Close()
			if err := <-served; !errors.Is(err, socketbus.ErrServerClosed) {
				return err
			}
			return nil
		}
	case "nats":
		opts := natsOptions()
		opts.MaxPayload, opts.MaxPending = childMaxPayload, childMaxPending
		srv, err := startNATSServer(context.Background(), opts)
		if err != nil {
			return fmt.Errorf("child: %w", err)
		}
		addr = srv.Addr().String()
		stop = func() error {
			srv.Shutdown()
			srv.WaitForShutdown()
			return nil
		}
	default:
		return fmt.Errorf("-serve-child %q: want socketbus or NATS", system)
	}
	fmt.Printf("addr %s\n", addr)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "cpu":
			fmt.Printf("cpu %d\n", processCPU())
		case "mem":
			m := childMemory()
			fmt.Printf("mem %d %d %d %d\n", m.heap, m.stacks, m.rss, m.goroutines)
		default:
			fmt.Printf("error unknown command %q\n", in.Text())
		}
	}
	return stop()
}

// memory is what a process holds: heap and stacks as the Go runtime
// counts them, and the resident set as the kernel does.
type memory struct {
	heap, stacks, rss uint64 // bytes
	goroutines        uint64
}

// childMemory collects garbage twice (the first moves sync.Pools' contents
// to their victim caches, the second frees them) and reads the process's
// memory.
func childMemory() memory {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{
		{Name: heapMetric},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	metrics.Read(s)
	var m memory
	if s[0].Value.Kind() == metrics.KindUint64 {
		m.heap = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		m.stacks = s[1].Value.Uint64()
	}
	if s[2].Value.Kind() == metrics.KindUint64 {
		m.goroutines = s[2].Value.Uint64()
	}
	m.rss = residentSet()
	return m
}

// residentSet returns VmRSS from /proc/self/status in bytes, or 0 where it
// cannot be read.
func residentSet() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
