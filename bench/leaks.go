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
// bookkeeping, read loops, a subscription's last callback); they are not
// checked.
var natsFrames = []byte("\ngithub.com/nats-io/")

// strayGrace bounds how long checkStray lets goroutines that have done
// their work (a WaitGroup's Done, a last channel send) finish returning.
const strayGrace = time.Second

// strayGoroutines returns the stacks of the goroutines, other than the
// caller's, that run code of this program or of socketbus. Called once a
// deployment has closed, it must find none: Close waits for everything a
// system started.
func strayGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var stray []string
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
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
