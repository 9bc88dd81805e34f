package frame

import (
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// Payload buffers come from power-of-two size classes, 512 bytes to 64 KiB,
// so that relaying a frame allocates nothing in the steady state and a
// buffer is never twice its payload once the payload is over 256 bytes:
// the server's memory budget relies on that bound (internal/router's
// memory.go). A buffer handed to Enqueue with Frame.Pooled set returns to
// its pool once the writer has written it.
//
// The pools hold pointers to arrays, not slices: converting a full-capacity
// slice back to its array pointer is free, so putting a buffer back does
// not allocate a slice header the way pooling *[]byte does.
var (
	pool512 = sync.Pool{New: func() any { return new([512]byte) }}
	pool1k  = sync.Pool{New: func() any { return new([1 << 10]byte) }}
	pool2k  = sync.Pool{New: func() any { return new([2 << 10]byte) }}
	pool4k  = sync.Pool{New: func() any { return new([4 << 10]byte) }}
	pool8k  = sync.Pool{New: func() any { return new([8 << 10]byte) }}
	pool16k = sync.Pool{New: func() any { return new([16 << 10]byte) }}
	pool32k = sync.Pool{New: func() any { return new([32 << 10]byte) }}
	pool64k = sync.Pool{New: func() any { return new([64 << 10]byte) }}
)

// BufferSize returns the capacity of the buffer GetBuffer(n) returns.
func BufferSize(n int) int {
	size := 512
	for size < n {
		size *= 2
	}
	return size
}

// GetBuffer returns a slice of length n whose backing array comes from a
// pool. n must not exceed wire.MaxFramePayload.
func GetBuffer(n int) []byte {
	b := getBuffer(n)
	if tracking.Load() {
		track(b)
	}
	return b
}

func getBuffer(n int) []byte {
	switch {
	case n <= 512:
		return pool512.Get().(*[512]byte)[:n]
	case n <= 1<<10:
		return pool1k.Get().(*[1 << 10]byte)[:n]
	case n <= 2<<10:
		return pool2k.Get().(*[2 << 10]byte)[:n]
	case n <= 4<<10:
		return pool4k.Get().(*[4 << 10]byte)[:n]
	case n <= 8<<10:
		return pool8k.Get().(*[8 << 10]byte)[:n]
	case n <= 16<<10:
		return pool16k.Get().(*[16 << 10]byte)[:n]
	case n <= 32<<10:
		return pool32k.Get().(*[32 << 10]byte)[:n]
	case n <= 64<<10:
		return pool64k.Get().(*[64 << 10]byte)[:n]
	}
	panic("frame: buffer request over the largest class")
}

// PutBuffer returns a buffer obtained from GetBuffer to its pool. Buffers
// whose capacity is not a class size are left to the garbage collector.
func PutBuffer(b []byte) {
	if tracking.Load() {
		untrack(b)
	}
	switch cap(b) {
	case 512:
		pool512.Put((*[512]byte)(b[:512]))
	case 1 << 10:
		pool1k.Put((*[1 << 10]byte)(b[:1<<10]))
	case 2 << 10:
		pool2k.Put((*[2 << 10]byte)(b[:2<<10]))
	case 4 << 10:
		pool4k.Put((*[4 << 10]byte)(b[:4<<10]))
	case 8 << 10:
		pool8k.Put((*[8 << 10]byte)(b[:8<<10]))
	case 16 << 10:
		pool16k.Put((*[16 << 10]byte)(b[:16<<10]))
	case 32 << 10:
		pool32k.Put((*[32 << 10]byte)(b[:32<<10]))
	case 64 << 10:
		pool64k.Put((*[64 << 10]byte)(b[:64<<10]))
	}
}

// Release gives f's payload back to its pool if it came from one, and
// forgets it, so that a second Release of the same Frame does nothing.
// Whoever holds a frame last releases it: the writer for frames it
// wrote, the handler for frames the reader handed it.
func (f *Frame) Release() {
	if f.Pooled {
		PutBuffer(f.Payload)
	}
	f.Payload, f.Pooled = nil, false
}

// The test mode: with Track(true), every buffer GetBuffer hands out is
// remembered until PutBuffer takes it back. PutBuffer of a buffer that is
// not out (a second release, or one the pool never gave) panics, and
// Outstanding counts the buffers out, so that a test can end by checking
// that every buffer it caused to be taken went back.
var (
	tracking atomic.Bool
	trackMu  sync.Mutex
	out      = map[*byte][]uintptr{} // each buffer out, with the stack that took it
)

// Track turns the test mode on or off. Turn it on before any buffer is
// taken (in TestMain): a buffer taken before is unknown to PutBuffer.
func Track(on bool) {
	trackMu.Lock()
	defer trackMu.Unlock()
	tracking.Store(on)
	clear(out)
}

// Outstanding returns how many buffers are out of the pool in the test
// mode: taken by GetBuffer and not yet given back.
func Outstanding() int {
	trackMu.Lock()
	defer trackMu.Unlock()
	return len(out)
}

func track(b []byte) {
	pcs := make([]uintptr, 16)
	pcs = pcs[:runtime.Callers(3, pcs)]
	trackMu.Lock()
	out[&b[:1][0]] = pcs
	trackMu.Unlock()
}

// OutstandingStacks describes where the buffers still out were taken,
// most frequent first, for a test that finds Outstanding() != 0.
func OutstandingStacks() string {
	trackMu.Lock()
	counts := map[string]int{}
	for _, pcs := range out {
		var b strings.Builder
		frames := runtime.CallersFrames(pcs)
		for {
			f, more := frames.Next()
			fmt.Fprintf(&b, "\t%s (%s:%d)\n", f.Function, filepath.Base(f.File), f.Line)
			if !more {
				break
			}
		}
		counts[b.String()]++
	}
	trackMu.Unlock()
	stacks := make([]string, 0, len(counts))
	for st := range counts {
		stacks = append(stacks, st)
	}
	slices.SortFunc(stacks, func(a, b string) int { return counts[b] - counts[a] })
	var b strings.Builder
	for _, st := range stacks {
		fmt.Fprintf(&b, "%d buffers taken at:\n%s", counts[st], st)
	}
	return b.String()
}

func untrack(b []byte) {
	if cap(b) == 0 {
		return
	}
	p := &b[:1][0]
	trackMu.Lock()
	_, ok := out[p]
	delete(out, p)
	trackMu.Unlock()
	if !ok {
		panic(fmt.Sprintf("frame: PutBuffer of a buffer of %d bytes that is not out: released twice, or not the pool's", cap(b)))
	}
}
