package main

import (
	"bytes"
	"fmt"
	"runtime"
	"time"
)

// ownFrames mark a goroutine as started by this program or by socketbus:
// the bench's own functions and the library's.
var ownFrames = [][]byte{[]byte("\nmain."), []byte("\ngithub.com/socketbus/socketbus")}

// natsFrames mark goroutines of nats-server and nats.go, which end some
// goroutines asynchronously after Shutdown and Close (closed-client
// bookkeeping, read loops, a subscription's last callback); checkStray
// does not look at them.
var natsFrames = []byte("\ngithub.com/nats-io/")

// strayGrace bounds how long checkStray lets goroutines that have done
// their work (a WaitGroup's Done, a last channel send) finish returning.
// The cluster system checks its own NATS goroutines (waitNATSGone).
const strayGrace = time.Second

// natsGrace bounds how long the cluster system waits, once closed, for the
// goroutines of its nodes' nats-servers and nats.go connections to end.
const natsGrace = 5 * time.Second

// goroutineStacks returns the stacks of all goroutines, the caller's first.
func goroutineStacks() [][]byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Split(buf[:n], []byte("\n\n"))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// natsGoroutines returns the set of goroutines, other than the caller's,
// that run code of nats-server or nats.go, by goroutineID.
func natsGoroutines() map[string]bool {
	ids := map[string]bool{}
	for i, g := range goroutineStacks() {
		if i > 0 && bytes.Contains(g, natsFrames) {
			ids[goroutineID(g)] = true
		}
	}
	return ids
}

// goroutineID returns a stack's heading up to the goroutine's state:
// "goroutine 42".
func goroutineID(stack []byte) string {
	head, _, _ := bytes.Cut(stack, []byte(" ["))
	return string(head)
}

// waitNATSGone waits up to grace for every nats-io goroutine not in before
// to end, and returns an error with the first that did not.
func waitNATSGone(before map[string]bool, grace time.Duration) error {
	deadline := time.Now().Add(grace)
	for {
		var left [][]byte
		for i, g := range goroutineStacks() {
			if i > 0 && bytes.Contains(g, natsFrames) && !before[goroutineID(g)] {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d NATS goroutine(s) still running %v after Close; the first:\n%s", len(left), grace, left[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// strayGoroutines returns the stacks of the goroutines, other than the
// caller's, that run code of this program or of socketbus. Called once a
// deployment has closed, it must find none: Close waits for everything a
// system started.
func strayGoroutines() []string {
	var stray []string
	for i, g := range goroutineStacks() {
		if i == 0 || bytes.Contains(g, natsFrames) {
			continue // the caller, or a NATS goroutine
		}
		for _, f := range ownFrames {
			if bytes.Contains(g, f) {
				stray = append(stray, string(g))
				break
			}
		}
	}
	return stray
}

// checkStray returns an error listing stray goroutines, if any remain
// after strayGrace. A goroutine that signalled its end may still be a few
// instructions from returning, so it yields to them until then.
func checkStray() error {
	deadline := time.Now().Add(strayGrace)
	stray := strayGoroutines()
	for len(stray) > 0 && time.Now().Before(deadline) {
		runtime.Gosched()
		stray = strayGoroutines()
	}
	if len(stray) == 0 {
		return nil
	}
	return fmt.Errorf("%d goroutine(s) still running after Close; the first:\n%s", len(stray), stray[0])
}
